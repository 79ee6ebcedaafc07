"""Save and load TT values as safetensors files: :func:`save` and :func:`load`.

A file holds the cores as tensors ``core_0 ... core_{d-1}`` and, in the safetensors
metadata, ``format = "ttnet"``, the ``kind`` (``TensorTrain`` or ``TTMatrix``), the mode
``shape``, the ``ranks``, the ``library`` the cores came from, the ``dtype`` and the
``error`` (JSON strings). complex128 cores, which safetensors has no type for, are stored
as float64 with a last axis of 2 (real, imaginary).

Writing is atomic (:mod:`ttnet.atomic`): a reader sees the old file or the whole new one.
Loading executes no code (safetensors holds only arrays) and checks the header against
the metadata (names, dtypes, shapes, ranks, byte ranges, file size) before any array is
allocated; a file that is not a ttnet file, or is damaged, raises ``ValueError`` naming it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import numpy as np

from ttnet._backend import library_name, to_numpy
from ttnet.atomic import atomic_write
from ttnet.tensor_train import TensorTrain
from ttnet.tt_matrix import TTMatrix

__all__ = ["load", "save"]

_FORMAT = "ttnet"
_VERSION = "1"
_KINDS = {"TensorTrain": (TensorTrain, 3), "TTMatrix": (TTMatrix, 4)}
# safetensors dtype -> bytes per entry, for the dtypes a ttnet file may hold.
_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "C64": 8}
# A header larger than this is not ours (ttnet headers are a few hundred bytes per core).
_MAX_HEADER = 1 << 24


def save(path: str | os.PathLike, value: TensorTrain | TTMatrix) -> None:
    """Write ``value`` to ``path`` (a safetensors file), atomically.

    Raises:
        TypeError: ``value`` is not a TensorTrain or TTMatrix.
        FileNotFoundError: the folder of ``path`` does not exist.

    Example:
        >>> import numpy as np, ttnet
        >>> tt = ttnet.tt_svd(np.arange(24.0).reshape(2, 3, 4))
        >>> ttnet.save("tt.safetensors", tt)
        >>> ttnet.load("tt.safetensors").ranks == tt.ranks
        True
    """
    kind = type(value).__name__
    if kind not in _KINDS or not isinstance(value, _KINDS[kind][0]):
        raise TypeError(f"value: expected a TensorTrain or TTMatrix, got {type(value).__name__}")
    cores = list(value.cores)
    library = library_name(cores[0])
    dtype = str(cores[0].dtype).rsplit(".", 1)[-1]
    metadata = {
        "format": _FORMAT,
        "version": _VERSION,
        "kind": kind,
        "shape": json.dumps([list(c.shape[1:-1]) for c in cores]),
        "ranks": json.dumps(list(value.ranks)),
        "library": library,
        "dtype": dtype,
        "error": json.dumps(value.error),
    }
    if library == "torch":
        import torch  # already imported: the cores are torch tensors
        from safetensors.torch import save as save_bytes

        if dtype == "complex128":
            cores = [torch.view_as_real(c) for c in cores]
        tensors = {f"core_{k}": c.detach().cpu().contiguous() for k, c in enumerate(cores)}
    else:
        from safetensors.numpy import save as save_bytes

        cores = [to_numpy(c) for c in cores]
        if dtype == "complex128":
            cores = [np.stack([c.real, c.imag], axis=-1) for c in cores]
        tensors = {f"core_{k}": np.ascontiguousarray(c) for k, c in enumerate(cores)}
    atomic_write(path, save_bytes(tensors, metadata=metadata))


def _fail(path: str, why: str) -> ValueError:
    return ValueError(f"{path}: not a valid ttnet file ({why})")


def _read_header(path: str) -> tuple[dict, dict]:
    """The tensor entries and the metadata of a safetensors file, checked for size."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise _fail(path, f"{size} bytes, shorter than a safetensors header")
            (length,) = struct.unpack("<Q", head)
            if length > min(size - 8, _MAX_HEADER):
                raise _fail(path, f"header length {length} does not fit a {size}-byte file")
            raw = fh.read(length)
    except IsADirectoryError:
        raise _fail(path, "a directory") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise _fail(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("format") != _FORMAT:
        raise _fail(path, "no ttnet metadata: a safetensors file written by something else")
    data_size = size - 8 - length
    end = 0
    for name in sorted(header, key=lambda n: _entry_start(header[n])):
        entry = header[name]
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and offsets[0] == end
                and isinstance(offsets[1], int) and offsets[1] >= end):
            raise _fail(path, f"tensor {name!r}: data offsets {offsets} do not follow on")
        end = offsets[1]
    if end != data_size:
        raise _fail(path, f"tensors cover {end} bytes but the file holds {data_size}")
    return header, metadata


