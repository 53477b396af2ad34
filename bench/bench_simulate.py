"""Simulator speed: draw 1,000,000 patients (target: under 30 s on 2 cores).

Run: .venv/bin/python bench/bench_simulate.py [--n 1000000] [--shards 2]
Reports the time to draw (including the exact posterior over 144 states x K
amplification levels) and to write CSV and Parquet, each the best of
``--repeat`` runs, with the machine's load average: the target is for 2 free
cores, so a figure measured on a busy machine needs its load beside it, and
the CPU time the draw took (all threads of this process), which a busy machine
does not inflate. With ``--shards K`` the same cohort size is also drawn in K
seeded shards in parallel processes (``painml simulate --shards K``), timed the
same way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from painml.simulator.shards import simulate_sharded
from painml.simulator.simulate import CONDITIONS, N_STATES, K, simulate, write_cohort


def best_of(repeat: int, fn) -> tuple[float, object, float]:
    """Best wall time, the result, and the CPU time of that best run."""
    runs, result = [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        runs.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = min(runs)
    return wall, result, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--preset", default="pain_clinic")
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    draw_s, cohort, draw_cpu = best_of(args.repeat, lambda: simulate(args.preset, args.n, seed=1))
    with tempfile.TemporaryDirectory() as tmp:
        parquet_s, _, _ = best_of(1, lambda: write_cohort(cohort, Path(tmp) / "c.parquet"))
        csv_s, _, _ = best_of(1, lambda: write_cohort(cohort, Path(tmp) / "c.csv"))
    target = 30.0
    print(f"rows                 {args.n:>12,}")
    print(f"latent states        {N_STATES * K:>12,}   ({len(CONDITIONS)} x 3 x 3 x {K} amplification levels)")
    print(f"cores / load (1 min) {os.cpu_count():>12}   {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(
        f"draw + posterior     {draw_s:>10.2f} s   ({args.n / draw_s:,.0f} rows/s; target < {target:.0f} s: "
        f"{'met' if draw_s < target else 'MISSED'}, {target / draw_s:.1f}x headroom)"
    )
    print(f"draw CPU time        {draw_cpu:>10.2f} s   (all threads; under {target:.0f} s: {draw_cpu < target})")
    if args.shards > 1:
        sharded_s, _, _ = best_of(args.repeat, lambda: simulate_sharded(args.preset, args.n, 1, args.shards))
        print(
            f"draw in {args.shards} shards      {sharded_s:>10.2f} s   ({args.n / sharded_s:,.0f} rows/s; "
            f"{draw_s / sharded_s:.2f}x the single stream)"
        )
    print(f"write parquet        {parquet_s:>10.2f} s")
    print(f"write csv            {csv_s:>10.2f} s")


if __name__ == "__main__":
    main()
