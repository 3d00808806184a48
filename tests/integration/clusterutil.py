"""Warren nodes on a netns.Cluster: a master in the master namespace, workers in theirs.

The command lines follow the cluster's CLI contract:
  warren keygen PATH                       PATH (the Z85 public key) and PATH.secret (0600)
  warren node --role master --state DIR --listen 127.0.0.1:P
              --worker-listen tcp://0.0.0.0:7781 --key MASTER.secret
              [--heartbeat-ms N --lease-ms N --max-attempts N]
  warren node --role worker --state DIR --master tcp://10.231.i.1:7781
              --master-key MASTER_PUBLIC --key WORKER.secret --workers SLOTS
              [--name NAME] [--join-token TOKEN] [--heartbeat-ms N]
  warren worker add NAME --key WORKER_PUBLIC [--public|--group G|--private USER]
  warren worker token [...]                prints a one-time join token
  warren workers --json                    (or GET /api/v1/workers)
  bench/simworker --master ... --master-key F --key SECRET --workers 1 --lie

The master's HTTP API listens on 127.0.0.1 inside the master's namespace: the test reaches it over
sockets made in that namespace (netns.in_ns), and runs the CLI client there with nsenter.

    with WarrenCluster(n_workers=3) as wc:
        for i in (1, 2, 3):
            wc.add_worker(i)                  # keygen, `worker add --public`, start
        wc.wait_connected(wc.workers)
        job = wc.run_job({"app": "sh", "source": "echo hi"})
"""

import http.client
import json
import os
import signal
import subprocess
import time

from harness import TestFailure, WARREN, check, check_eq
from netns import Cluster
from nodeutil import Node

SIMWORKER = os.environ.get("WARREN_SIMWORKER") or os.path.join(
    os.path.dirname(os.path.abspath(WARREN)), "bench", "simworker")
WORKER_PORT = 7781
HTTP_PORT = 8080  # the master's, on its namespace's loopback: no other listener there
ENDED = ("finished", "failed", "cancelled")


