"""ttnet.save / ttnet.load: exact round trips, metadata, atomic writes, hostile files."""

import json
import os
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save as save_numpy

import ttnet
from ttnet import TensorTrain, TTMatrix

torch = pytest.importorskip("torch")


def sample_values(dtype="float64"):
    rng = np.random.default_rng(0)
    tt = ttnet.tt_svd(rng.standard_normal((3, 4, 5)).astype(dtype), eps=0.3)
    w = ttnet.tt_matrix_svd(rng.standard_normal((8, 6)).astype(dtype), (2, 4), (3, 2))
    return tt, w


def same(a, b):
    assert type(a) is type(b) and a.ranks == b.ranks and a.error == b.error
    for x, y in zip(a.cores, b.cores):
        assert type(x) is type(y) and x.dtype == y.dtype and tuple(x.shape) == tuple(y.shape)
        if isinstance(x, torch.Tensor):  # compare the raw bytes (bfloat16 included)
            assert torch.equal(x.view(torch.uint8), y.view(torch.uint8))
        else:
            assert x.tobytes() == y.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "complex64", "complex128"])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_round_trip_bit_for_bit(tmp_path, dtype, library):
    for value in sample_values(dtype):
        if library == "torch":
            value = type(value)._trusted([torch.as_tensor(c.copy()) for c in value.cores],
                                         value.error)
        path = tmp_path / f"{type(value).__name__}.safetensors"
        ttnet.save(path, value)
        same(ttnet.load(path), value)


def test_bfloat16_and_library_choice(tmp_path):
    tt = TensorTrain([torch.randn(1, 3, 2, dtype=torch.bfloat16), torch.randn(2, 4, 1).bfloat16()])
    ttnet.save(tmp_path / "b.safetensors", tt)
    same(ttnet.load(tmp_path / "b.safetensors"), tt)
    with pytest.raises(ValueError, match="bfloat16 cores need library='torch'"):
        ttnet.load(tmp_path / "b.safetensors", library="numpy")
    tt64, _ = sample_values()
    ttnet.save(tmp_path / "n.safetensors", tt64)
    as_torch = ttnet.load(tmp_path / "n.safetensors", library="torch", device="cpu")
    assert isinstance(as_torch.cores[0], torch.Tensor)
    assert np.array_equal(as_torch.full().numpy(), tt64.full())


def test_metadata_holds_kind_shapes_ranks(tmp_path):
    _tt, w = sample_values()
    ttnet.save(tmp_path / "w.safetensors", w)
    with safe_open(str(tmp_path / "w.safetensors"), framework="np") as fh:
        meta = fh.metadata()
        names = sorted(fh.keys())
    assert meta["format"] == "ttnet" and meta["kind"] == "TTMatrix"
    assert json.loads(meta["shape"]) == [[2, 3], [4, 2]]
    assert json.loads(meta["ranks"]) == list(w.ranks)
    assert meta["library"] == "numpy" and meta["dtype"] == "float64"
    assert names == ["core_0", "core_1"]


def test_write_is_atomic_and_stays_in_the_folder(tmp_path, monkeypatch):
    tt, w = sample_values()
    path = tmp_path / "x.safetensors"
    ttnet.save(path, tt)
    before = path.read_bytes()
    from ttnet import atomic

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)  # fails mid-write
    with pytest.raises(OSError, match="No space left"):
        ttnet.save(path, w)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["x.safetensors"]
    with pytest.raises(TypeError, match="value: expected a TensorTrain or TTMatrix"):
        ttnet.save(path, np.ones(3))
    with pytest.raises(FileNotFoundError):
        ttnet.save(tmp_path / "missing" / "x.safetensors", tt)
    assert os.listdir(tmp_path) == ["x.safetensors"]


