"""A private star network for one test: a master namespace and n worker namespaces, each worker
joined to the master by its own veth pair. Nothing outside the namespaces made here is touched:
no host interface, address or route.

    with Cluster(n_workers=3) as c:
        p = c.run_in(c.master_ns, ["sh", "-c", "..."])
        c.ping(1)            # master -> worker 1 over its veth
        c.link_down(1); c.link_up(1)

Worker i (1-based) is at 10.231.i.2/24 and sees the master at 10.231.i.1.

Processes are started with `nsenter --net=/run/netns/NAME` (only the network namespace changes;
`ip netns exec` would also remount /sys, hiding /sys/fs/cgroup from the sandboxes).

Whatever happens, the network goes away: on leaving the with block, at exit (atexit), and on
SIGTERM/SIGINT/SIGHUP (meson's timeout, ^C). Namespaces are named wrn<pid>-<seq>m and
wrn<pid>-<seq>w<i>; a new Cluster first deletes those of earlier runs whose pid is dead.

The test process itself never changes namespace: talking to a listener inside one goes through
in_ns(), which runs a function on a short-lived thread moved into the namespace (a network
namespace is per thread; a socket keeps the namespace it was made in).
"""

import atexit
import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from harness import Skip, TestFailure, is_root

PREFIX = "wrn"
NETNS_DIR = "/run/netns"
SUBNET = "10.231"
_NAME_RE = re.compile(r"^" + PREFIX + r"(\d+)-(\d+)(m|w\d+)$")
_CLONE_NEWNET = 0x40000000
_IP_TIMEOUT = 20  # seconds for any one `ip` command

_libc = ctypes.CDLL(None, use_errno=True)
_live = []  # clusters not yet torn down, for atexit and the signal handlers
_seq = 0
_handlers_installed = False