def wait_until(pred, timeout, what, interval=0.05, show=None):
    """Polls pred() until it returns something true (returned), at most timeout seconds; then
    fails saying what was awaited and what pred() last returned (or what show() says)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            seen = show() if show else last
            raise TestFailure(f"timed out after {timeout}s waiting for {what} (last: {seen!r})")
        time.sleep(interval)


def keygen(path):
    """`warren keygen PATH`: checks the contract's files and returns the public key."""
    p = subprocess.run([WARREN, "keygen", path], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise TestFailure(f"warren keygen {path}: exit {p.returncode}: {p.stderr.strip()!r}")
    key = p.stdout.strip()
    check_eq(len(key), 40, f"keygen public key length ({key!r})")
    with open(path) as f:
        check_eq(f.read().strip(), key, "the public file holds the printed key")
    check_eq(os.stat(path + ".secret").st_mode & 0o777, 0o600, "secret file mode")
    return key


class Keys:
    """A key pair made with `warren keygen` under the cluster's directory."""

    def __init__(self, directory, name):
        self.public_file = os.path.join(directory, f"{name}.key")
        self.secret_file = self.public_file + ".secret"
        self.public = keygen(self.public_file)


class NsHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket is made inside a network namespace."""

    def __init__(self, cluster, ns, host, port, timeout):
        super().__init__(host, port, timeout=timeout)
        self.cluster = cluster
        self.ns = ns

    def connect(self):
        self.sock = self.cluster.connect(self.ns, self.host, self.port, self.timeout)


class Master(Node):
    """`warren node --role master` in the cluster's master namespace; a nodeutil.Node otherwise
    (request(), login(), add_user(), submit(), stop(), kill(), start() again on its state)."""

    def __init__(self, cluster, keys, port=HTTP_PORT, heartbeat_ms=200, lease_ms=1500,
                 max_attempts=3, extra=()):
        self.cluster = cluster
        self.keys = keys
        self.http_port = port
        self.heartbeat_ms = heartbeat_ms
        self.lease_ms = lease_ms
        self.max_attempts = max_attempts
        state = os.path.join(cluster.dir, "master")
        os.makedirs(state, mode=0o700, exist_ok=True)
        self.home = os.path.join(cluster.dir, "home")
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        super().__init__(*extra, state=state)

    def command(self):
        return [WARREN, "node", "--role", "master", "--state", self.state,
                "--listen", f"127.0.0.1:{self.http_port}",
                "--worker-listen", f"tcp://0.0.0.0:{WORKER_PORT}",
                "--key", self.keys.secret_file,
                "--heartbeat-ms", str(self.heartbeat_ms), "--lease-ms", str(self.lease_ms),
                "--max-attempts", str(self.max_attempts)]

    def spawn(self, argv, **kwargs):
        if ("master", self.stderr_path) not in self.cluster.logs:
            self.cluster.logs.append(("master", self.stderr_path))
        return self.cluster.run_in(self.cluster.master_ns, argv, what="master", **kwargs)

    def connection(self, timeout=60):
        return NsHTTPConnection(self.cluster, self.cluster.master_ns, "127.0.0.1", self.port,
                                timeout)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    # ---- the CLI, run inside the master's namespace ----

    def cli(self, args, token, timeout=30):
        """Runs `warren ARGS` with the node's URL and token; a CompletedProcess (text)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("WARREN_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env.update(HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, ".config"),
                   WARREN_URL=self.url)
        if token:
            env["WARREN_TOKEN"] = token
        return self.cluster.run(self.cluster.master_ns, [WARREN] + list(args), timeout=timeout,
                                env=env)

    def cli_ok(self, args, token, timeout=30):
        p = self.cli(args, token, timeout)
        if p.returncode != 0:
            raise TestFailure(f"warren {' '.join(args)}: exit {p.returncode}: "
                              f"{p.stderr.strip()!r}")
        return p

    def register_worker(self, token, name, keys, confinement=("--public",)):
        """`warren worker add NAME --key PUBLIC_FILE [--public|--group G|--private U]`."""
        return self.cli_ok(["worker", "add", name, "--key", keys.public_file]
                           + list(confinement), token)

    def join_token(self, token, *args):
        """`warren worker token [ARGS]`: the one-time token (the last line it prints)."""
        out = self.cli_ok(["worker", "token"] + list(args), token).stdout.strip()
        check(out, "worker token printed nothing")
        return out.splitlines()[-1].strip()

    # ---- workers as the master sees them ----

    @staticmethod
    def _worker_list(doc, what):
        if isinstance(doc, dict) and isinstance(doc.get("workers"), list):
            return doc["workers"]
        if isinstance(doc, list):
            return doc
        raise TestFailure(f"{what}: not a list of workers: {doc!r}")

    def worker_list(self, token):
        """GET /api/v1/workers: {name: worker}."""
        r = self.request("GET", "/api/v1/workers", token=token, timeout=10)
        if r.status != 200:
            raise TestFailure(f"GET /api/v1/workers: {r}")
        return {w["name"]: w for w in self._worker_list(r.json, "GET /api/v1/workers")}

    def workers_cli(self, token):
        """`warren workers --json`: {name: worker}."""
        p = self.cli_ok(["workers", "--json"], token)
        try:
            doc = json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure(f"warren workers --json: not JSON ({e}): {p.stdout[:300]!r}")
        return {w["name"]: w for w in self._worker_list(doc, "warren workers --json")}

    # ---- jobs ----

    def job(self, token, jid, wait=0):
        path = f"/api/v1/jobs/{jid}" + (f"?wait=true&timeout={wait}" if wait else "")
        r = self.request("GET", path, token=token, timeout=wait + 30)
        if r.status != 200:
            raise TestFailure(f"GET job {jid}: {r}")
        return r.json

    def wait_job(self, token, jid, timeout=60):
        """The job once it has ended (finished, failed or cancelled), within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = int(deadline - time.monotonic())
            try:
                job = self.job(token, jid, wait=max(1, min(left, 20)))
            except (OSError, http.client.HTTPException):
                job = None  # the master restarting: ask again
            if job and job["state"] in ENDED:
                return job
            if time.monotonic() >= deadline:
                raise TestFailure(f"job {jid} did not end within {timeout}s: {job!r}")
            if job is None:
                time.sleep(0.1)

    def events(self, token, jid, until, timeout=30):
        """Reads job jid's event stream until until(event, data) is true; returns the events
        read so far as (event, data) pairs. Fails if the stream ends first or after timeout."""
        deadline = time.monotonic() + timeout
        c = self.connection(timeout)
        seen = []
        try:
            c.request("GET", f"/api/v1/jobs/{jid}/events",
                      headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            check_eq(r.status, 200, f"events of {jid}")
            ev = {}
            why = f"did not come within {timeout}s"
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                c.sock.settimeout(left)
                try:
                    raw = r.readline()
                except (TimeoutError, OSError):
                    break
                if not raw:
                    why = "did not come before the stream ended"
                    break
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "event" in ev:
                        item = (ev["event"], json.loads(ev.get("data") or "null"))
                        seen.append(item)
                        if until(*item):
                            return seen
                    ev = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    ev[k] = v
        finally:
            c.close()
        raise TestFailure(f"event stream of {jid}: the awaited event {why}; got {seen!r}")


class Worker:
    """`warren node --role worker` in worker i's namespace."""

    def __init__(self, cluster, i, name, keys, master_key_file, slots=2, join_token=None,
                 heartbeat_ms=200, pass_name=True, extra=()):
        self.cluster = cluster
        self.i = i
        self.name = name
        self.keys = keys
        self.master_key_file = master_key_file
        self.slots = slots
        self.join_token = join_token
        self.heartbeat_ms = heartbeat_ms
        self.pass_name = pass_name
        self.extra = list(extra)
        self.state = os.path.join(cluster.dir, f"worker-{name}")
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.log_path = os.path.join(cluster.dir, f"worker-{name}.log")
        self.proc = None

    @property
    def master_endpoint(self):
        return f"tcp://{self.cluster.master_addr(self.i)}:{WORKER_PORT}"

    def command(self):
        argv = [WARREN, "node", "--role", "worker", "--state", self.state,
                "--master", self.master_endpoint, "--master-key", self.master_key_file,
                "--key", self.keys.secret_file, "--workers", str(self.slots),
                "--heartbeat-ms", str(self.heartbeat_ms)]
        if self.pass_name:
            argv += ["--name", self.name]
        if self.join_token:
            argv += ["--join-token", self.join_token]
        return argv + self.extra

    def start(self):
        check(self.proc is None or self.proc.poll() is not None, f"{self.name} already runs")
        self.proc = self.cluster.run_in(self.i, self.command(), log=self.log_path,
                                        what=f"worker {self.name} (ns {self.cluster.ns(self.i)})")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class SimWorker(Worker):
    """bench/simworker: a fake worker; --lie answers every assignment at once with a wrong
    stdout."""

    def __init__(self, *args, lie=True, **kwargs):
        self.lie = lie
        super().__init__(*args, **kwargs)

    def command(self):
        if not os.access(SIMWORKER, os.X_OK):
            raise TestFailure(f"{SIMWORKER} is not built (bench/simworker)")
        return ([SIMWORKER, "--master", self.master_endpoint, "--master-key",
                 self.master_key_file, "--key", self.keys.secret_file,
                 "--workers", str(self.slots)] + (["--lie"] if self.lie else []) + self.extra)


