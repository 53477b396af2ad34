"""Serving speed: painml's server, batch files and CLI against ``mlflow models serve``, side by side.

Run:  .venv/bin/python bench/bench_serving.py [--model URI] [--tracking-uri URI] [--big]

Everything runs on this machine over loopback, with bounded request counts,
on one registered model (default ``models:/painml-pain-type@champion`` in the
store ``--tracking-uri`` / ``$MLFLOW_TRACKING_URI`` / ``./mlflow.db``):

1. HTTP, one patient per request: ``python serve.py http`` and
   ``mlflow models serve -m URI --env-manager local`` start as subprocesses;
   once both answer their health checks, ``--warmup`` requests each, then
   ``--requests`` timed requests each through an ``httpx`` keep-alive client,
   in alternating rounds so that load from other processes hits both alike.
   painml is asked without and with ``reasons=3``; MLflow's pyfunc has no
   reasons in its signature, so painml-with-reasons is compared with
   MLflow-without. Request bodies are patients from the simulator (MLflow
   gets them as ``dataframe_records`` typed as its signature says).
2. Batch: ``python serve.py batch`` on a simulated ``--rows`` file (CSV in,
   CSV out; also Parquet in and out), without and with top-3 reasons, each
   in a fresh process. Throughput is the batch command's own rows/s (file
   reading, validation, scoring and writing; not imports or model loading).
   Peak memory is the batch process's ``VmHWM``, polled every 50 ms while it
   runs. ``--big`` adds a 1,000,000-row CSV without reasons (the memory target).
   The peer: ``mlflow models predict -t csv`` on the same rows (record
   columns only, as its signature wants), compared wall to wall, start-up
   included on both sides.
3. Cold start: wall time of ``python serve.py predict --input patient.json``
   (default reasons, 3), ``--cold`` runs, median; the peer is
   ``mlflow models predict -t json`` on the same patient.

Timings come from a shared 2-core machine: the CPU pressure (Linux PSI,
``/proc/pressure/cpu``, share of time some task waited for a CPU) is printed
before and after each part, so disturbed runs are visible.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVE = [sys.executable, str(REPO / "serve.py")]

TARGETS = {
    "p50_reasons_ms": 3.0,
    "speedup": 5.0,
    "batch_rows_s": 50_000,
    "batch_reasons_rows_s": 10_000,
    "peak_gb": 2.0,
    "cold_s": 2.0,
}


def pressure() -> str:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return line.split()[1].replace("avg10=", "") + "%"
    except (OSError, IndexError):
        return "n/a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> float:
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def patients(n: int, seed: int) -> list[dict]:
    from painml.simulator.simulate import simulate

    frame = simulate("pain_clinic", n, seed=seed)
    keep = [c for c in frame.columns if not c.startswith("true_") and c != "pain_type"]
    return json.loads(frame.loc[:, keep].to_json(orient="records"))


def as_signature(record: dict) -> dict:
    """A record typed as the pyfunc signature says: numbers and findings as doubles, the rest as text."""
    from painml.record.columns import BY_NAME

    out = {}
    for name, value in record.items():
        kind = BY_NAME[name].kind
        if value is None:
            out[name] = None
        elif kind in ("binary", "integer", "number"):
            out[name] = float(value)
        else:
            out[name] = str(value)
    return out


def latencies(client, url: str, bodies: list[bytes], n: int) -> list[float]:
    out = []
    headers = {"content-type": "application/json"}
    for i in range(n):
        body = bodies[i % len(bodies)]
        start = time.perf_counter()
        response = client.post(url, content=body, headers=headers)
        out.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return out


def bench_http(args, env: dict, records: list[dict]) -> dict:
    import httpx

    painml_port, mlflow_port = free_port(), free_port()
    ours = subprocess.Popen(
        [*SERVE, "http", "--model", args.model, "--port", str(painml_port), *args.store_args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    peer = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            args.model,
            "--env-manager",
            "local",
            "-p",
            str(mlflow_port),
            "-h",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    result: dict = {"psi_before": pressure()}
    try:
        result["painml_start_s"] = wait_ready(f"http://127.0.0.1:{painml_port}/health", ours, 120)
        result["mlflow_start_s"] = wait_ready(f"http://127.0.0.1:{mlflow_port}/ping", peer, 180)
        ours_bodies = [json.dumps(r).encode() for r in records]
        peer_bodies = [json.dumps({"dataframe_records": [as_signature(r)]}).encode() for r in records]
        configs = {
            "painml": (f"http://127.0.0.1:{painml_port}/predict", ours_bodies),
            "painml_reasons": (f"http://127.0.0.1:{painml_port}/predict?reasons=3", ours_bodies),
            "mlflow": (f"http://127.0.0.1:{mlflow_port}/invocations", peer_bodies),
        }
        times: dict[str, list[float]] = {k: [] for k in configs}
        with httpx.Client(timeout=30.0) as client:  # one keep-alive connection per server
            for url, bodies in configs.values():
                latencies(client, url, bodies, args.warmup)
            rounds = 3
            per_round = -(-args.requests // rounds)
            for _ in range(rounds):
                for name, (url, bodies) in configs.items():
                    times[name] += latencies(client, url, bodies, per_round)
        for name, values in times.items():
            ms = np.array(values[: args.requests]) * 1e3
            result[name] = {
                "n": len(ms),
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "mean_ms": float(ms.mean()),
            }
    finally:
        stop(ours)
        stop(peer)
    result["psi_after"] = pressure()
    return result


def run_batch(args, env: dict, source: Path, output: Path, reasons: int) -> dict:
    cmd = [
        *SERVE,
        "batch",
        "--model",
        args.model,
        "--input",
        str(source),
        "--output",
        str(output),
        "--reasons",
        str(reasons),
        "--no-progress",
        *args.store_args,
    ]
    psi = pressure()
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - start
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"batch failed ({proc.returncode}):\n{stdout}\n{stderr}")
    rate = next(
        (
            float(part.split(" rows/s")[0].split("(")[-1].replace(",", ""))
            for part in stdout.splitlines()
            if "rows/s" in part
        ),
        float("nan"),
    )
    output.unlink(missing_ok=True)
    return {"rows_s": rate, "wall_s": wall, "peak_rss_mb": peak_kb / 1024, "psi_before": psi, "psi_after": pressure()}


def _high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM).

    Not ``wait4``'s ``ru_maxrss``: Linux carries the forked parent's resident
    pages over into the child's maximum, and this script holds a simulated
    cohort when it starts the batch.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_peer(args, env: dict, source: Path, content_type: str, output: Path) -> float:
    """Wall seconds of ``mlflow models predict`` on ``source`` (MLflow's own file scoring, same model)."""
    start = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "mlflow"),
            "models",
            "predict",
            "-m",
            args.model,
            "-i",
            str(source),
            "-t",
            content_type,
            "-o",
            str(output),
            "--env-manager",
            "local",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    output.unlink(missing_ok=True)
    return wall