def header_file(path, header, data=b""):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_corrupt_and_foreign_files_name_the_file(tmp_path):
    tt, _ = sample_values()
    good = tmp_path / "good.safetensors"
    ttnet.save(good, tt)
    raw = good.read_bytes()
    meta = {"format": "ttnet", "kind": "TensorTrain", "shape": "[[3]]", "ranks": "[1, 1]",
            "library": "numpy", "dtype": "float64", "error": "null"}
    cases = {
        "empty": b"",
        "short": b"\x01\x02",
        "truncated": raw[: len(raw) - 9],
        "garbage": bytes(range(256)) * 4,
        "huge_header": struct.pack("<Q", 2**60) + b"{}",
        "pickle": pickle.dumps(tt),
        "not_json": struct.pack("<Q", 4) + b"{{{{",
    }
    paths = {name: tmp_path / f"{name}.bin" for name in cases}
    for name, data in cases.items():
        paths[name].write_bytes(data)
    paths["foreign"] = tmp_path / "foreign.safetensors"
    paths["foreign"].write_bytes(save_numpy({"weight": np.ones((2, 2))}))
    paths["other_format"] = tmp_path / "other.safetensors"
    paths["other_format"].write_bytes(save_numpy({"core_0": np.ones((1, 3, 1))},
                                                 metadata={"format": "pt"}))
    # a header claiming 10**12 entries with 24 bytes of data: rejected before allocating
    paths["claims_huge"] = header_file(tmp_path / "huge.safetensors", {
        "__metadata__": {**meta, "shape": "[[1000000000000]]"},
        "core_0": {"dtype": "F64", "shape": [1, 10**12, 1], "data_offsets": [0, 24]},
    }, b"\0" * 24)
    paths["wrong_shape"] = header_file(tmp_path / "shape.safetensors", {
        "__metadata__": meta,
        "core_0": {"dtype": "F64", "shape": [1, 4, 1], "data_offsets": [0, 32]},
    }, b"\0" * 32)
    paths["int_dtype"] = header_file(tmp_path / "int.safetensors", {
        "__metadata__": meta,
        "core_0": {"dtype": "I64", "shape": [1, 3, 1], "data_offsets": [0, 24]},
    }, b"\0" * 24)
    paths["nan"] = header_file(tmp_path / "nan.safetensors", {
        "__metadata__": meta,
        "core_0": {"dtype": "F64", "shape": [1, 3, 1], "data_offsets": [0, 24]},
    }, np.array([1.0, np.nan, 2.0]).tobytes())
    paths["bad_kind"] = header_file(tmp_path / "kind.safetensors", {
        "__metadata__": {**meta, "kind": "os.system"},
        "core_0": {"dtype": "F64", "shape": [1, 3, 1], "data_offsets": [0, 24]},
    }, b"\0" * 24)
    for name, path in paths.items():
        with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")) as info:
            ttnet.load(path)
        assert "ttnet file" in str(info.value) or "bfloat16" in str(info.value), name
    with pytest.raises(FileNotFoundError):
        ttnet.load(tmp_path / "nowhere.safetensors")


def saved_sample(tmp_path_factory):
    tt, _ = sample_values()
    path = tmp_path_factory.mktemp("damaged") / "x.safetensors"
    ttnet.save(path, tt)
    return tt, path


def loads_or_names_the_file(path, shape):
    """A damaged file gives a ValueError naming it, or (damage in a value) a valid TT."""
    try:
        loaded = ttnet.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        assert isinstance(loaded, TensorTrain) and loaded.shape == shape


@settings(max_examples=40)
@given(st.data())
def test_flipped_bytes_give_a_value_error_or_a_valid_value(tmp_path_factory, data):
    tt, path = saved_sample(tmp_path_factory)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    loads_or_names_the_file(path, tt.shape)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**13) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@settings(max_examples=60)
@given(st.data())
def test_hostile_header_values_give_a_value_error(tmp_path_factory, data):
    """Any JSON value in any header or metadata field: a ValueError naming the file."""
    tt, path = saved_sample(tmp_path_factory)
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header, body = json.loads(raw[8 : 8 + length]), raw[8 + length :]
    where = data.draw(st.sampled_from(["meta", "core"]))
    if where == "meta":
        key = data.draw(st.sampled_from(sorted(header["__metadata__"])))
        value = data.draw(JSON_VALUES)
        header["__metadata__"][key] = value if data.draw(st.booleans()) else json.dumps(value)
    else:
        entry = header[data.draw(st.sampled_from(["core_0", "core_1", "core_2"]))]
        entry[data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = data.draw(
            JSON_VALUES)
    header_file(path, header, body)
    loads_or_names_the_file(path, tt.shape)


def test_load_checks_library_argument(tmp_path):
    w = TTMatrix([np.ones((1, 2, 3, 1))])
    ttnet.save(tmp_path / "w.safetensors", w)
    with pytest.raises(ValueError, match="library: expected 'numpy' or 'torch'"):
        ttnet.load(tmp_path / "w.safetensors", library="jax")