def _ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=_IP_TIMEOUT)
    if check and p.returncode != 0:
        raise TestFailure(f"ip {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def in_ns(ns, fn, *args):
    """Calls fn(*args) on a thread that has entered network namespace ns; returns its result or
    raises its exception. The thread ends afterwards, so nothing else changes namespace."""
    box = {}

    def work():
        try:
            fd = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns {ns}: {os.strerror(e)}")
            finally:
                os.close(fd)
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e

    t = threading.Thread(target=work, name=f"in-{ns}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def ns_connect(ns, host, port, timeout):
    """A TCP connection made inside namespace ns (usable from any thread afterwards)."""
    return in_ns(ns, socket.create_connection, (host, port), timeout)


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _icmp_echo(dst, timeout):
    """One ICMP echo to dst on a raw socket (root); True if the reply came within timeout."""
    ident = (os.getpid() ^ threading.get_ident()) & 0xFFFF
    seq = int(time.monotonic() * 1000) & 0xFFFF
    payload = b"warren-netns-ping"
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, _checksum(hdr + payload), ident, seq) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        deadline = time.monotonic() + timeout
        try:
            s.sendto(pkt, (dst, 0))
        except OSError:  # e.g. ENETUNREACH while the link is down
            return False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            s.settimeout(left)
            try:
                data, addr = s.recvfrom(2048)
            except socket.timeout:
                return False
            ihl = (data[0] & 0x0F) * 4
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if addr[0] == dst and typ == 0 and rid == ident and rseq == seq:
                return True


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ns_pids(ns):
    p = _ip("netns", "pids", ns, check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def _kill_ns_pids(ns):
    """SIGKILLs what still runs in namespace ns (only namespaces this harness made)."""
    for pid in _ns_pids(ns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _delete_ns(ns):
    _kill_ns_pids(ns)
    if os.path.exists(os.path.join(NETNS_DIR, ns)):
        _ip("netns", "del", ns, check=False)


def _stale(pid):
    return pid != os.getpid() and not _pid_alive(pid)


def clean_stale():
    """Deletes the namespaces (and scratch directories) of earlier runs of this harness whose
    creating process is dead; returns the namespaces deleted."""
    gone = []
    if os.path.isdir(NETNS_DIR):
        for ns in sorted(os.listdir(NETNS_DIR)):
            m = _NAME_RE.match(ns)
            if m and _stale(int(m.group(1))):
                _delete_ns(ns)
                gone.append(ns)
    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):
        m = re.match(r"^warren-cluster-" + PREFIX + r"(\d+)-\d+-", d)
        if m and _stale(int(m.group(1))):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
    return gone


def _cleanup_all(from_signal=False):
    for c in list(_live):
        c.close(from_signal=from_signal)


def _on_signal(sig, frame):
    _cleanup_all(from_signal=True)
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


def _install_handlers():
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    atexit.register(_cleanup_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, _on_signal)
    _handlers_installed = True


def check_tools():
    """Raises Skip unless this machine can build the network (root, ip, nsenter)."""
    if not is_root():
        raise Skip("needs root for network namespaces")
    for tool in ("ip", "nsenter"):
        if not shutil.which(tool):
            raise Skip(f"{tool} missing (apt install iproute2 util-linux)")


class Cluster:
    """One master namespace and n_workers worker namespaces in a star; see the module's doc."""

    def __init__(self, n_workers=3, grace=3.0):
        check_tools()
        if not 1 <= n_workers <= 254:
            raise ValueError("n_workers is 1..254")
        global _seq
        _seq += 1
        _install_handlers()
        clean_stale()
        self.n_workers = n_workers
        self.grace = grace
        self.tag = f"{PREFIX}{os.getpid()}-{_seq}"
        self.master_ns = self.tag + "m"
        self.worker_ns = {i: f"{self.tag}w{i}" for i in range(1, n_workers + 1)}
        self.procs = []   # (Popen, description)
        self.logs = []    # (description, path): shown by dump_logs()
        self.namespaces = []
        self.closed = False
        self.dir = tempfile.mkdtemp(prefix=f"warren-cluster-{self.tag}-")
        # the nodes' state directories live below: their sandboxes' users must get through
        # (as for a node's own state directory, 0711); the secrets in it are 0600 files
        os.chmod(self.dir, 0o711)
        _live.append(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # ---- names and addresses ----

    def ns(self, i):
        """The namespace of worker i (0: the master's)."""
        return self.master_ns if i == 0 else self.worker_ns[i]

    def master_veth(self, i):
        return f"{PREFIX}{os.getpid()}m{i}"  # <= 14 characters: pids are < 2^22

    def worker_veth(self, i):
        return f"{PREFIX}{os.getpid()}w{i}"

    @staticmethod
    def master_addr(i):
        """The master's address on worker i's link."""
        return f"{SUBNET}.{i}.1"

    @staticmethod
    def worker_addr(i):
        return f"{SUBNET}.{i}.2"

    # ---- building ----

    def _add_ns(self, ns):
        r = _ip("netns", "add", ns, check=False)
        if r.returncode != 0:
            if "Operation not permitted" in r.stderr:
                raise Skip(f"ip netns add: {r.stderr.strip()}")
            raise TestFailure(f"ip netns add {ns}: {r.stderr.strip()}")
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _build(self):
        self._add_ns(self.master_ns)
        for i, wns in self.worker_ns.items():
            self._add_ns(wns)
            mv, wv = self.master_veth(i), self.worker_veth(i)
            # made inside the master's namespace, its peer created directly in the worker's
            _ip("-n", self.master_ns, "link", "add", mv, "type", "veth", "peer", "name", wv,
                "netns", wns)
            _ip("-n", self.master_ns, "addr", "add", self.master_addr(i) + "/24", "dev", mv)
            _ip("-n", wns, "addr", "add", self.worker_addr(i) + "/24", "dev", wv)
            _ip("-n", self.master_ns, "link", "set", mv, "up")
            _ip("-n", wns, "link", "set", wv, "up")

    # ---- processes ----

    def nsenter(self, ns):
        """The argv prefix that runs a command in namespace ns (a name, or a worker's number)."""
        if isinstance(ns, int):
            ns = self.ns(ns)
        return ["nsenter", f"--net={os.path.join(NETNS_DIR, ns)}", "--"]

    def run_in(self, ns, argv, log=None, what=None, **popen_kwargs):
        """Starts argv in namespace ns (name or worker number, 0: master) and returns its Popen;
        teardown kills it. log: a file path that gets stdout and stderr (appended)."""
        if self.closed:
            raise TestFailure("cluster already torn down")
        what = what or f"{argv[0]} in {ns}"
        f = None
        if log is not None:
            f = open(log, "ab")
            popen_kwargs.setdefault("stdout", f)
            popen_kwargs.setdefault("stderr", f)
            popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
            self.logs.append((what, log))
        try:
            p = subprocess.Popen(self.nsenter(ns) + list(argv), **popen_kwargs)
        finally:
            if f:
                f.close()
        self.procs.append((p, what))
        return p

    def run(self, ns, argv, timeout=30, **kwargs):
        """Runs argv to completion in namespace ns (bounded); a CompletedProcess."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.nsenter(ns) + list(argv), timeout=timeout, **kwargs)

    # ---- the links ----

    def link_down(self, i):
        """Cuts worker i off: both ends of its veth go down."""
        _ip("-n", self.worker_ns[i], "link", "set", self.worker_veth(i), "down")
        _ip("-n", self.master_ns, "link", "set", self.master_veth(i), "down")

    def link_up(self, i):
        _ip("-n", self.master_ns, "link", "set", self.master_veth(i), "up")
        _ip("-n", self.worker_ns[i], "link", "set", self.worker_veth(i), "up")

    def ping(self, i, timeout=2.0):
        """True if worker i answers an ICMP echo from the master's namespace within timeout."""
        return in_ns(self.master_ns, _icmp_echo, self.worker_addr(i), timeout)

    def connect(self, ns, host, port, timeout=30):
        return ns_connect(self.ns(ns) if isinstance(ns, int) else ns, host, port, timeout)

    # ---- diagnostics and teardown ----

    def dump_logs(self, tail=4000, out=None):
        """Prints the end of each process's log as TAP comments."""
        import sys
        out = out or sys.stdout
        seen = set()
        for what, path in self.logs:
            if path in seen:
                continue
            seen.add(path)
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - tail))
                    text = f.read().decode(errors="replace")
            except OSError:
                continue
            print(f"# --- {what}: {path} (last {tail} bytes) ---", file=out)
            for line in text.splitlines():
                print(f"#   {line}", file=out)
        out.flush()

    def kill_all(self):
        """SIGTERM to every process still running, SIGKILL to those alive after the grace."""
        running = [p for p, _ in self.procs if p.poll() is None]
        for p in running:
            try:
                p.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace
        for p in running:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        for p in running:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def _kill_all_raw(self):
        """kill_all() for a signal handler, which must not call Popen.wait (the interrupted code
        may hold its lock): signals by pid and watches /proc."""
        pids = [p.pid for p, _ in self.procs if p.returncode is None]

        def alive(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] != "Z"
            except (OSError, IndexError):
                return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (self.grace if sig == signal.SIGTERM else 2)
            while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.02)

    def close(self, from_signal=False):
        if self.closed:
            return
        self.closed = True
        try:
            if from_signal:
                self._kill_all_raw()
            else:
                self.kill_all()
            for ns in reversed(self.namespaces):
                _delete_ns(ns)
        finally:
            if self in _live:
                _live.remove(self)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not Skip:
            self.dump_logs()
        self.close()
        return False
