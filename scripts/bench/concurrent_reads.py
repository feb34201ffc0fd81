#!/usr/bin/env python3
"""Memory of a node under concurrent raw reads (docs/reliability.md).

Writes SERIES series of POINTS points each to a running node, then runs
CLIENTS raw queries at once (each reads one whole series, its client asking
for limits far above the config's), samples the node's resident memory
while they run, and checks that the node keeps answering /status.

    concurrent_reads.py --url http://127.0.0.1:18490 --pid 1234

Prints one line per figure: name, value.
"""
import argparse
import json
import threading
import time
import urllib.error
import urllib.request


def post(url, body, content_type="application/json", timeout=600):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"content-type": content_type, "x-client-id": "bench"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def write_series(url, host, points, step_ms, chunk):
    for start in range(0, points, chunk):
        n = min(chunk, points - start)
        data = ",".join(f"[{(start + i + 1) * step_ms},{(start + i) % 1000 / 10}]" for i in range(n))
        body = ('{"series":{"key":"memory","tags":{"host":"%s"}},"data":{"type":"points","data":[%s]}}'
                % (host, data)).encode()
        status, reply = post(url + "/write", body)
        if status != 200:
            raise SystemExit(f"write failed: {status} {reply[:300]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--series", type=int, default=16)
    ap.add_argument("--points", type=int, default=3_000_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--step-ms", type=int, default=10_000)
    ap.add_argument("--skip-write", action="store_true")
    a = ap.parse_args()

    if not a.skip_write:
        t = time.time()
        threads = [threading.Thread(target=write_series, args=(a.url, f"h{i}", a.points, a.step_ms, 200_000))
                   for i in range(a.series)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        print(f"write_seconds\t{time.time() - t:.1f}", flush=True)
        time.sleep(2)

    base = rss_kib(a.pid, "VmRSS")
    end = (a.points + 1) * a.step_ms
    results = []
    lock = threading.Lock()

    def read(i):
        q = {"range": {"type": "absolute", "start": 0, "end": end},
             "filter": ["and", ["key", "memory"], ["=", "host", f"h{i % a.series}"]],
             # Asks for far more than the config allows: the config wins.
             "options": {"dataLimit": 10**12, "aggregationLimit": 10**12}}
        t = time.time()
        status, body = post(a.url + "/query/metrics", json.dumps(q).encode())
        points = 0
        if status == 200:
            # Counting the pairs is enough, and much cheaper than parsing
            # 3 million of them in Python: the client must not be the
            # bottleneck.
            points = body.count(b"],[") + 1 if body.count(b'"values":[[') == 1 else -1
        with lock:
            results.append((status, points, time.time() - t))

    peak = base
    status_ok = status_total = 0
    t = time.time()
    threads = [threading.Thread(target=read, args=(i,)) for i in range(a.clients)]
    for th in threads:
        th.start()
    last_status = 0.0
    while any(th.is_alive() for th in threads):
        peak = max(peak, rss_kib(a.pid, "VmRSS"))
        if time.time() - last_status > 0.5:
            last_status = time.time()
            status_total += 1
            try:
                with urllib.request.urlopen(a.url + "/status", timeout=5) as r:
                    status_ok += r.status == 200
            except Exception:
                pass
        time.sleep(0.05)
    for th in threads:
        th.join()
    wall = time.time() - t

    ok = [r for r in results if r[0] == 200]
    print(f"rss_before_mib\t{base / 1024:.0f}")
    print(f"rss_peak_mib\t{peak / 1024:.0f}")
    print(f"queries_200\t{len(ok)}")
    print(f"queries_503\t{sum(1 for r in results if r[0] == 503)}")
    print(f"queries_other\t{sum(1 for r in results if r[0] not in (200, 503))}")
    print(f"points_per_answer\t{ok[0][1] if ok else 0}")
    print(f"slowest_answer_seconds\t{max((r[2] for r in results), default=0):.1f}")
    print(f"wall_seconds\t{wall:.1f}")
    print(f"status_answered\t{status_ok}/{status_total}")


if __name__ == "__main__":
    main()
