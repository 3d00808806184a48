#!/usr/bin/env python3
"""Warren as a cluster: a master and workers, each in its own network namespace on a private
star network (netns.py), started from the build tree (clusterutil.py). Jobs spread over workers;
a worker killed or cut off mid-job loses its lease and the job finishes elsewhere, once; a master
restarted (SIGTERM or SIGKILL) loses no job; keys decide who may connect (a registered key, the
pinned master key, a one-time join token); confinement decides who runs what; replicas outvote a
lying worker.

Every test builds its own network and tears it down (also on failure, on a signal, at exit).
One test alone: TEST_ONLY=<name part> python3 tests/integration/test_cluster.py (as root, with
WARREN=build/warren), or `meson test -C build test_cluster`."""

import hashlib
import os
import signal
import subprocess
import sys

from harness import TestFailure, check, check_eq, run_all, test
from clusterutil import SimWorker, WarrenCluster, stdout_of, wait_until
import netns
from netns import Cluster

TEST_LIMIT = 90  # seconds: a hung test is failed (and its network torn down), not waited for
WORKER_FIELDS = {"name", "state", "confinement", "slots", "running", "errors", "last_heartbeat"}


def bounded(fn):
    """Fails the test if it runs longer than TEST_LIMIT (SIGALRM raises inside it, so its
    with-blocks tear the cluster down)."""
    def run():
        def expired(sig, frame):
            raise TestFailure(f"{fn.__name__} took more than {TEST_LIMIT}s")
        old = signal.signal(signal.SIGALRM, expired)
        signal.alarm(TEST_LIMIT)
        try:
            fn()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    run.__name__ = fn.__name__
    return run


def sh(source, **extra):
    return dict({"app": "sh", "source": source}, **extra)


def running_workers(wc):
    """Names of the workers that hold a lease now."""
    return sorted(n for n, w in wc.master.worker_list(wc.admin).items() if w.get("running"))


def start_long_job(wc, line="started"):
    """Submits a job that prints a line, then sleeps 3 s; returns (job id, the worker running
    it) once the line has come out (the event stream) and one worker holds its lease."""
    jid = wc.submit(sh(f"echo {line}; sleep 3; echo done"))
    wc.master.events(wc.admin, jid, lambda e, d: e == "output" and line in str(d.get("text")),
                     timeout=30)
    names = wait_until(lambda: running_workers(wc), 10, f"the worker running {jid}")
    check_eq(len(names), 1, f"one worker runs the job ({names})")
    return jid, wc.workers[names[0]]


def host_links():
    p = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10)
    return sorted(line.split(":")[1].strip().split("@")[0] for line in p.stdout.splitlines())


def netns_names():
    return set(os.listdir(netns.NETNS_DIR)) if os.path.isdir(netns.NETNS_DIR) else set()


# ---- the harness itself (passes without a cluster-capable warren) ----

