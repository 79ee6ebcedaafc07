"""Finished runs cached on disk, and running many of them in parallel worker processes.

Each finished run is one JSON file written atomically into a cache folder, named by its method,
seed and learning rate and holding the full key it was computed for; a run whose file holds the
same key is not computed again. So a study or multitask experiment that was killed continues
where it stopped, and one whose settings changed recomputes only what they touch.

:func:`execute` runs jobs in the calling process (``jobs=1``) or in a pool of ``spawn``-ed
processes, each of which builds its state (the model, the tokenised data) once. Workers ignore
Ctrl-C; the parent stops them and re-raises, so results already stored stay stored.

Example:
    >>> import tempfile, pathlib
    >>> from loretta.demo.runs import RunCache
    >>> cache = RunCache(pathlib.Path(tempfile.mkdtemp()))
    >>> key = {"method": "head", "seed": 0, "lr": 0.002, "train_size": 2000}
    >>> cache.load(key) is None
    True
    >>> cache.store(key, {"accuracy": 0.6})
    >>> cache.load(key)["accuracy"], cache.load({**key, "train_size": 64})
    (0.6, None)
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ttnet.atomic import atomic_write

__all__ = ["RunCache", "execute"]


class RunCache:
    """A folder of finished runs, one JSON file per run key.

    Args:
        folder: The folder (created on the first store).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: dict[str, Any]) -> Path:
        """The file of ``key``: readable name fields plus a hash of the whole key."""
        text = json.dumps(key, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        name = "-".join(f"{key[k]}" for k in ("method", "seed", "lr") if k in key)
        return self.folder / f"{name}-{digest}.json"

    def load(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """The stored record of ``key``, or None (missing, unreadable or for another key)."""
        path = self.path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != json.loads(json.dumps(key)):
            return None
        return record

    def store(self, key: dict[str, Any], record: dict[str, Any]) -> None:
        """Write ``record`` (with ``key`` added) atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path(key), json.dumps({"key": key, **record}, indent=1) + "\n")


_STATE: Any = None


def _start_worker(make_state: Callable[..., Any], args: tuple) -> None:
    global _STATE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _STATE = make_state(*args)


def _call(item: tuple[Callable[[Any, Any], Any], Any]) -> tuple[Any, Any]:
    work, job = item
    return job, work(_STATE, job)


def execute(
    jobs: Iterable[Any],
    work: Callable[[Any, Any], Any],
    make_state: Callable[..., Any],
    state_args: tuple,
    *,
    processes: int = 1,
    on_done: Callable[[Any, Any], None],
    threads: int = 1,
) -> None:
    """Run ``work(state, job)`` for every job; call ``on_done(job, result)`` as each finishes.

    Args:
        jobs: The jobs (picklable when ``processes > 1``).
        work: A module-level function.
        make_state: Builds the per-process state from ``state_args`` (once per process).
        state_args: Its arguments.
        processes: 1: in this process; more: a pool of that many ``spawn``-ed processes.
        on_done: Called in this process, in completion order.
        threads: Torch threads of each worker process.

    Example:
        >>> out = []
        >>> execute([1, 2], lambda state, job: state * job, int, ("10",),
        ...         on_done=lambda job, result: out.append(result))
        >>> out
        [10, 20]
    """
    jobs = list(jobs)
    if not jobs:
        return
    if processes == 1:
        state = make_state(*state_args)
        for job in jobs:
            on_done(job, work(state, job))
        return
    context = multiprocessing.get_context("spawn")
    init_args = (_with_threads, (threads, make_state, state_args))
    with context.Pool(min(processes, len(jobs)), _start_worker, init_args) as pool:
        try:
            for job, result in pool.imap_unordered(_call, [(work, job) for job in jobs]):
                on_done(job, result)
        except BaseException:
            pool.terminate()
            raise
        pool.close()
        pool.join()


def _with_threads(threads: int, make_state: Callable[..., Any], args: tuple) -> Any:
    import torch

    torch.set_num_threads(threads)
    return make_state(*args)
