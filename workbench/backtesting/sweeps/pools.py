"""Where a sweep's chunks run: this process (threads), a process pool, or a Dask cluster.

    for part in run_threads(job, chunks, threads=2): ...          # in-process
    for part in run_processes(job, chunks, processes=2): ...      # spawned workers
    for part in run_dask(job, chunks, client): ...                # a distributed cluster

Each runner yields :class:`ChunkResult` objects as chunks finish (in any order).

* Threads share the bars; :func:`simulate` and numpy's large-array operations release the
  GIL, so threads overlap well. Each thread has its own indicator cache.
* Processes are started with ``spawn`` (never ``fork``: the parent may already run numba,
  DuckDB or BLAS threads) and receive the job once, serialized with cloudpickle, so a
  strategy defined in a notebook (``__main__``) works; a script's ``__main__`` is not
  re-run in them, guard or no guard. Each process keeps its indicator cache across its
  chunks.
* On Dask the job is scattered to every worker once and each chunk is one task; a task
  keeps its indicator cache for its own chunk only (state kept in a worker's long-lived
  threads would outlive the sweep).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from workbench.backtesting.sweeps.chunks import Chunk
from workbench.backtesting.sweeps.worker import ChunkResult, SweepJob, WorkerState
from workbench.errors import ConfigError

__all__ = ["connect", "run_dask", "run_processes", "run_threads"]

_PROCESS_STATE: WorkerState | None = None  # the job of a pool process (set by its initializer)


# -- in this process --------------------------------------------------------------------


def _thread_loop(job: SweepJob, todo: queue.SimpleQueue, done: queue.SimpleQueue) -> None:
    try:
        with WorkerState(job) as worker:
            while (chunk := todo.get()) is not None:
                done.put(worker.run(chunk))
    except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
        done.put(e)
    finally:
        done.put(None)


def run_threads(job: SweepJob, chunks: Sequence[Chunk], threads: int = 1) -> Iterator[ChunkResult]:
    """Run ``chunks`` on ``threads`` threads of this process (1: in the calling thread)."""
    if threads <= 1 or len(chunks) == 1:
        with WorkerState(job) as worker:
            for chunk in chunks:
                yield worker.run(chunk)
        return
    todo: queue.SimpleQueue = queue.SimpleQueue()
    done: queue.SimpleQueue = queue.SimpleQueue()
    for chunk in chunks:
        todo.put(chunk)
    n = min(threads, len(chunks))
    for _ in range(n):
        todo.put(None)
    workers = [threading.Thread(target=_thread_loop, args=(job, todo, done), daemon=True,
                                name=f"sweep-{i}") for i in range(n)]
    for w in workers:
        w.start()
    try:
        yield from _drain(done, n)
    finally:
        while True:  # on an error, stop the others after their current chunk
            try:
                todo.get_nowait()
            except queue.Empty:
                break
        for _ in range(n):
            todo.put(None)
        for w in workers:
            w.join()


def _drain(done: queue.SimpleQueue, n_workers: int) -> Iterator[ChunkResult]:
    running = n_workers
    while running:
        item = done.get()
        if item is None:
            running -= 1
        elif isinstance(item, BaseException):
            raise item
        else:
            yield item


# -- a pool of processes ----------------------------------------------------------------


def _init_process(payload: bytes) -> None:
    import cloudpickle

    global _PROCESS_STATE
    _PROCESS_STATE = WorkerState(cloudpickle.loads(payload))


def _run_in_process(chunk: Chunk) -> ChunkResult:
    assert _PROCESS_STATE is not None, "the pool initializer did not run"
    return _PROCESS_STATE.run(chunk)


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Keep spawned children from re-running the parent's ``__main__`` script.

    ``spawn`` children import the parent's main module (by path, or by name under
    ``python -m``) before they run anything, which re-executes a script that calls
    ``wb.sweep`` at top level without an ``if __name__ == "__main__"`` guard. The job is
    cloudpickled, which serializes ``__main__``'s functions by value, so the children do
    not need that module: while they start, it looks like an interactive session's."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main and k in main.__dict__}
    if main is not None:
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                del main.__spec__


def run_processes(job: SweepJob, chunks: Sequence[Chunk],
                  processes: int) -> Iterator[ChunkResult]:
    """Run ``chunks`` on a pool of ``processes`` spawned processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import cloudpickle

    payload = cloudpickle.dumps(job)
    n = min(processes, len(chunks))
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_process, initargs=(payload,))
    del payload
    try:
        with _main_not_rerun():  # the pool starts its processes in the first submits
            futures = [pool.submit(_run_in_process, chunk) for chunk in chunks[:n]]
        futures += [pool.submit(_run_in_process, chunk) for chunk in chunks[n:]]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- a Dask cluster ---------------------------------------------------------------------


def connect(cluster):
    """``(client, owned)`` for an address string or a ``dask.distributed.Client``."""
    try:
        from dask.distributed import Client
    except ImportError as e:  # pragma: no cover - distributed is a dependency
        raise ConfigError("cluster= needs dask.distributed: pip install 'distributed'") from e
    if isinstance(cluster, Client):
        return cluster, False
    if isinstance(cluster, str):
        try:
            return Client(cluster, timeout="20s"), True
        except OSError as e:
            raise ConfigError(f"sweep: cannot reach the Dask scheduler at {cluster}: {e}") from e
    raise ConfigError(f"cluster must be a scheduler address like 'tcp://host:8786' or a "
                      f"dask.distributed.Client, got {type(cluster).__name__}")


def _run_remote(chunk: Chunk, job: SweepJob) -> ChunkResult:
    with WorkerState(job) as worker:
        return worker.run(chunk)


def run_dask(job: SweepJob, chunks: Sequence[Chunk], client) -> Iterator[ChunkResult]:
    """Scatter ``job`` to every worker of ``client`` once, run one task per chunk."""
    from dask.distributed import as_completed

    remote_job = client.scatter(job, broadcast=True, hash=False)
    futures = client.map(_run_remote, list(chunks), job=remote_job, pure=False,
                         key=[f"sweep-{job.key}-{c.index}" for c in chunks])
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel([*futures, remote_job])
