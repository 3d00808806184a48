"""Shared plumbing for Warren's integration tests: TAP output, a busybox rootfs, running warren.

Each test file is one meson test speaking TAP. Tests call the real `warren` binary (WARREN env var)
on real namespaces and cgroups; nothing is mocked.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

WARREN = os.environ.get("WARREN") or os.path.join(os.path.dirname(__file__), "../../build/warren")
ESCAPE = os.environ.get("WARREN_ESCAPE")  # static helper binary with attack primitives
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")

REPORT_FIELDS = {
    "status", "exit_code", "signal", "wall_time", "cpu_time", "user_time", "sys_time",
    "peak_memory", "stdout_bytes", "stderr_bytes", "oom_killed", "error",
}


class TestFailure(Exception):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what="value"):
    if got != want:
        raise TestFailure(f"{what}: got {got!r}, want {want!r}")


_tests = []


def test(fn):
    """Registers a test function; run_all() runs them in order of definition."""
    _tests.append(fn)
    return fn


def run_all():
    only = os.environ.get("TEST_ONLY")
    tests = [t for t in _tests if not only or only in t.__name__]
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, t in enumerate(tests, 1):
        start = time.monotonic()
        try:
            t()
        except Skip as e:
            print(f"ok {i} - {t.__name__} # SKIP {e}", flush=True)
            continue
        except Exception as e:  # noqa: BLE001 - report every failure as TAP
            failed += 1
            print(f"not ok {i} - {t.__name__}", flush=True)
            for line in traceback.format_exception(e):
                for part in line.rstrip().splitlines():
                    print(f"# {part}", flush=True)
            continue
        print(f"ok {i} - {t.__name__} ({time.monotonic() - start:.2f}s)", flush=True)
    sys.exit(1 if failed else 0)


class Skip(Exception):
    pass


_rootfs = None


def busybox_rootfs():
    """A minimal rootfs made at test time from Debian's busybox-static (+ the escape helper)."""
    global _rootfs
    if _rootfs:
        return _rootfs
    if not os.path.exists(BUSYBOX):
        raise Skip(f"{BUSYBOX} missing (apt install busybox-static)")
    d = tempfile.mkdtemp(prefix="warren-rootfs-")
    os.chmod(d, 0o755)
    for sub in ("bin", "etc", "sbin", "usr/bin"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(d, "bin/busybox"))
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in out.split():
        link = os.path.join(d, "bin", applet)
        if not os.path.exists(link):
            os.symlink("busybox", link)
    if ESCAPE:
        shutil.copy(ESCAPE, os.path.join(d, "bin/escape"))
    with open(os.path.join(d, "etc/passwd"), "w") as f:
        f.write("root:x:0:0::/root:/bin/sh\nsandbox:x:1000:1000::/tmp:/bin/sh\n")
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    _rootfs = d
    return d


class Result:
    def __init__(self, proc, report):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.report = report

    def __repr__(self):
        return (f"Result(code={self.code}, report={self.report}, "
                f"stdout={self.stdout[:300]!r}, stderr={self.stderr[:300]!r})")


def warren_run(args, rootfs=True, timeout=60, input=None, pass_fds=(), env=None, report=True,
               text=True):
    """Runs `warren run [--rootfs busybox] ARGS` and returns a Result with the parsed report."""
    cmd = [WARREN, "run"]
    report_path = None
    if report:
        fd, report_path = tempfile.mkstemp(prefix="warren-report-", suffix=".json")
        os.close(fd)
        os.unlink(report_path)
        cmd += ["--report", report_path]
    if rootfs:
        cmd += ["--rootfs", busybox_rootfs()]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, input=input,
                          pass_fds=pass_fds, env=env, text=text)
    rep = None
    if report_path and os.path.exists(report_path):
        with open(report_path) as f:
            rep = json.load(f)
        os.unlink(report_path)
        check_eq(set(rep), REPORT_FIELDS, "report fields")
    return Result(proc, rep)


def warren_cgroups():
    """Every directory Warren created under the cgroup hierarchies' warren/ subtrees."""
    found = []
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if not os.path.isdir(base):
            continue
        for ctrl in [""] + sorted(os.listdir(base)):
            w = os.path.join(base, ctrl, "warren")
            if os.path.isdir(w):
                found += [os.path.join(w, e) for e in os.listdir(w)
                          if os.path.isdir(os.path.join(w, e))]
    return found


def wait_for(predicate, timeout=10.0, what="condition"):
    """Waits for predicate() to become true, checking on each child-process event or 10 ms."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def is_root():
    return os.geteuid() == 0
