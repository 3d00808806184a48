"""warren run leaves nothing behind: no process, cgroup or mount, even when killed; and runs
many sandboxes at once with distinct host identities."""

import os
import select
import signal
import subprocess
import tempfile
import time

import harness
from harness import check, check_eq, test, warren_run

UID_BASE = 2000000000


def sandbox_processes():
    """Host pids of live (not zombie) processes running with a sandbox's host uid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            if status["State"].split()[0] in ("Z", "X"):
                continue
            if any(int(u) >= UID_BASE for u in status["Uid"].split()):
                found.append(int(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def mountinfo():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def wait_readable(fd, timeout, what):
    r, _, _ = select.select([fd], [], [], timeout)
    check(r, f"timed out after {timeout}s waiting for {what}")


def start_warren(args, **kw):
    cmd = [harness.WARREN, "run", "--rootfs", harness.busybox_rootfs()] + args
    return subprocess.Popen(cmd, **kw)


@test
def nothing_left_after_runs():
    before_mounts = mountinfo()
    for args in (["--", "/bin/true"],
                 ["--wall-time", "0.2", "--", "/bin/sleep", "10"],
                 ["--memory", "16M", "--", "/bin/escape", "memory", "100"],
                 ["--", "/bin/sh", "-c", "sleep 100 & sleep 100 & exit 0"]):
        warren_run(args)
        check_eq(sandbox_processes(), [], f"processes left by {args}")
        check_eq(harness.warren_cgroups(), [], f"cgroups left by {args}")
    check_eq(mountinfo(), before_mounts, "host mounts unchanged")


@test
def background_processes_die_with_the_program():
    # The program exits at once, leaving a daemon behind: the daemon must not survive.
    r = warren_run(["--", "/bin/sh", "-c", "(sleep 1000 &) ; echo started"])
    check_eq(r.stdout, "started\n", "output")
    check_eq(r.report["status"], "exited", "status")
    check_eq(sandbox_processes(), [], "orphans")


@test
def sigkill_of_warren_kills_the_sandbox_and_the_next_run_sweeps():
    r, w = os.pipe()
    p = start_warren(["--", "/bin/sh", "-c", "echo ready; sleep 1000 & sleep 1000"],
                     stdout=w, stderr=subprocess.DEVNULL)
    os.close(w)
    wait_readable(r, 10, "the sandbox to start")
    check_eq(os.read(r, 100), b"ready\n", "sandbox output")
    victims = sandbox_processes()
    check(len(victims) >= 2, f"sandbox processes visible from the host: {victims}")
    pidfds = [os.pidfd_open(pid) for pid in victims]
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    for fd in pidfds:
        wait_readable(fd, 10, "a sandbox process to die after SIGKILL of warren")
        os.close(fd)
    os.close(r)
    check_eq(sandbox_processes(), [], "survivors")
    stale = harness.warren_cgroups()
    check(len(stale) >= 1, "the killed warren could not remove its cgroup (expected stale)")
    warren_run(["--", "/bin/true"])
    check_eq(harness.warren_cgroups(), [], "stale cgroups swept by the next run")


@test
def sigterm_is_forwarded_to_the_program():
    r, w = os.pipe()
    p = start_warren(["--", "/bin/sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; "
                      "while :; do sleep 0.05; done"], stdout=w, stderr=subprocess.DEVNULL)
    os.close(w)
    wait_readable(r, 10, "the sandbox to start")
    check_eq(os.read(r, 100), b"ready\n", "sandbox output")
    p.send_signal(signal.SIGTERM)
    code = p.wait(timeout=10)
    wait_readable(r, 5, "the trap's output")
    out = os.read(r, 100)
    os.close(r)
    check_eq(out, b"got-term\n", "the program saw SIGTERM")
    check_eq(code, 42, "exit code of the program")


@test
def eight_sandboxes_at_once_have_distinct_host_uids():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o1777)
        gate_r, gate_w = os.pipe()
        procs = []
        for i in range(8):
            # Each one writes a file (owned by its host uid) and then waits for the gate, so all
            # eight are provably alive at the same moment.
            procs.append(start_warren(
                ["--bind", f"{d}:/out", "--stdin", "-", "--", "/bin/sh", "-c",
                 f"touch /out/{i}; echo up; read x; id -u"],
                stdin=gate_r, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        os.close(gate_r)
        for p in procs:
            wait_readable(p.stdout.fileno(), 20, "a sandbox to come up")
            check_eq(p.stdout.readline(), b"up\n", "sandbox output")
        alive = sandbox_processes()
        check(len(alive) >= 8, f"all eight alive together: {alive}")
        uids = {os.stat(os.path.join(d, str(i))).st_uid for i in range(8)}
        os.close(gate_w)  # EOF on every stdin: all of them finish
        for p in procs:
            out, err = p.communicate(timeout=20)
            check_eq(p.returncode, 0, f"exit code ({err})")
            check_eq(out, b"1000\n", "uid inside")
        check_eq(len(uids), 8, f"distinct host uids: {uids}")
        check(all(u >= UID_BASE and u != 0 for u in uids), f"unprivileged host uids: {uids}")
    check_eq(harness.warren_cgroups(), [], "cgroups left")


@test
def slot_is_reused_after_a_run():
    # Sequential runs do not leak slots: the lock is released with the sandbox.
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o1777)
        for i in range(3):
            warren_run(["--bind", f"{d}:/out", "--", "/bin/touch", f"/out/{i}"])
        uids = {os.stat(os.path.join(d, str(i))).st_uid for i in range(3)}
        check_eq(len(uids), 1, f"one slot for sequential runs of one process id range: {uids}")


harness.run_all()
