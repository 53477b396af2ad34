"""Large cohorts drawn in shards: independent seeded streams, drawn in parallel processes.

A cohort of ``n`` patients is cut into ``shards`` contiguous blocks. Shard
``k`` draws its patients with :func:`painml.simulator.simulate.simulate` from
the ``k``-th child of ``numpy.random.SeedSequence(seed).spawn(shards)``, so the
streams are statistically independent and each shard is reproducible on its
own (same seed, shard and shard count: same frame), whichever process or
machine draws it. Patient IDs keep the single-stream form ``S{seed}-{i}``
with ``i`` running over the whole cohort, each shard its own range.

A sharded cohort is not the single-stream cohort of the same seed: the
patients are different draws from the same population (one shard is the
single stream itself).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from painml.simulator.simulate import simulate


def shard_sizes(n: int, shards: int) -> list[int]:
    """Patients per shard: as equal as possible, the first ones one larger."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    if n < shards:
        raise ValueError(f"{n:,} patients cannot fill {shards} shards: each needs at least one")
    base, extra = divmod(n, shards)
    return [base + (k < extra) for k in range(shards)]


def shard_seed(seed: int, shard: int, shards: int) -> int:
    """The seed of one shard: 128 bits from the shard's child of ``SeedSequence(seed)``."""
    child = np.random.SeedSequence(seed).spawn(shards)[shard]
    return int.from_bytes(child.generate_state(4, np.uint32).tobytes(), "little")


def simulate_shard(
    preset: str,
    n: int,
    seed: int,
    shard: int,
    shards: int,
    *,
    label: str | None = None,
    response_level: float | None = None,
) -> pd.DataFrame:
    """Shard ``shard`` (0-based) of a cohort of ``n`` patients cut into ``shards``; its index starts at 0.

    With one shard this is ``simulate(preset, n, seed)`` itself.
    """
    sizes = shard_sizes(n, shards)
    if not 0 <= shard < shards:
        raise ValueError(f"shard must be between 0 and {shards - 1}, got {shard}")
    if shards == 1:
        return simulate(preset, n, seed, label=label, response_level=response_level)
    frame = simulate(preset, sizes[shard], shard_seed(seed, shard, shards), label=label, response_level=response_level)
    first = sum(sizes[:shard]) + 1
    numbers = np.arange(first, first + sizes[shard]).astype(str)
    frame["patient_id"] = pd.array(np.char.add(f"S{seed}-", numbers).astype(object), dtype=frame["patient_id"].dtype)
    return frame


def simulate_sharded(
    preset: str,
    n: int,
    seed: int,
    shards: int,
    *,
    workers: int | None = None,
    label: str | None = None,
    response_level: float | None = None,
) -> pd.DataFrame:
    """Every shard of a cohort, drawn in ``workers`` processes (default: one per shard, at most one per
    core), concatenated in shard order."""
    sizes = shard_sizes(n, shards)
    if shards == 1:
        return simulate(preset, n, seed, label=label, response_level=response_level)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = workers or min(shards, cores)
    kwargs = {"label": label, "response_level": response_level}
    parts = Parallel(n_jobs=workers, max_nbytes=None)(
        delayed(simulate_shard)(preset, n, seed, k, shards, **kwargs) for k in range(len(sizes))
    )
    return pd.concat(parts, ignore_index=True)