def bench_batch(args, env: dict, workdir: Path) -> dict:
    from painml.simulator.simulate import simulate, write_cohort

    results = {}
    cohort = simulate("pain_clinic", args.rows, seed=17)
    csv_in, parquet_in, peer_in = workdir / "batch.csv", workdir / "batch.parquet", workdir / "peer.csv"
    write_cohort(cohort, csv_in)
    write_cohort(cohort, parquet_in)
    # MLflow checks its input against the signature: record columns only, findings and numbers as doubles
    from painml.record.columns import BY_NAME

    peer = cohort.loc[:, [c for c in cohort.columns if c in BY_NAME and c != "pain_type"]]
    peer.astype({c: "float64" for c in peer.columns if BY_NAME[c].kind in ("binary", "integer", "number")}).to_csv(
        peer_in, index=False
    )
    del peer
    del cohort
    results["csv"] = run_batch(args, env, csv_in, workdir / "out.csv", 0)
    peer_wall = run_peer(args, env, peer_in, "csv", workdir / "peer_out.json")
    results["mlflow_csv"] = {"wall_s": peer_wall, "rows_s": args.rows / peer_wall}
    results["parquet"] = run_batch(args, env, parquet_in, workdir / "out.parquet", 0)
    results["csv_reasons"] = run_batch(args, env, csv_in, workdir / "out_r.csv", 3)
    if args.big:
        big = workdir / "big.csv"
        write_cohort(simulate("pain_clinic", 1_000_000, seed=18), big)
        results["csv_1m"] = run_batch(args, env, big, workdir / "out_big.csv", 0)
        big.unlink()
    return results


