#!/usr/bin/env python3
"""The master's dispatch under load: a real `warren node --role master` and N simulated workers
(bench/simworker.c, one CURVE connection each), jobs submitted at a target rate.

Usage: bench/cluster.py [--warren build/warren] [--simworker build/bench/simworker]
                        [--workers 1000,10000] [--rate 1000] [--seconds 10] [--clients 32]

For each N: a fresh master (its own state directory, keys, a free HTTP port and a free worker
port), the N workers' keys registered through the API (POST /api/v1/workers as admin), the
simworkers started (several processes if one cannot hold N connections: --shard), a wait until
the master shows them connected, then `sh` jobs POSTed at --rate for --seconds by --clients
threads (one keep-alive connection each). Measured:

- the submission rate actually achieved (the target is only a target);
- dispatch throughput: ASSIGNs per second seen by the simworkers;
- assignment latency p50/p99: a simworker's receive time of the job's ASSIGN (CLOCK_REALTIME)
  minus the time the client got the job's 201 (same machine, same clock); also from the time the
  request was sent;
- the master's CPU% over the submission window (/proc/PID/stat utime+stime) and its memory
  (VmRSS at the end, VmHWM).

Target: p99 <= 50 ms at 1000 jobs/s with 10 000 workers.
"""

import argparse
import http.client
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TARGET_P99_MS = 50.0
TARGET_RATE = 1000.0
TARGET_WORKERS = 10000
FDS_PER_WORKER = 2  # simworker: a socket's mailbox (eventfd) + its TCP connection
FDS_SPARE = 64


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def pct(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Master:
    def __init__(self, warren, simworker, root, heartbeat_ms, lease_ms, extra):
        self.state = os.path.join(root, "state")
        os.makedirs(self.state)
        self.key = os.path.join(root, "master")
        self.make_key(warren, simworker, root)
        self.port = free_port()
        self.worker_port = free_port()
        self.worker_endpoint = f"tcp://127.0.0.1:{self.worker_port}"
        self.err_path = os.path.join(root, "master.stderr")
        self.err = open(self.err_path, "wb")
        args = [warren, "node", "--role", "master", "--state", self.state,
                "--listen", f"127.0.0.1:{self.port}", "--worker-listen", self.worker_endpoint,
                "--key", self.key + ".secret", "--heartbeat-ms", str(heartbeat_ms),
                "--lease-ms", str(lease_ms)] + extra
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 30
        while True:
            with open(self.err_path, "rb") as f:
                m = re.search(rb"listening on https?://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.err_path, "rb") as f:
                    tail = f.read()[-2000:].decode(errors="replace")
                sys.exit(f"cluster: the master did not start: {' '.join(args)}\n{tail}")
            time.sleep(0.02)
        with open(os.path.join(self.state, "admin.password")) as f:
            password = f.read().strip()
        self.token = None
        status, body = self.call("POST", "/api/v1/login", {"user": "admin", "password": password})
        if status != 200:
            sys.exit(f"cluster: login failed: {status} {body}")
        self.token = body["token"]

    def make_key(self, warren, simworker, root):
        """`warren keygen PATH` writes PATH and PATH.secret; simworker's keygen if that fails."""
        r = subprocess.run([warren, "keygen", self.key], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0 and os.path.exists(self.key + ".secret"):
            return
        d = os.path.join(root, "master-key")
        subprocess.run([simworker, "--keygen-only", "--workers", "1", "--keys-dir", d],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copy(os.path.join(d, "w0"), self.key)
        shutil.copy(os.path.join(d, "w0.secret"), self.key + ".secret")
        os.chmod(self.key + ".secret", 0o600)

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def call(self, method, path, body=None, conn=None):
        c = conn or self.connection()
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        data = r.read()
        if not conn:
            c.close()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data[:200]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def register_workers(master, keys, threads):
    """POST /api/v1/workers, one request per worker, over `threads` keep-alive connections."""
    lock = threading.Lock()
    it = iter(keys)
    failures = []

    def run():
        conn = master.connection()
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                break
            name, key = item
            status, body = master.call("POST", "/api/v1/workers",
                                       {"name": name, "public_key": key,
                                        "confinement": "public"}, conn=conn)
            if status not in (200, 201):
                with lock:
                    failures.append((name, status, str(body)[:200]))
        conn.close()

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failures:
        sys.exit(f"cluster: {len(failures)} registrations failed, first: {failures[0]}")


def connected_workers(master):
    """Workers the master reports connected (GET /api/v1/workers, all pages)."""
    n, cursor, conn = 0, None, master.connection()
    try:
        while True:
            path = "/api/v1/workers?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            status, body = master.call("GET", path, conn=conn)
            if status != 200 or not isinstance(body, dict):
                return None
            for w in body.get("workers", []):
                if w.get("connected") is True or w.get("state") == "connected" \
                        or w.get("status") == "connected":
                    n += 1
            cursor = body.get("next_cursor")
            if not cursor:
                return n
    finally:
        conn.close()


def start_simworkers(a, master, keys_dir, n, root):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    per_proc = max(1, (hard - FDS_SPARE) // FDS_PER_WORKER) if hard != resource.RLIM_INFINITY \
        else n
    shards = max(a.shards, math.ceil(n / per_proc))
    procs = []
    for k in range(shards):
        stats = os.path.join(root, f"assign-{k}.jsonl")
        args = [a.simworker, "--master", master.worker_endpoint, "--master-key", master.key,
                "--keys-dir", keys_dir, "--workers", str(n), "--shard", f"{k}/{shards}",
                "--heartbeat-ms", str(a.heartbeat_ms), "--stats", stats]
        out = open(os.path.join(root, f"simworker-{k}.stdout"), "wb")
        err = open(os.path.join(root, f"simworker-{k}.stderr"), "wb")
        procs.append((subprocess.Popen(args, stdout=out, stderr=err), out, err, stats))
    return procs


def stop_simworkers(procs):
    summaries = []
    for p, out, err, _ in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p, out, err, _ in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        out.close()
        err.close()
        with open(out.name) as f:
            for line in f:
                try:
                    summaries.append(json.loads(line))
                except ValueError:
                    pass
    return summaries


def submit(master, rate, seconds, clients, body):
    """Jobs due at t0 + k / rate; each client takes the next k and waits for its time."""
    total = int(rate * seconds)
    lock = threading.Lock()
    state = {"next": 0}
    sent, errors = [], []
    t0 = time.monotonic() + 0.2

    def run():
        conn = master.connection()
        mine = []
        while True:
            with lock:
                k = state["next"]
                state["next"] += 1
            if k >= total:
                break
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t_req = time.time_ns()
            try:
                status, resp = master.call("POST", "/api/v1/jobs", body, conn=conn)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = master.connection()
                with lock:
                    errors.append(("exception", str(e)[:200]))
                continue
            t_resp = time.time_ns()
            if status != 201 or not isinstance(resp, dict) or "id" not in resp:
                with lock:
                    errors.append((status, str(resp)[:200]))
                continue
            mine.append((resp["id"], t_req, t_resp))
        conn.close()
        with lock:
            sent.extend(mine)

    ts = [threading.Thread(target=run) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    return sent, errors, elapsed


def read_assignments(procs):
    """job id -> the earliest recv_ns of its ASSIGNs (replica 0 or whichever came first)."""
    first, n = {}, 0
    for _, _, _, stats in procs:
        if not os.path.exists(stats):
            continue
        with open(stats) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                n += 1
                j = r.get("job")
                if j not in first or r["recv_ns"] < first[j]:
                    first[j] = r["recv_ns"]
    return first, n


def run_one(a, n, keys, keys_dir):
    root = tempfile.mkdtemp(prefix=f"warren-bench-cluster-{n}-")
    master = Master(a.warren, a.simworker, root, a.heartbeat_ms, a.lease_ms, a.master_arg)
    procs = []
    try:
        t = time.monotonic()
        register_workers(master, keys[:n], a.register_threads)
        print(f"  {n} workers registered in {time.monotonic() - t:.1f} s")
        procs = start_simworkers(a, master, keys_dir, n, root)
        t = time.monotonic()
        deadline = t + a.connect_timeout
        seen = None
        while time.monotonic() < deadline:
            seen = connected_workers(master)
            if seen is not None and seen >= n:
                break
            if any(p.poll() is not None for p, *_ in procs):
                sys.exit(f"cluster: a simworker exited early; see {root}/simworker-*.stderr")
            time.sleep(1)
        if seen is None:
            print("  (GET /api/v1/workers gave no connected count; going on)")
        elif seen < n:
            print(f"  only {seen} of {n} workers connected after {a.connect_timeout:g} s; "
                  "going on")
        else:
            print(f"  {n} workers connected in {time.monotonic() - t:.1f} s")

        ticks0, w0 = proc_cpu_ticks(master.proc.pid), time.monotonic()
        sent, errors, elapsed = submit(master, a.rate, a.seconds, a.clients, a.job)
        ticks1, w1 = proc_cpu_ticks(master.proc.pid), time.monotonic()
        cpu_pct = 100.0 * (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (w1 - w0)
        deadline = time.monotonic() + a.drain
        while time.monotonic() < deadline:  # until every job is assigned (bounded)
            first, _ = read_assignments(procs)
            if all(j in first for j, _, _ in sent):
                break
            time.sleep(0.5)
        rss, hwm = proc_status(master.proc.pid, "VmRSS"), proc_status(master.proc.pid, "VmHWM")
    finally:
        summaries = stop_simworkers(procs)
        master.close()

    first, n_assign = read_assignments(procs)
    lat_resp = sorted((first[j] - t_resp) / 1e6 for j, _, t_resp in sent if j in first)
    lat_req = sorted((first[j] - t_req) / 1e6 for j, t_req, _ in sent if j in first)
    times = sorted(first[j] for j, _, _ in sent if j in first)
    span = (times[-1] - times[0]) / 1e9 if len(times) > 1 else float("nan")
    res = {
        "workers": n, "submitted": len(sent), "submit_errors": len(errors),
        "submit_rate": len(sent) / elapsed if elapsed > 0 else float("nan"),
        "assigned_jobs": len(lat_resp), "assignments": n_assign,
        "dispatch_per_s": len(times) / span if span and span > 0 else float("nan"),
        "p50_ms": pct(lat_resp, 0.50), "p99_ms": pct(lat_resp, 0.99),
        "p50_from_request_ms": pct(lat_req, 0.50), "p99_from_request_ms": pct(lat_req, 0.99),
        "negative": sum(1 for x in lat_resp if x < 0),
        "master_cpu_pct": cpu_pct, "master_rss_mb": rss / 1024, "master_hwm_mb": hwm / 1024,
        "simworkers": summaries, "first_error": errors[0] if errors else None, "dir": root,
    }
    if a.keep:
        print(f"  kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(
        description="The master's dispatch throughput and assignment latency with N simulated "
                    "workers (bench/simworker). Target: p99 <= 50 ms at 1000 jobs/s with "
                    "10 000 workers.")
    ap.add_argument("--warren", default="build/warren")
    ap.add_argument("--simworker", default="build/bench/simworker")
    ap.add_argument("--workers", default="1000,10000", help="N per run, comma-separated")
    ap.add_argument("--rate", type=float, default=TARGET_RATE, help="target jobs/s")
    ap.add_argument("--seconds", type=float, default=10, help="submission window")
    ap.add_argument("--clients", type=int, default=32, help="submitting threads")
    ap.add_argument("--shards", type=int, default=1,
                    help="simworker processes at least (more if the fd limit needs them)")
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    ap.add_argument("--lease-ms", type=int, default=10000)
    ap.add_argument("--register-threads", type=int, default=16)
    ap.add_argument("--connect-timeout", type=float, default=180)
    ap.add_argument("--drain", type=float, default=30,
                    help="seconds to wait after the window for the last assignments")
    ap.add_argument("--master-arg", action="append", default=[],
                    help="one more argument for the master's command line (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the state and logs")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    a = ap.parse_args()
    a.job = {"app": "sh", "files": {"main.sh": "echo hi"}}

    counts = [int(x) for x in a.workers.split(",")]
    keys_dir = tempfile.mkdtemp(prefix="warren-bench-cluster-keys-")
    try:
        r = subprocess.run([a.simworker, "--keygen-only", "--workers", str(max(counts)),
                            "--keys-dir", keys_dir], stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.exit("cluster: simworker --keygen-only failed")
        with open(os.path.join(keys_dir, "keys.txt")) as f:
            keys = [tuple(line.split()) for line in f if line.strip()]
        results = []
        for n in counts:
            print(f"{n} workers:")
            results.append(run_one(a, n, keys, keys_dir))
    finally:
        shutil.rmtree(keys_dir, ignore_errors=True)

    print()
    print(f"{'workers':>8} {'submitted':>9} {'jobs/s':>8} {'assign/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'p99 req':>8} {'cpu %':>6} {'RSS MB':>7} {'HWM MB':>7} "
          f"{'errors':>6}  target")
    for r in results:
        sim_errors = sum(s.get("errors", 0) for s in r["simworkers"])
        ok = r["p99_ms"] <= TARGET_P99_MS and r["submit_rate"] >= 0.95 * TARGET_RATE
        verdict = ("MET" if ok else "MISSED") if r["workers"] >= TARGET_WORKERS else "-"
        print(f"{r['workers']:>8} {r['submitted']:>9} {r['submit_rate']:>8.1f} "
              f"{r['dispatch_per_s']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['p99_from_request_ms']:>8.1f} {r['master_cpu_pct']:>6.1f} "
              f"{r['master_rss_mb']:>7.1f} {r['master_hwm_mb']:>7.1f} "
              f"{r['submit_errors'] + sim_errors:>6}  {verdict}")
        if r["assigned_jobs"] < r["submitted"]:
            print(f"         {r['submitted'] - r['assigned_jobs']} submitted jobs were never "
                  "assigned within the drain time")
        if r["negative"]:
            print(f"         {r['negative']} assignments arrived before their 201 did")
        if r["first_error"]:
            print(f"         first submission error: {r['first_error']}")
    print(f"target: p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE:g} jobs/s with "
          f"{TARGET_WORKERS} workers (p99 from the 201; 'p99 req' from the request's start)")
    if a.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
