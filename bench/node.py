#!/usr/bin/env python3
"""The node's throughput and latency: trivial jobs (`sh`, `echo 1`) submitted with wait=true by
1 and by 8 concurrent clients, each for a fixed time; and the node's idle memory.

Usage: bench/node.py [--warren build/warren] [--seconds 20] [--clients 1,8] [--workers N]

Prints jobs/s and p50/p99 latency per client count, the idle RSS of the node process (and of its
spawners, reported apart), and the ratios against the issue's targets and against the figures
published for Piston (Node + isolate) on a 2-core machine, which cannot run here (no Docker
engine): 3.1 jobs/s with 1 client (p50 320 ms), 5.6 jobs/s with 4 clients (p50 702 ms).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

PISTON = {1: (3.1, 320.0), 4: (5.6, 702.0)}  # clients: (jobs/s, p50 ms)
TARGETS = {"jobs_per_s_8": 250.0, "p50_ms_1": 15.0, "idle_rss_mb": 20.0}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Node:
    def __init__(self, warren, workers):
        self.state = tempfile.mkdtemp(prefix="warren-bench-node-")
        self.err = open(os.path.join(self.state, "stderr"), "wb")
        args = [warren, "node", "--state", self.state, "--listen", "127.0.0.1:0"]
        if workers:
            args += ["--workers", str(workers)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 30
        while True:
            with open(os.path.join(self.state, "stderr"), "rb") as f:
                m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("bench: the node did not start")
            time.sleep(0.01)
        with open(os.path.join(self.state, "admin.password")) as f:
            password = f.read().strip()
        status, body = self.call("POST", "/api/v1/login", {"user": "admin", "password": password})
        self.token = body["token"]

    def call(self, method, path, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            h["Authorization"] = "Bearer " + self.token
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        data = r.read()
        if not conn:
            c.close()
        return r.status, json.loads(data) if data else None

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.err.close()
        shutil.rmtree(self.state, ignore_errors=True)


def run_clients(node, clients, seconds):
    latencies, errors = [], []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    job = {"app": "sh", "source": "echo 1"}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=120)
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            status, body = node.call("POST", "/api/v1/jobs?wait=true", job, conn=conn)
            dt = time.perf_counter() - t0
            ok = (status == 201 and body["state"] == "finished"
                  and body["result"]["run"]["stdout"].get("text") == "1\n")
            if not ok:
                with lock:
                    errors.append((status, str(body)[:200]))
                continue
            mine.append(dt)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    latencies.sort()
    n = len(latencies)
    p = lambda q: latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")  # noqa: E731
    return {"clients": clients, "jobs": n, "errors": len(errors), "jobs_per_s": n / elapsed,
            "p50_ms": p(0.50), "p99_ms": p(0.99), "first_error": errors[0] if errors else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warren", default="build/warren")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()

    node = Node(a.warren, a.workers)
    try:
        # Idle: after start-up and a login, before any job.
        time.sleep(1)  # let start-up allocations settle; this is a measurement, not a wait
        idle_main = rss_kb(node.proc.pid)
        idle_spawners = sum(rss_kb(c) for c in children(node.proc.pid))
        print(f"idle RSS: node process {idle_main / 1024:.1f} MB, "
              f"spawner processes {idle_spawners / 1024:.1f} MB")
        node.call("POST", "/api/v1/jobs?wait=true", {"app": "sh", "source": "echo 1"})  # warm
        results = []
        for c in [int(x) for x in a.clients.split(",")]:
            r = run_clients(node, c, a.seconds)
            results.append(r)
            print(f"{c} client(s), {a.seconds:g} s: {r['jobs']} jobs, {r['jobs_per_s']:.1f} jobs/s, "
                  f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, errors {r['errors']}"
                  + (f" (first: {r['first_error']})" if r["errors"] else ""))
        busy_main = rss_kb(node.proc.pid)
        print(f"RSS after the runs: node process {busy_main / 1024:.1f} MB")
    finally:
        node.close()

    print("\nagainst the targets and Piston's published figures:")
    for r in results:
        c = r["clients"]
        ref = PISTON.get(c) or PISTON[4]
        print(f"  {c} client(s): {r['jobs_per_s'] / ref[0]:.1f}x Piston's jobs/s "
              f"({ref[0]} with {c if c in PISTON else 4} clients), "
              f"p50 {ref[1] / r['p50_ms']:.1f}x lower than Piston's {ref[1]:g} ms")
        if c == 8:
            print(f"  target >= {TARGETS['jobs_per_s_8']:g} jobs/s with 8 clients: "
                  f"{r['jobs_per_s']:.1f} ({r['jobs_per_s'] / TARGETS['jobs_per_s_8']:.2f} of it)")
        if c == 1:
            print(f"  target p50 <= {TARGETS['p50_ms_1']:g} ms with 1 client: {r['p50_ms']:.1f} ms")
    print(f"  target idle RSS <= {TARGETS['idle_rss_mb']:g} MB: {idle_main / 1024:.1f} MB "
          f"(node process)")
    if any(r["errors"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
