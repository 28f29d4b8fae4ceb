"""How a sweep is cut into chunks that fit a memory budget.

    budget = parse_bytes("4GB")                          # 4 * 2**30
    plan = plan_chunks(n_symbols=1000, n_combos=200, n_bars=2500,
                       budget=budget, workers=2, fixed=parent_bytes, per_worker=process_bytes)
    plan.chunks                                          # (Chunk(symbols=slice, combos=slice), ...)

A sweep has ``n_symbols x n_combos`` columns of ``n_bars`` bars. A chunk is a block of
symbols times a block of combinations; each worker holds one chunk at a time, and what a
chunk allocates is estimated at :data:`CELL_BYTES` per bar and column (the combination's
signals, the simulation's inputs and outputs and the metrics' temporaries). The budget
is shared: ``fixed`` bytes (the result arrays held by the caller) come off the top, each
of ``workers`` gets an equal share of the rest, from which its own ``per_worker``
footprint (a worker process, its copy of the bars, its indicator cache) is taken first.

Chunks are also kept under :data:`MAX_CHUNK_CELLS` (small arrays stay in cache and reuse
freed memory, which is faster than one huge chunk) and numerous enough to keep every
worker busy; within that, a chunk takes all symbols and as many combinations as fit, and
is split by symbols only when one combination over all symbols does not fit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from workbench.errors import ConfigError

__all__ = ["CELL_BYTES", "MAX_CHUNK_CELLS", "Chunk", "ChunkPlan", "available_memory",
           "default_budget", "format_bytes", "parse_bytes", "plan_chunks"]

# bytes a chunk allocates per bar and column: measured (tracemalloc) about 50 for one
# combination per chunk and 85 with tiled prices; the rest is room for strategies that
# keep more intermediate frames than an SMA crossover
CELL_BYTES = 128
MAX_CHUNK_CELLS = 2_000_000  # bars x columns in one chunk, whatever the budget
CHUNKS_PER_WORKER = 4  # at least this many chunks per worker when the grid allows
MIN_BLOCK_SYMBOLS = 32  # symbols are split for parallelism only into blocks this large
DEFAULT_BUDGET = 4 * 2**30
_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
          "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40,
          "TIB": 2**40}


def parse_bytes(value) -> int:
    """``"4GB"``, ``"512MB"``, ``"1.5G"`` or a number of bytes, as an int (binary units)."""
    if isinstance(value, bool):
        raise ConfigError(f"memory_budget must be a size like '4GB' or bytes, got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", value)
        if not m or m.group(2).upper() not in _UNITS:
            raise ConfigError(f"memory_budget must be a size like '4GB' or '512MB', got {value!r}")
        number, unit = float(m.group(1)), m.group(2).upper()
    else:
        raise ConfigError(f"memory_budget must be a size like '4GB' or bytes, got {value!r}")
    size = int(number * _UNITS[unit])
    if not math.isfinite(number) or size <= 0:
        raise ConfigError(f"memory_budget must be positive, got {value!r}")
    return size


def format_bytes(n: float) -> str:
    """Bytes for people: ``format_bytes(3 * 2**30) == '3.0 GB'``."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory() -> int | None:
    """Memory available to new allocations (psutil, else /proc/meminfo), or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_budget() -> int:
    """4 GB, or half the available memory when that is less."""
    available = available_memory()
    return DEFAULT_BUDGET if available is None else min(DEFAULT_BUDGET, available // 2)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of work: a block of symbols (positions) x a block of combinations."""

    index: int
    symbols: slice
    combos: slice

    @property
    def n_symbols(self) -> int:
        return self.symbols.stop - self.symbols.start

    @property
    def n_combos(self) -> int:
        return self.combos.stop - self.combos.start


@dataclass(frozen=True)
class ChunkPlan:
    """Block sizes and the chunks, symbol block major (a worker's chunks share indicators)."""

    symbols_per_chunk: int
    combos_per_chunk: int
    chunks: tuple[Chunk, ...]
    worker_bytes: int  # each worker's share of the budget
    chunk_bytes: int  # the estimated allocation of the largest chunk

    def __len__(self) -> int:
        return len(self.chunks)


def _blocks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _sizes(n_symbols: int, n_combos: int, max_columns: int, min_chunks: int) -> tuple[int, int]:
    """(symbols, combinations) per chunk: all symbols and as many combinations as allowed,
    symbols split when one combination does not fit or there are too few combinations."""
    if max_columns < n_symbols:
        blocks = max(math.ceil(n_symbols / max_columns), math.ceil(min_chunks / n_combos))
        return math.ceil(n_symbols / min(blocks, n_symbols)), 1
    combos = max(1, min(n_combos, max_columns // n_symbols, math.ceil(n_combos / min_chunks)))
    n_chunks = math.ceil(n_combos / combos)
    blocks = min(math.ceil(min_chunks / n_chunks), max(1, n_symbols // MIN_BLOCK_SYMBOLS))
    return math.ceil(n_symbols / max(1, blocks)), combos


def plan_chunks(n_symbols: int, n_combos: int, n_bars: int, *, budget: int, workers: int = 1,
                fixed: int = 0, per_worker: int = 0, cell_bytes: int = CELL_BYTES,
                max_cells: int = MAX_CHUNK_CELLS,
                chunks_per_worker: int = CHUNKS_PER_WORKER) -> ChunkPlan:
    """Cut ``n_symbols x n_combos`` columns of ``n_bars`` bars into chunks within ``budget``.

    Raises ``ConfigError`` naming the smallest sufficient budget when not even one column
    fits a worker's share.
    """
    if min(n_symbols, n_combos, n_bars, workers) < 1:
        raise ConfigError("plan_chunks: symbols, combinations, bars and workers must be >= 1")
    share = (budget - fixed) // workers
    room = share - per_worker
    column = n_bars * cell_bytes
    if room < column:
        need = fixed + workers * (per_worker + column)
        raise ConfigError(f"memory_budget {format_bytes(budget)} is too small for this sweep: "
                          f"it needs at least {format_bytes(need)} ({workers} worker(s)); "
                          f"raise memory_budget or use fewer workers")
    max_columns = max(1, min(room // column, max_cells // n_bars))
    min_chunks = max(1, workers * chunks_per_worker)
    per_symbols, per_combos = _sizes(n_symbols, n_combos, max_columns, min_chunks)
    chunks = tuple(
        Chunk(i, s, c)
        for i, (s, c) in enumerate((s, c) for s in _blocks(n_symbols, per_symbols)
                                   for c in _blocks(n_combos, per_combos))
    )
    return ChunkPlan(per_symbols, per_combos, chunks, int(share),
                     per_symbols * per_combos * column)