class WarrenCluster:
    """A netns.Cluster with a master running in it (started, admin logged in) and helpers to
    add workers. A context manager: everything goes away on leaving it."""

    def __init__(self, n_workers=3, heartbeat_ms=200, lease_ms=1500, max_attempts=3,
                 master_extra=()):
        self.net = Cluster(n_workers)
        try:
            self.heartbeat_ms = heartbeat_ms
            self.master_keys = Keys(self.net.dir, "master")
            self.master = Master(self.net, self.master_keys, heartbeat_ms=heartbeat_ms,
                                 lease_ms=lease_ms, max_attempts=max_attempts,
                                 extra=master_extra)
            self.admin = self.master.login()
            self.workers = {}
        except BaseException:
            self.net.dump_logs()
            self.net.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return self.net.__exit__(exc_type, exc, tb)

    def keys(self, name):
        return Keys(self.net.dir, name)

    def add_worker(self, i, name=None, slots=2, confinement=("--public",), register=True,
                   keys=None, master_key_file=None, start=True, cls=Worker, **kwargs):
        """A worker in namespace i: a key pair (unless given), registered with `worker add`
        (unless register is false), started (unless start is false)."""
        name = name or f"w{i}"
        keys = keys or self.keys(name)
        if register:
            self.master.register_worker(self.admin, name, keys, confinement)
        w = cls(self.net, i, name, keys, master_key_file or self.master_keys.public_file,
                slots=slots, heartbeat_ms=self.heartbeat_ms, **kwargs)
        self.workers[name] = w
        if start:
            w.start()
        return w

    def worker_states(self):
        return {n: w.get("state") for n, w in self.master.worker_list(self.admin).items()}

    def wait_connected(self, names, timeout=30):
        """Waits until every worker named is connected; the states of all."""
        names, last = set(names), {}

        def ok():
            last["states"] = st = self.worker_states()
            return st if all(st.get(n) == "connected" for n in names) else None
        return wait_until(ok, timeout, f"workers {sorted(names)} connected",
                          show=lambda: last.get("states"))

    def wait_state(self, name, state, timeout=30):
        last = {}

        def ok():
            last["states"] = st = self.worker_states()
            return st.get(name) == state
        return wait_until(ok, timeout, f"worker {name} {state}", show=lambda: last.get("states"))

    def submit(self, body, token=None):
        """Queues a job (no wait); its id."""
        return self.master.submit(token or self.admin, body, wait=False)["id"]

    def run_job(self, body, token=None, timeout=60):
        return self.master.wait_job(token or self.admin, self.submit(body, token), timeout)

    def heartbeats(self, name, n, timeout=30):
        """Waits until the master has seen n more heartbeats of connected worker name (its
        last_heartbeat changed n times): a window anchored on the master's own activity, for
        checks that something does NOT happen."""
        seen = []

        def beat():
            w = self.master.worker_list(self.admin).get(name) or {}
            check_eq(w.get("state"), "connected", f"worker {name} state while counting beats")
            hb = w.get("last_heartbeat")
            if not seen or seen[-1] != hb:
                seen.append(hb)
            return len(seen) > n
        wait_until(beat, timeout, f"{n} heartbeats of {name} at the master", interval=0.02)


def stdout_of(job):
    """A finished job's stdout text."""
    check_eq(job.get("state"), "finished", f"job {job.get('id')} state ({job!r})")
    return job["result"]["run"]["stdout"]["text"]
