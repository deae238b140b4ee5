"""An API client in its own process: GETs while the core ingests, prints latency figures as JSON.

    _reader.py URL TOKEN PATH [PATH ...] --rate 20

Requests the paths round-robin at ``--rate`` per second over one keep-alive
connection (a panel's browser does the same) until stdin closes, then prints
one JSON line: n, errors, p50/p95/p99/max in ms.  A separate process, so its
own work never borrows the core's GIL.  With ``FIREBUS_BENCH_TRACE_READS=FILE`` every
request is also written to FILE as ``[perf_counter at send, path, ms]`` (to line slow
reads up with a profile of the core).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("token")
    p.add_argument("paths", nargs="+")
    p.add_argument("--rate", type=float, default=20.0)
    args = p.parse_args()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    u = urlsplit(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Authorization": f"Bearer {args.token}"}
    lat: list[float] = []
    errors: dict[str, int] = {}
    failed_paths: dict[str, int] = {}
    samples: list[tuple[float, str, float]] = []
    i = 0
    period = 1.0 / args.rate
    next_at = time.perf_counter()
    while not stop.is_set():
        path = args.paths[i % len(args.paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors[str(r.status)] = errors.get(str(r.status), 0) + 1
            else:
                lat.append((time.perf_counter() - t0) * 1000)
                samples.append((round(t0, 4), path, round(lat[-1], 1)))
        except (OSError, http.client.HTTPException) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            failed_paths[path.rsplit("/", 1)[0]] = failed_paths.get(path.rsplit("/", 1)[0], 0) + 1
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        next_at += period
        time.sleep(max(0.0, next_at - time.perf_counter()))
    if trace := os.environ.get("FIREBUS_BENCH_TRACE_READS"):
        with open(trace, "w") as f:
            json.dump(samples, f)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    print(json.dumps({"n": len(lat), "errors": errors, "failed_paths": failed_paths, "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1),
                      "p99_ms": round(q[98], 1), "max_ms": round(max(lat), 1) if lat else None}))


if __name__ == "__main__":
    main()