@test
@bounded
def test_netns_harness():
    before = host_links()
    # a leftover of a dead run is deleted by the next one
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = f"{netns.PREFIX}{gone.pid}-1m"
    subprocess.run(["ip", "netns", "add", dead], check=True, timeout=10)
    try:
        with Cluster(n_workers=3) as c:
            check(dead not in netns_names(), f"stale namespace {dead} deleted")
            names = netns_names()
            check({c.master_ns, *c.worker_ns.values()} <= names, f"namespaces made: {names}")
            for i in (1, 2, 3):
                check(c.ping(i), f"worker {i} answers the master")
                addrs = c.run(i, ["ip", "-o", "-4", "addr", "show", "dev", c.worker_veth(i)])
                check(f"{c.worker_addr(i)}/24" in addrs.stdout, f"worker {i} address: {addrs}")
                check(len(c.worker_veth(i)) <= 15 and len(c.master_veth(i)) <= 15, "IFNAMSIZ")
            # processes run in the namespace, and still see the cgroup hierarchy
            proc = c.run_in(2, ["sleep", "300"])
            want = os.stat(os.path.join(netns.NETNS_DIR, c.ns(2))).st_ino
            wait_until(lambda: os.stat(f"/proc/{proc.pid}/ns/net").st_ino == want, 5,
                       "sleep in worker 2's namespace (nsenter's setns)")
            r = c.run(2, ["ls", "-1", "/sys/fs/cgroup"])
            check_eq((r.returncode, sorted(r.stdout.split())),
                     (0, sorted(os.listdir("/sys/fs/cgroup"))), "/sys/fs/cgroup as on the host")
            # TCP from worker 2 to the master across the veth
            srv = netns.in_ns(c.master_ns, _listen, c.master_addr(2))
            with srv:
                cli = c.connect(2, c.master_addr(2), srv.getsockname()[1], timeout=5)
                conn, peer = srv.accept()
                check_eq(peer[0], c.worker_addr(2), "the master sees worker 2's address")
                cli.sendall(b"x")
                check_eq(conn.recv(1), b"x", "bytes cross")
                conn.close()
                cli.close()
            # a cut link, then restored
            c.link_down(2)
            check(not c.ping(2, timeout=0.5), "no answer while the link is down")
            check(c.ping(1) and c.ping(3), "the other links stay up")
            c.link_up(2)
            wait_until(lambda: c.ping(2, timeout=0.5), 10, "worker 2 answers again")
            netns_made = {c.master_ns, *c.worker_ns.values()}
            workdir = c.dir
        check(proc.returncode is not None, "the process was killed at teardown")
        check(not (netns_made & netns_names()), "namespaces deleted")
        check(not os.path.exists(workdir), "the cluster's directory removed")
        check_eq(host_links(), before, "the host's links untouched")
    finally:
        subprocess.run(["ip", "netns", "del", dead], capture_output=True, timeout=10)

    # SIGTERM to a test process tears its network down too
    code = ("import sys, time\nsys.path.insert(0, %r)\nfrom netns import Cluster\n"
            "c = Cluster(2)\nc.run_in(1, ['sleep', '300'])\nprint(c.tag, flush=True)\n"
            "time.sleep(300)\n" % os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        tag = child.stdout.readline().strip()
        check(tag, "the child built its cluster")
        check(any(n.startswith(tag) for n in netns_names()), "its namespaces exist")
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        check_eq(child.returncode, -signal.SIGTERM, "it dies of the signal")
        check(not any(n.startswith(tag) for n in netns_names()), "its namespaces are gone")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()


def _listen(addr):
    import socket
    s = socket.socket()
    s.bind((addr, 0))
    s.listen(1)
    s.settimeout(5)
    return s


# ---- the cluster (needs `warren node --role master|worker`) ----

@test
@bounded
def test_jobs_spread():
    with WarrenCluster(3) as wc:
        for i in (1, 2, 3):
            wc.add_worker(i, slots=2)
        wc.wait_connected(["w1", "w2", "w3"])
        ids = [wc.submit(sh(f"sleep 0.3; echo {i}")) for i in range(12)]
        jobs = [wc.master.wait_job(wc.admin, jid, 60) for jid in ids]
        for i, job in enumerate(jobs):
            check_eq(stdout_of(job), f"{i}\n", f"job {i} output")
        used = [job.get("worker") for job in jobs]
        check(all(w in ("w1", "w2", "w3") for w in used), f"each job names its worker: {used}")
        check(len(set(used)) > 1, f"more than one worker ran jobs: {used}")
        # the CLI lists the workers with the contract's fields
        ws = wait_until(lambda: (lambda ws: ws if all(w["running"] == 0 for w in ws.values())
                                 else None)(wc.master.workers_cli(wc.admin)),
                        10, "no lease held once every job ended")
        check_eq(sorted(ws), ["w1", "w2", "w3"], "warren workers --json")
        for name, w in ws.items():
            check(WORKER_FIELDS <= set(w), f"{name} fields: {sorted(w)}")
            check_eq((w["state"], w["confinement"], w["slots"], w["errors"]),
                     ("connected", "public", 2, 0), f"{name}")
            check(w["last_heartbeat"], f"{name} has a last heartbeat")


@test
@bounded
def test_inputs_travel_by_digest():
    """A job's data input reaches the worker by SHA-256 (FETCH/BLOB, checked, cached), its large
    output comes back as a blob; private data goes only to a worker allowed to see it."""
    with WarrenCluster(2) as wc:
        wc.add_worker(1, slots=1)                                   # public
        wc.add_worker(2, slots=1, confinement=("--private", "admin"))
        wc.wait_connected(["w1", "w2"])
        data = os.urandom(3 << 20)                                  # three FETCH pieces
        digest = hashlib.sha256(data).hexdigest()

        def upload(mode):
            r = wc.master.request("POST", f"/api/v1/data?name=in.bin&mode={mode}", raw=data,
                                  token=wc.admin,
                                  headers={"Content-Type": "application/octet-stream"})
            check_eq(r.status, 201, f"upload: {r}")
            return r.json["id"]

        public, private = upload("0755"), upload("0700")
        for did, where in ((public, ("w1", "w2")), (private, ("w2",))):
            for _ in range(2):                                      # the second: from the cache
                job = wc.run_job(sh("sha256sum in.bin | cut -c1-64; head -c 100000 in.bin",
                                    inputs=[{"data": did, "path": "in.bin"}]))
                check_eq(job["state"], "finished", f"job {job.get('error')}")
                run = job["result"]["run"]
                check(run["stdout"]["size"] == 65 + 100000, f"stdout size {run['stdout']}")
                check("url" in run["stdout"], "a large stdout is a blob of the master's")
                r = wc.master.request("GET", run["stdout"]["url"], token=wc.admin)
                check_eq(r.status, 200, "the blob")
                check_eq(r.body[:64].decode(), digest, "the input arrived whole")
                check_eq(r.body[65:], data[:100000], "the output came back whole")
                check(job["worker"] in where, f"{did} ran on {job['worker']}, allowed {where}")


@test
@bounded
def test_worker_killed_mid_job():
    with WarrenCluster(3) as wc:
        for i in (1, 2, 3):
            wc.add_worker(i, slots=1)
        wc.wait_connected(["w1", "w2", "w3"])
        jid, victim = start_long_job(wc)
        victim.kill()
        job = wc.master.wait_job(wc.admin, jid, 60)
        check_eq(stdout_of(job), "started\ndone\n", "one result, whole")
        check(job["attempts"] >= 2, f"attempts {job['attempts']}")
        check(job.get("worker") in set(wc.workers) - {victim.name},
              f"finished on another worker: {job.get('worker')!r} (killed {victim.name})")
        wc.wait_state(victim.name, "disconnected", 10)
        r = wc.master.request("GET", "/api/v1/jobs?limit=1000", token=wc.admin)
        check_eq([j["id"] for j in r.json["jobs"]], [jid], "the client sees one job")


@test
@bounded
def test_link_down_lease_expires():
    with WarrenCluster(3, lease_ms=1500) as wc:
        for i in (1, 2, 3):
            wc.add_worker(i, slots=1)
        wc.wait_connected(["w1", "w2", "w3"])
        jid, victim = start_long_job(wc)
        wc.net.link_down(victim.i)
        job = wc.master.wait_job(wc.admin, jid, 60)
        check_eq(stdout_of(job), "started\ndone\n", "the job finished")
        check(job.get("worker") in set(wc.workers) - {victim.name},
              f"finished elsewhere: {job.get('worker')!r} (cut {victim.name})")
        check(job["attempts"] >= 2, f"attempts {job['attempts']}")
        wc.wait_state(victim.name, "disconnected", 10)
        wc.net.link_up(victim.i)
        wc.wait_state(victim.name, "connected", 30)
        check(victim.alive(), "the cut worker lived through it")
        # its own late result (it kept running) changes nothing
        wc.heartbeats(victim.name, 5)
        again = wc.master.job(wc.admin, jid)
        check_eq((again["state"], again["result"], again.get("worker"), again["attempts"]),
                 (job["state"], job["result"], job.get("worker"), job["attempts"]),
                 "the job as it ended")
        # and it takes work again
        ids = [wc.submit(sh(f"sleep 0.5; echo {i}")) for i in range(6)]
        for i, jid in enumerate(ids):
            check_eq(stdout_of(wc.master.wait_job(wc.admin, jid, 60)), f"{i}\n", f"job {i}")


def master_restart(sig):
    with WarrenCluster(2) as wc:
        for i in (1, 2):
            wc.add_worker(i, slots=1)
        wc.wait_connected(["w1", "w2"])
        ids = [wc.submit(sh(f"echo job{i}; sleep 1")) for i in range(6)]
        wait_until(lambda: len(running_workers(wc)) == 2, 20, "both workers busy")
        states = [wc.master.job(wc.admin, jid)["state"] for jid in ids]
        check("queued" in states and "running" in states, f"queued and running: {states}")
        code = wc.master.stop(sig, timeout=30)
        if sig == signal.SIGTERM:
            check_eq(code, 0, f"the master exits 0 on SIGTERM: {wc.master.stderr()[-2000:]!r}")
        wc.master.start()
        wc.admin = wc.master.login()
        wc.wait_connected(["w1", "w2"])
        for i, jid in enumerate(ids):
            job = wc.master.wait_job(wc.admin, jid, 60)
            check_eq(stdout_of(job), f"job{i}\n", f"job {i} output, once")
        r = wc.master.request("GET", "/api/v1/jobs?limit=1000", token=wc.admin)
        check_eq(sorted(j["id"] for j in r.json["jobs"]), sorted(ids), "no job lost or added")


@test
@bounded
def test_master_restart_sigterm():
    master_restart(signal.SIGTERM)


@test
@bounded
def test_master_restart_sigkill():
    master_restart(signal.SIGKILL)


@test
@bounded
def test_unregistered_worker_key():
    with WarrenCluster(2) as wc:
        wc.add_worker(1, "good", slots=2)
        wc.add_worker(2, "stranger", register=False)
        wc.wait_connected(["good"])
        ids = [wc.submit(sh(f"echo {i}")) for i in range(6)]
        for i, jid in enumerate(ids):
            job = wc.master.wait_job(wc.admin, jid, 60)
            check_eq((stdout_of(job), job.get("worker")), (f"{i}\n", "good"), f"job {i}")
        wc.heartbeats("good", 5)
        ws = wc.master.worker_list(wc.admin)
        check(ws.get("stranger", {}).get("state") != "connected",
              f"an unregistered key never connects: {ws}")


@test
@bounded
def test_wrong_master_key():
    with WarrenCluster(2) as wc:
        wc.add_worker(1, "good", slots=2)
        impostor = wc.keys("not-the-master")
        wc.add_worker(2, "misled", master_key_file=impostor.public_file)
        wc.wait_connected(["good"])
        ids = [wc.submit(sh(f"echo {i}")) for i in range(4)]
        for i, jid in enumerate(ids):
            job = wc.master.wait_job(wc.admin, jid, 60)
            check_eq((stdout_of(job), job.get("worker")), (f"{i}\n", "good"), f"job {i}")
        wc.heartbeats("good", 5)
        w = wc.master.worker_list(wc.admin)["misled"]
        check_eq(w["state"], "disconnected", "a worker pinning another master key never "
                 "connects")
        check(not w.get("last_heartbeat"), f"and was never heard: {w}")


@test
@bounded
def test_join_token_once():
    with WarrenCluster(2) as wc:
        token = wc.master.join_token(wc.admin)
        wc.add_worker(1, "joiner", register=False, join_token=token)
        wc.wait_connected(["joiner"])
        job = wc.run_job(sh("echo joined"))
        check_eq((stdout_of(job), job.get("worker")), ("joined\n", "joiner"), "it runs jobs")
        wc.add_worker(2, "joiner2", register=False, join_token=token)
        wc.heartbeats("joiner", 8)
        ws = wc.master.worker_list(wc.admin)
        check("joiner2" not in ws, f"a used token lets no second worker in: {ws}")
        check(not any(w.get("state") == "connected" for n, w in ws.items() if n != "joiner"),
              f"nothing else connected: {ws}")


@test
@bounded
def test_confinement():
    with WarrenCluster(2) as wc:
        m = wc.master
        alice = m.add_user(wc.admin, "alice", "password-alice")
        bob = m.add_user(wc.admin, "bob", "password-bob")
        wc.add_worker(1, "alice-box", slots=2, confinement=("--private", "alice"))
        wc.add_worker(2, "public-box", slots=2)
        wc.wait_connected(["alice-box", "public-box"])
        r = m.request("POST", "/api/v1/apps", {
            "name": "alice-sh", "description": "mine", "source_file": "run.sh",
            "run": {"argv": ["/bin/sh", "{source}", "{args}"]}}, token=alice)
        check_eq(r.status, 201, f"alice's app: {r}")
        check_eq(r.json["mode"], "0700", "private by default")
        submitted = []  # (who, app, k, job id)
        for k in range(4):
            for who, t, app in (("alice", alice, "alice-sh"), ("bob", bob, "sh"),
                                ("admin", wc.admin, "sh"), ("alice", alice, "sh")):
                submitted.append((who, app, k, wc.submit(
                    {"app": app, "source": f"sleep 0.2; echo {who} {k}"}, token=t)))
        tokens = {"alice": alice, "bob": bob, "admin": wc.admin}
        for who, app, k, jid in submitted:
            job = m.wait_job(tokens[who], jid, 60)
            check_eq(stdout_of(job), f"{who} {k}\n", f"{who}'s {app} job {k}")
            w = job.get("worker")
            if app == "alice-sh":
                check_eq(w, "alice-box", f"alice's private app runs on her worker only ({jid})")
            elif who != "alice":
                check_eq(w, "public-box", f"{who}'s job never on alice's worker ({jid})")
            else:
                check(w in ("alice-box", "public-box"), f"alice's public job: {w!r}")


@test
@bounded
def test_replicas_outvote_a_liar():
    with WarrenCluster(3) as wc:
        wc.add_worker(1, "honest1", slots=1)
        wc.add_worker(2, "honest2", slots=1)
        wc.add_worker(3, "liar", slots=1, cls=SimWorker)
        wc.wait_connected(["honest1", "honest2", "liar"])
        job = wc.run_job(sh("echo the honest answer", replicas=3, quorum=2))
        check_eq(stdout_of(job), "the honest answer\n", "the quorum's output")
        check(job.get("worker") in ("honest1", "honest2"),
              f"the result taken is an honest one: {job.get('worker')!r}")
        ws = wait_until(lambda: (lambda ws: ws if ws["liar"]["errors"] >= 1 else None)(
            wc.master.workers_cli(wc.admin)), 10, "the liar's error counted")
        check_eq({n: w["errors"] for n, w in ws.items()},
                 {"honest1": 0, "honest2": 0, "liar": 1}, "errors")


if __name__ == "__main__":
    run_all()
