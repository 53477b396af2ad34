"""Spark local mode beside ``serve.py batch``: the same Parquet file of simulated patients scored both ways.

Run:  .venv/bin/python bench/bench_spark.py --model MODEL [--tracking-uri URI] [--rows 1000000]
      [--master local[2]] [--reasons 0]

The input is ``--rows`` simulated patients in one Parquet file written in row
groups of 125,000 rows (Spark splits a Parquet file by row group, so that is
what lets its tasks run in parallel). Each command runs in a fresh process:

- ``serve.py batch --input FILE --output OUT.parquet`` (painml's own batch, chunks of 50,000);
- ``serve.py batch --engine spark --input FILE --output DIR --spark-master MASTER``.

For each: wall time of the whole command (start-up, JVM and model loading
included), rows per second over that wall time, CPU seconds per million rows
and peak memory, both summed over the command's whole process tree (Spark's JVM
and its Python workers included), sampled from ``/proc`` every 100 ms (CPU
time of a process is its last sample, so a worker that lives under 100 ms is
missed). The two outputs are compared on every probability.

Timings come from a shared 2-core machine: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SERVE = [sys.executable, str(REPO / "serve.py")]
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _sample(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of one process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE


def measure(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; its wall time, CPU seconds and peak memory over its whole process tree."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cpu: dict[int, float] = {}
    peak = 0
    while process.poll() is None:
        rss = 0
        for pid in _tree(process.pid):
            sample = _sample(pid)
            if sample is not None:
                cpu[pid] = sample[0]
                rss += sample[1]
        peak = max(peak, rss)
        time.sleep(0.1)
    wall = time.perf_counter() - start
    stdout, stderr = process.communicate()
    if process.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stdout}\n{stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": sum(cpu.values()), "peak_mb": peak / 2**20, "said": stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model URI or folder")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--reasons", type=int, default=0)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from painml.simulator.simulate import simulate

    env = dict(os.environ)
    common = ["--model", args.model, "--reasons", str(args.reasons)]
    if args.tracking_uri:
        common += ["--tracking-uri", args.tracking_uri]
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        tmp = Path(tmp)
        source = tmp / "cohort.parquet"
        cohort = simulate("pain_clinic", args.rows, seed=5)
        pq.write_table(pa.Table.from_pandas(cohort, preserve_index=False), source, row_group_size=125_000)
        del cohort
        print(f"{args.rows:,} rows, load average {os.getloadavg()[0]:.1f} before")
        runs = {
            "serve.py batch": measure(
                [*SERVE, "batch", "--input", str(source), "--output", str(tmp / "local.parquet"), "--no-progress"]
                + common,
                env,
            ),
            f"serve.py batch --engine spark ({args.master})": measure(
                [*SERVE, "batch", "--engine", "spark", "--input", str(source), "--output", str(tmp / "spark")]
                + ["--spark-master", args.master, *common],
                env,
            ),
        }
        print(f"load average {os.getloadavg()[0]:.1f} after")
        print(f"{'command':<44} {'wall s':>8} {'rows/s':>9} {'CPU s / 1M rows':>16} {'peak MB':>8}")
        for name, run in runs.items():
            rows_s = args.rows / run["wall_s"]
            cpu_per_million = run["cpu_s"] * 1_000_000 / args.rows
            print(f"{name:<44} {run['wall_s']:>8.1f} {rows_s:>9,.0f} {cpu_per_million:>16.1f} {run['peak_mb']:>8.0f}")
            print(f"    it said: {run['said'].splitlines()[0] if run['said'] else ''}")
        local = pd.read_parquet(tmp / "local.parquet").set_index("patient_id")
        spark = pd.read_parquet(tmp / "spark").set_index("patient_id").loc[local.index]
        columns = [c for c in local.columns if c.startswith("p_")]
        same = all(np.array_equal(local[c].to_numpy(), spark[c].to_numpy()) for c in columns)
        print(f"probabilities identical on all {len(local):,} rows: {same}")


if __name__ == "__main__":
    main()
