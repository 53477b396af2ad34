"""Load on a running ``painml serve http``: requests per second, errors and /health latency under load.

``python bench/bench_http_load.py --url http://127.0.0.1:8000 --seconds 10 --clients 8 --slow-share 0.25``

``--clients`` keep-alive connections post one simulated patient each, in a loop,
for ``--seconds``; ``--slow-share`` of the bodies carry a decimal as text (the
schema path: pandas and pandera, on a worker thread). Meanwhile one more client
asks ``/health`` every 50 ms: its latency shows whether the event loop stays free.
Any status other than 200 counts as an error. ``--token`` sends a bearer token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time


def bodies(n: int, slow_share: float, seed: int = 7) -> list[bytes]:
    from painml.simulator.simulate import simulate

    cohort = simulate("pain_clinic", n, seed=seed)
    keep = [c for c in cohort.columns if not c.startswith("true_") and c != "pain_type"]
    records = json.loads(cohort.loc[:, keep].to_json(orient="records"))
    slow_every = round(1 / slow_share) if slow_share > 0 else 0
    out = []
    for i, record in enumerate(records):
        record = {k: v for k, v in record.items() if v is not None}
        if slow_every and i % slow_every == 0:
            record["hba1c"] = "6.5"  # text: the fast checker passes it to the schema
        out.append(json.dumps(record).encode())
    return out


async def main(args: argparse.Namespace) -> None:
    import httpx

    headers = {"content-type": "application/json"}
    if args.token:
        headers["authorization"] = f"Bearer {args.token}"
    payloads = bodies(500, args.slow_share)
    counts = {"ok": 0, "errors": 0}
    health: list[float] = []
    stop = time.perf_counter() + args.seconds

    async def client(k: int) -> None:
        async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=30) as c:
            i = k
            while time.perf_counter() < stop:
                response = await c.post("/predict", content=payloads[i % len(payloads)])
                counts["ok" if response.status_code == 200 else "errors"] += 1
                i += args.clients

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=30) as c:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                await c.get("/health")
                health.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.05)

    start = time.perf_counter()
    await asyncio.gather(probe(), *(client(k) for k in range(args.clients)))
    elapsed = time.perf_counter() - start
    total = counts["ok"] + counts["errors"]
    print(
        f"{total:,} requests in {elapsed:.1f} s: {total / elapsed:,.0f} requests/s, {counts['errors']} errors "
        f"({args.clients} clients, {args.slow_share:.0%} through the schema); /health p50 "
        f"{statistics.median(health):.1f} ms, max {max(health):.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--slow-share", type=float, default=0.25)
    parser.add_argument("--token", default=None)
    asyncio.run(main(parser.parse_args()))