def bench_cold(args, env: dict, workdir: Path, record: dict) -> dict:
    patient = workdir / "patient.json"
    patient.write_text(json.dumps(record))
    walls = []
    for _ in range(args.cold):
        start = time.perf_counter()
        subprocess.run(
            [*SERVE, "predict", "--model", args.model, "--input", str(patient), *args.store_args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        walls.append(time.perf_counter() - start)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import painml.serving.predictor, painml.cli.serve"], env=env, check=True)
    imports = time.perf_counter() - start
    peer_input = workdir / "peer_patient.json"
    peer_input.write_text(json.dumps({"dataframe_records": [as_signature(record)]}))
    peer = [run_peer(args, env, peer_input, "json", workdir / "peer_patient_out.json") for _ in range(args.cold)]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "runs": walls,
        "imports_s": imports,
        "mlflow_median_s": statistics.median(peer),
        "mlflow_runs": peer,
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(http: dict | None, batch: dict | None, cold: dict | None) -> None:
    rows = []
    if http:
        base = http["mlflow"]["p50_ms"]
        for name, label in (
            ("painml", "painml, no reasons"),
            ("painml_reasons", "painml, top-3 reasons"),
            ("mlflow", "mlflow models serve"),
        ):
            r = http[name]
            ratio = base / r["p50_ms"]
            target = ""
            if name == "painml_reasons":
                fast = verdict(r["p50_ms"] < TARGETS["p50_reasons_ms"])
                target = (
                    f"p50 < {TARGETS['p50_reasons_ms']:g} ms: {fast}; "
                    f">= {TARGETS['speedup']:g}x: {verdict(ratio >= TARGETS['speedup'])}"
                )
            rows.append(
                (
                    f"HTTP 1 row: {label}",
                    f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms",
                    f"{ratio:.1f}x" if name != "mlflow" else "1x",
                    target,
                )
            )
        rows.append(
            (
                "server start to healthy",
                f"painml {http['painml_start_s']:.1f} s, mlflow {http['mlflow_start_s']:.1f} s",
                "",
                "",
            )
        )
    if batch:
        for key, label, target_key in (
            ("csv", "batch CSV, no reasons", "batch_rows_s"),
            ("parquet", "batch Parquet, no reasons", "batch_rows_s"),
            ("csv_reasons", "batch CSV, top-3 reasons", "batch_reasons_rows_s"),
            ("csv_1m", "batch CSV 1M rows, no reasons", "batch_rows_s"),
        ):
            if key not in batch:
                continue
            r = batch[key]
            target = f">= {TARGETS[target_key]:,} rows/s: {verdict(r['rows_s'] >= TARGETS[target_key])}"
            if key == "csv_1m":
                target += f"; peak < 2 GB: {verdict(r['peak_rss_mb'] < TARGETS['peak_gb'] * 1024)}"
            ratio = ""
            if key == "csv" and "mlflow_csv" in batch:
                ratio = f"{batch['mlflow_csv']['wall_s'] / r['wall_s']:.1f}x (wall)"
            rows.append(
                (
                    label,
                    f"{r['rows_s']:,.0f} rows/s (wall {r['wall_s']:.1f} s incl. start), "
                    f"peak RSS {r['peak_rss_mb']:,.0f} MB",
                    ratio,
                    target,
                )
            )
        if "mlflow_csv" in batch:
            peer = batch["mlflow_csv"]
            rows.append(
                (
                    "batch CSV: mlflow models predict",
                    f"{peer['rows_s']:,.0f} rows/s (wall {peer['wall_s']:.1f} s incl. start)",
                    "1x",
                    "",
                )
            )
    if cold:
        rows.append(
            (
                "cold start: serve.py predict, 1 patient",
                f"median {cold['median_s']:.2f} s (min {cold['min_s']:.2f} s; imports alone {cold['imports_s']:.2f} s)",
                f"{cold['mlflow_median_s'] / cold['median_s']:.1f}x",
                f"< {TARGETS['cold_s']:g} s: {verdict(cold['median_s'] < TARGETS['cold_s'])}",
            )
        )
        rows.append(
            ("cold start: mlflow models predict, 1 patient", f"median {cold['mlflow_median_s']:.2f} s", "1x", "")
        )
    print("\n| measure | painml | vs MLflow | target |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    from painml.tracking.registry import DEFAULT_MODEL_URI

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL_URI)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--big", action="store_true", help="also a 1,000,000-row file (peak memory)")
    parser.add_argument("--cold", type=int, default=3, help="cold-start runs")
    parser.add_argument("--only", choices=("http", "batch", "cold"), action="append")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from painml.serving.predictor import Predictor
    from painml.tracking.store import resolve_tracking_uri

    store = resolve_tracking_uri(args.tracking_uri)
    args.store_args = ["--tracking-uri", store]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    predictor = Predictor.from_uri(args.model, tracking_uri=store)
    trees = predictor.compiled.trees if predictor.compiled else None
    n_trees = len(trees.arrays()["node_start"]) - 1 if trees is not None else "-"
    print(
        f"model {predictor.name} v{predictor.version} ({predictor.metadata.family}, "
        f"{n_trees} trees); store {store}; CPU pressure now {pressure()}"
    )
    only = set(args.only or ("http", "batch", "cold"))
    records = patients(max(args.requests, 50), seed=99)
    http = batch = cold = None
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        workdir = Path(tmp)
        if "http" in only:
            print(f"HTTP: {args.warmup} warm-up + {args.requests} timed requests per configuration ...", flush=True)
            http = bench_http(args, env, records)
            print(json.dumps(http, indent=1))
        if "batch" in only:
            print(f"batch: {args.rows:,} rows{' and 1,000,000' if args.big else ''} ...", flush=True)
            batch = bench_batch(args, env, workdir)
            print(json.dumps(batch, indent=1))
        if "cold" in only:
            print(f"cold start: {args.cold} runs ...", flush=True)
            cold = bench_cold(args, env, workdir, records[0])
            print(json.dumps(cold, indent=1))
    report(http, batch, cold)
    if args.json:
        args.json.write_text(json.dumps({"http": http, "batch": batch, "cold": cold}, indent=2))


if __name__ == "__main__":
    main()