def _entry_start(entry: Any) -> int:
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    ok = isinstance(offsets, list) and offsets and isinstance(offsets[0], int)
    return offsets[0] if ok else -1


def _check_entries(path: str, header: dict, metadata: dict) -> tuple[type, bool]:
    """Check the tensors against the metadata; ``(class, complex128 stored as pairs)``."""
    kind = metadata.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise _fail(path, f"kind {kind!r}, expected one of {sorted(_KINDS)}")
    cls, ndim = _KINDS[kind]
    try:
        shape = json.loads(metadata.get("shape", ""))
        ranks = json.loads(metadata.get("ranks", ""))
    except (TypeError, json.JSONDecodeError):
        raise _fail(path, "shape or ranks metadata is not JSON") from None
    d = len(shape) if isinstance(shape, list) else 0
    if d == 0 or not isinstance(ranks, list) or len(ranks) != d + 1:
        raise _fail(path, f"shape {shape} and ranks {ranks} do not match")
    pairs = metadata.get("dtype") == "complex128"
    if set(header) != {f"core_{k}" for k in range(d)}:
        raise _fail(path, f"tensors {sorted(header)}, expected core_0 ... core_{d - 1}")
    for k in range(d):
        entry = header[f"core_{k}"]
        modes = shape[k]
        if not (isinstance(modes, list) and len(modes) == ndim - 2):
            raise _fail(path, f"core_{k}: mode sizes {modes} do not fit a {kind}")
        expected = [ranks[k], *modes, ranks[k + 1]] + ([2] if pairs else [])
        if entry.get("shape") != expected or not all(
            isinstance(s, int) and s >= 1 for s in expected
        ):
            raise _fail(path, f"core_{k}: shape {entry.get('shape')}, expected {expected}")
        dtype = entry.get("dtype")
        itemsize = _ITEMSIZE.get(dtype) if isinstance(dtype, str) else None
        if itemsize is None:
            raise _fail(path, f"core_{k}: dtype {entry.get('dtype')!r} is not a float type")
        begin, end = entry["data_offsets"]
        if end - begin != itemsize * math.prod(expected):
            raise _fail(path, f"core_{k}: {end - begin} bytes for shape {expected}")
    if ranks[0] != 1 or ranks[-1] != 1:
        raise _fail(path, f"ranks {ranks} must start and end with 1")
    return cls, pairs


def load(
    path: str | os.PathLike, *, library: str | None = None, device: Any = None
) -> TensorTrain | TTMatrix:
    """Read a TensorTrain or TTMatrix written by :func:`save`.

    Args:
        path: the file.
        library: ``"numpy"`` or ``"torch"`` for the cores (``None``: the library they were
            saved from).
        device: torch device for the cores (torch only; default CPU).

    Raises:
        ValueError: the file is not a ttnet file, or it is damaged (the message names it).
        FileNotFoundError: no such file.

    Example:
        >>> import numpy as np, ttnet
        >>> w = ttnet.TTMatrix([np.ones((1, 2, 3, 1))])
        >>> ttnet.save("w.safetensors", w)
        >>> ttnet.load("w.safetensors").shape
        (2, 3)
    """
    path = os.fspath(path)
    header, metadata = _read_header(path)
    cls, pairs = _check_entries(path, header, metadata)
    if library is None:
        library = metadata.get("library")
        if library not in ("numpy", "torch"):
            raise _fail(path, f"library {library!r}, expected 'numpy' or 'torch'")
    elif library not in ("numpy", "torch"):
        raise ValueError(f"library: expected 'numpy' or 'torch', got {library!r}")
    dtypes = {header[name]["dtype"] for name in header}
    if library == "numpy" and "BF16" in dtypes:
        raise ValueError(f"{path}: bfloat16 cores need library='torch' (numpy has no bfloat16)")
    from safetensors import SafetensorError, safe_open

    framework = "pt" if library == "torch" else "np"
    options = {"device": str(device)} if device is not None and framework == "pt" else {}
    try:
        with safe_open(path, framework=framework, **options) as fh:
            cores = [fh.get_tensor(f"core_{k}") for k in range(len(header))]
    except (SafetensorError, OSError) as exc:
        raise _fail(path, str(exc)) from None
    if pairs:
        if library == "torch":
            import torch  # imported by safetensors' torch framework above

            cores = [torch.view_as_complex(c.contiguous()) for c in cores]
        else:
            cores = [c[..., 0] + 1j * c[..., 1] for c in cores]
    try:
        error = json.loads(metadata.get("error", "null"))
        return cls(cores, error=error)
    except (ValueError, TypeError) as exc:
        raise _fail(path, str(exc)) from None
