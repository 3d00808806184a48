#!/usr/bin/env python3
"""Adversarial tests: programs that try to get out of the sandbox or hurt the host, and must fail.

Each attack is a sub-command of the static helper `escape` (escape.c), run in a busybox root. It
prints one line, `BLOCKED <ERRNO>` (exit 0) or `ESCAPED <detail>` (exit 1); a test asserts the
exact errno, so that a refusal for another reason than the intended one is noticed too. Attacks
on resources (fork bombs, memory, disk, output, cpu) assert the report's status and numbers, and
that nothing of the sandbox survives it on the host: no process with the sandbox's host uids, no
cgroup of its slot.

A test that fails here is a hole in the sandbox (or a changed policy): read its message before
relaxing it.
"""

import contextlib
import fcntl
import os
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import termios
import time

import harness
from harness import Skip, TestFailure, check, check_eq, test, warren_run

ESCAPE_IN_ROOT = "/bin/escape"
HOST_UID_BASE = 2000000000  # SANDBOX_DEFAULT_UID_BASE: every sandbox's host uids are above it
SLOTS_DIR = "/run/warren/slots"  # root's slot locks (open_slots_dir() in sandbox.c)
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPUS = os.cpu_count() or 1
MiB = 1 << 20


def need_escape():
    if not harness.ESCAPE or not os.path.exists(harness.ESCAPE):
        raise Skip("WARREN_ESCAPE (the static escape helper) is not set")


def verdict(r):
    """The helper's one line, split: (word, errno-or-None, rest)."""
    lines = r.stdout.strip().splitlines() if isinstance(r.stdout, str) else []
    if len(lines) != 1:
        raise TestFailure(f"escape did not print exactly one line: {r!r}")
    parts = lines[0].split(" ", 2)
    word = parts[0]
    if word == "ESCAPED":
        raise TestFailure(f"HOLE: {lines[0]} ({r!r})")
    check(word == "BLOCKED", f"escape failed: {lines[0]} ({r!r})")
    return word, parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else ""


def attack(args, want, opts=(), **kw):
    """Runs `escape ARGS` in the busybox root and asserts it was refused with errno `want`."""
    need_escape()
    r = warren_run([*opts, "--", ESCAPE_IN_ROOT, *args], **kw)
    _, got, detail = verdict(r)
    check_eq(got, want, f"errno of `escape {' '.join(args)}` ({detail})")
    check_eq(r.code, 0, f"exit code of `escape {' '.join(args)}`")
    check_eq(r.report["status"], "exited", "report status")
    check_eq(r.report["exit_code"], 0, "report exit_code")
    return r, detail


def blocked(name, args, want, opts=()):
    """Registers a test that runs one attack and expects errno `want`."""
    def fn():
        attack(args, want, opts)
    fn.__name__ = name
    fn.__qualname__ = name
    test(fn)


# ---- tracking a sandbox's host identity, to prove it left nothing behind ----

def boottime_ticks():
    return time.clock_gettime(time.CLOCK_BOOTTIME) * CLK_TCK


class Tracked:
    """A finished run plus what identifies its sandbox on the host."""

    def __init__(self, result, uid_map, t_end_ticks, t_end_wall):
        self.result = result
        self.report = result.report
        self.t_end_ticks = t_end_ticks
        self.t_end_wall = t_end_wall
        self.host_ids = {}  # inside uid -> host uid
        for line in uid_map.splitlines():
            f = line.split()
            if len(f) == 3 and f[2] == "1":
                self.host_ids[int(f[0])] = int(f[1])
        check(1000 in self.host_ids and 0 in self.host_ids, f"uid_map not recorded: {uid_map!r}")
        self.uid = self.host_ids[1000]
        self.root_uid = self.host_ids[0]
        check(self.uid >= HOST_UID_BASE and self.root_uid >= HOST_UID_BASE,
              f"sandbox uids {self.host_ids} below {HOST_UID_BASE}")
        self.slot = (self.root_uid - HOST_UID_BASE) // 2


def run_tracked(opts, program, timeout=30, **kw):
    """Runs PROGRAM in the busybox root after recording its uid map in a host directory."""
    d = tempfile.mkdtemp(prefix="warren-adv-ids-")
    try:
        os.chmod(d, 0o1777)
        script = 'cat /proc/self/uid_map > /ids/uid_map && exec "$@"'
        r = warren_run(["--bind", f"{d}:/ids", *opts, "--", "/bin/sh", "-c", script, "sh",
                        *program], timeout=timeout, **kw)
        t_ticks, t_wall = boottime_ticks(), time.time()
        path = os.path.join(d, "uid_map")
        check(os.path.exists(path), f"the sandbox did not start: {r!r}")
        with open(path) as f:
            uid_map = f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return Tracked(r, uid_map, t_ticks, t_wall)


def proc_uids(pid):
    """The uids of a live process; none for a zombie (it holds nothing but its exit status, and
    one orphaned by an earlier, killed warren waits for the host's init to reap it)."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    if status.get("State", "").split()[:1] in (["Z"], ["X"]):
        return set()
    return {int(x) for x in status.get("Uid", "").split()}


def proc_start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def leftover_processes(t):
    """Processes with the sandbox's host uids that were alive when its run ended."""
    found = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            uids = proc_uids(e)
            if not uids & {t.uid, t.root_uid}:
                continue
            # A later sandbox given the same slot by someone else is not ours.
            if proc_start_ticks(e) > t.t_end_ticks:
                continue
            with open(f"/proc/{e}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            found.append((int(e), sorted(uids), cmd))
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone while we looked
    return found


def leftover_cgroups(t):
    """The cgroups of the sandbox's slot (sbx-SLOT) still there, with their creation times."""
    name = f"sbx-{t.slot}"
    return [(c, os.stat(c).st_ctime) for c in harness.warren_cgroups()
            if os.path.basename(c) == name]


class LockTimeout(Exception):
    pass


@contextlib.contextmanager
def slot_locked(slot, timeout=10.0):
    """Holds the slot's lock, as warren does while it runs a sandbox in it: meanwhile no other
    warren (other tests run concurrently on the machine) can use the slot's uids and cgroup
    name, or sweep its cgroups; so whatever is found with them is a leftover."""
    fd = os.open(os.path.join(SLOTS_DIR, str(slot)), os.O_RDWR | os.O_CLOEXEC)
    try:
        def expire(signum, frame):
            raise LockTimeout(f"slot {slot} stayed busy for {timeout} s")

        old = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_leftovers(t):
    procs = leftover_processes(t)
    check(not procs, f"processes of the sandbox (host uids {t.root_uid}/{t.uid}) survived it: "
                     f"{procs}")
    cgs = leftover_cgroups(t)
    check(not cgs, f"cgroups of slot {t.slot} survived its sandbox (run ended at "
                   f"{t.t_end_wall:.3f}): {cgs}")


def check_host_clean(t):
    with slot_locked(t.slot):
        check_leftovers(t)


@test
def leftover_detector_sees_a_planted_process():
    """The host-side check can fail: a process left with a sandbox-like host uid is found."""
    fake_root = HOST_UID_BASE + 100000000  # outside Warren's slot range: nobody else uses it

    def become_fake():
        os.setgroups([])
        os.setresgid(fake_root + 1, fake_root + 1, fake_root + 1)
        os.setresuid(fake_root + 1, fake_root + 1, fake_root + 1)

    planted = subprocess.Popen(["sleep", "60"], preexec_fn=become_fake)
    try:
        fake = Tracked.__new__(Tracked)  # what a run would have recorded
        fake.uid, fake.root_uid, fake.slot = fake_root + 1, fake_root, 50000000
        fake.t_end_ticks, fake.t_end_wall = boottime_ticks(), time.time()
        found = leftover_processes(fake)
        check_eq([p[0] for p in found], [planted.pid], "planted processes found")
        try:
            check_leftovers(fake)
        except TestFailure:
            pass
        else:
            raise TestFailure("check_leftovers() passed with a process left behind")
    finally:
        planted.kill()
        planted.wait(timeout=10)


# ---- mounts and the root ----

blocked("mount_tmpfs_over_tmp", ["mount", "tmpfs"], "EPERM")
blocked("mount_proc", ["mount", "proc"], "EPERM")
blocked("mount_cgroup_v1_for_release_agent", ["mount", "cgroup"], "EPERM")
blocked("bind_mount_root", ["mount", "bind"], "EPERM")
blocked("remount_root_read_write", ["remount"], "EPERM")
blocked("umount_proc", ["umount", "/proc"], "EPERM")
blocked("umount_root", ["umount", "/"], "EPERM")
blocked("pivot_root", ["pivot-root"], "EPERM")
blocked("chroot", ["chroot"], "EPERM")
blocked("open_tree_clone_root", ["open-tree"], "EPERM")
blocked("fsopen_tmpfs", ["fsopen"], "EPERM")

# ---- namespaces ----

for _ns in ("user", "mnt", "net", "pid", "uts", "ipc", "cgroup", "time"):
    blocked(f"unshare_{_ns}", ["unshare", _ns], "EPERM")
# CLONE_NEWTIME has no clone() form: its bit is part of the exit signal there.
for _ns in ("user", "mnt", "net", "pid", "uts", "ipc", "cgroup"):
    blocked(f"raw_clone_{_ns}", ["clone", _ns], "EPERM")
blocked("raw_clone_user_with_garbage_upper_bits", ["clone", "user", "hi"], "EPERM")
# clone3's flags are in memory the filter cannot read: the policy refuses clone3 outright.
blocked("clone3_user", ["clone3", "user"], "ENOSYS")
blocked("clone3_net", ["clone3", "net"], "ENOSYS")
blocked("setns_own_net_namespace", ["setns", "/proc/self/ns/net"], "EPERM")
blocked("setns_own_user_namespace", ["setns", "/proc/self/ns/user"], "EPERM")
# init's namespaces are behind the ptrace check: they cannot even be opened.
blocked("open_init_mnt_namespace", ["setns", "/proc/1/ns/mnt"], "EACCES")

# ---- the sandbox's init and other processes ----

blocked("ptrace_attach_init", ["ptrace", "attach", "1"], "EPERM")
blocked("ptrace_traceme", ["ptrace", "traceme"], "EPERM")
blocked("process_vm_readv_init", ["process-vm-readv", "1"], "EPERM")
blocked("pidfd_getfd_init", ["pidfd-getfd", "1"], "EPERM")
# init is a clone of warren: /proc/1/exe would be the host's warren binary (runc CVE-2019-5736).
blocked("open_init_exe", ["open", "/proc/1/exe", "r"], "EACCES")
blocked("open_init_exe_for_writing", ["open", "/proc/1/exe", "w"], "EACCES")
blocked("readlink_init_exe", ["readlink", "/proc/1/exe"], "EACCES")
blocked("open_init_environ", ["open", "/proc/1/environ", "r"], "EACCES")
blocked("open_init_mem", ["open", "/proc/1/mem", "rw"], "EACCES")
blocked("readlink_init_root", ["readlink", "/proc/1/root"], "EACCES")
blocked("readlink_init_cwd", ["readlink", "/proc/1/cwd"], "EACCES")
blocked("open_through_init_root", ["open", "/proc/1/root/etc/passwd", "r"], "EACCES")
# fd 3 of init is the status pipe: writing it would forge the program's exit status.
blocked("open_init_status_pipe", ["open", "/proc/1/fd/3", "w"], "EACCES")


@test
def kill_init_from_the_program():
    """kill(1, SIGKILL): refused, and the run still ends with a consistent report."""
    r, _ = attack(["kill", "1", "9"], "EPERM")
    check_eq(r.report["signal"], None, "report signal")
    check_eq(r.report["error"], None, "report error")


@test
def kill_host_processes():
    """A host pid does not exist in the sandbox; kill(-1) reaches nothing outside either."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        attack(["kill", str(victim.pid), "9"], "ESRCH")
        attack(["kill", "-1", "9"], "ESRCH")
        check(victim.poll() is None, f"the host process {victim.pid} was killed")
    finally:
        victim.kill()
        victim.wait(timeout=10)


# ---- /proc ----

blocked("read_proc_key_users", ["read", "/proc/key-users"], "EMPTY")
blocked("read_proc_kmsg", ["read", "/proc/kmsg"], "EACCES")
blocked("read_proc_kpageflags", ["read", "/proc/kpageflags"], "EACCES")
blocked("read_proc_vmallocinfo", ["read", "/proc/vmallocinfo"], "EACCES")
blocked("read_proc_slabinfo", ["read", "/proc/slabinfo"], "EACCES")
# The sysctl check refuses before the read-only mount would: EACCES, never written.
blocked("write_sysctl_hostname", ["open", "/proc/sys/kernel/hostname", "w"], "EACCES")
blocked("write_sysctl_core_pattern", ["open", "/proc/sys/kernel/core_pattern", "w"], "EACCES")
blocked("write_sysctl_drop_caches", ["open", "/proc/sys/vm/drop_caches", "w"], "EACCES")
blocked("lower_oom_score_adj", ["oom-adj"], "EACCES")
# binfmt_misc would run a host interpreter for our files; the sandbox's /proc/sys/fs has none.
blocked("binfmt_misc_register", ["open", "/proc/sys/fs/binfmt_misc/register", "w"], "ENOENT")


PROC_MASKED_FILES = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats",
                     "kallsyms", "sysrq-trigger")
PROC_MASKED_DIRS = ("acpi", "scsi", "asound", "firmware")


def mount_points(opts=()):
    r = warren_run([*opts, "cat", "/proc/self/mountinfo"])
    check_eq(r.code, 0, f"cat /proc/self/mountinfo ({r!r})")
    return {line.split()[4] for line in r.stdout.splitlines()}


@test
def proc_masks():
    """The kernel's secrets in /proc are covered (where the kernel has them) and give nothing."""
    mounts = mount_points()
    for name in PROC_MASKED_FILES:
        path = f"/proc/{name}"
        if not os.path.exists(path):
            attack(["read", path], "ENOENT")
            continue
        check(path in mounts, f"{path} is not masked")
        # Masked by /dev/null on a nodev mount (EACCES), or a plain /dev/null (nothing to read).
        want = ("MASKED", "EACCES") if name == "sysrq-trigger" else ("EMPTY", "EACCES")
        need_escape()
        r = warren_run([ESCAPE_IN_ROOT, "sysrq"] if name == "sysrq-trigger"
                       else [ESCAPE_IN_ROOT, "read", path])
        _, got, detail = verdict(r)
        check(got in want, f"{path}: got {got} ({detail}), want one of {want}")
    for name in PROC_MASKED_DIRS:
        path = f"/proc/{name}"
        if not os.path.isdir(path):
            continue
        check(path in mounts, f"{path} is not masked")
        r = warren_run(["ls", "-A", path])
        check_eq((r.code, r.stdout), (0, ""), f"ls {path}")
    for name in ("sys", "irq", "bus", "fs"):
        if os.path.isdir(f"/proc/{name}"):
            check(f"/proc/{name}" in mounts, f"/proc/{name} is not a read-only mount")


# ---- the file system ----

blocked("create_in_usr", ["create", "/usr/x"], "EROFS")
blocked("create_in_root", ["create", "/x"], "EROFS")
blocked("create_in_etc", ["create", "/etc/x"], "EROFS")
blocked("create_in_bin", ["create", "/bin/x"], "EROFS")
blocked("create_in_dev", ["create", "/dev/x"], "EROFS")
blocked("mkdir_in_usr", ["mkdir", "/usr/x"], "EROFS")
blocked("mknod_dev_mem_in_tmp", ["mknod", "/tmp/mem"], "EPERM")
blocked("mknod_dev_mem_in_dev_shm", ["mknod", "/dev/shm/mem"], "EPERM")
blocked("chown_tmp_to_root", ["chown", "/tmp"], "EPERM")


@test
def host_profile_file_system():
    """The default root (the host's /usr, /bin, /lib* read-only): no host secrets, no writes."""
    need_escape()
    opts = ["--ro-bind", f"{harness.ESCAPE}:/opt/escape"]
    for args, want in ((["read", "/etc/shadow"], "ENOENT"),
                       (["read", "/root"], "ENOENT"),
                       (["read", "/sys"], "ENOENT"),
                       (["read", "/home"], "ENOENT"),
                       (["create", "/usr/x"], "EROFS"),
                       (["create", "/etc/x"], "EROFS"),
                       (["mkdir", "/lib/x"], "EROFS")):
        r = warren_run([*opts, "/opt/escape", *args], rootfs=False)
        _, got, detail = verdict(r)
        check_eq(got, want, f"errno of `escape {' '.join(args)}` ({detail})")


@test
def read_host_secret():
    """A file in a host temporary directory is not in the sandbox, by path or through /proc."""
    d = tempfile.mkdtemp(prefix="warren-adv-secret-")
    try:
        secret = os.path.join(d, "secret")
        with open(secret, "w") as f:
            f.write("the host's secret\n")
        attack(["read", secret], "ENOENT")
        attack(["read", "/proc/1/root" + secret], "EACCES")
        attack(["read", "/proc/self/root" + secret], "ENOENT")
    finally:
        shutil.rmtree(d)


@test
def leaked_host_fd():
    """An fd warren inherits (open on a host file) is closed before the program runs."""
    d = tempfile.mkdtemp(prefix="warren-adv-fd-")
    try:
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write("the host's secret\n")
        fd = os.open(path, os.O_RDONLY)  # not close-on-exec: it goes to warren
        try:
            high = fcntl.fcntl(fd, fcntl.F_DUPFD, 100)
            try:
                os.set_inheritable(high, True)
                for n in (fd, high):
                    attack(["fstat", str(n)], "EBADF", pass_fds=(fd, high))
                attack(["fds"], "EBADF", pass_fds=(fd, high))
            finally:
                os.close(high)
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(d)


@test
def stdin_host_file():
    """--stdin FILE gives the program a read-only fd to a host file: no more than that."""
    d = tempfile.mkdtemp(prefix="warren-adv-stdin-")
    try:
        path = os.path.join(d, "input")
        with open(path, "w") as f:
            f.write("the host's input\n")
        os.chmod(path, 0o644)
        attack(["open", "/proc/self/fd/0", "w"], "EACCES", opts=["--stdin", path])
        attack(["fchmod", "0"], "EPERM", opts=["--stdin", path])
        st = os.stat(path)
        check_eq((stat.S_IMODE(st.st_mode), st.st_uid, st.st_size), (0o644, 0, 17),
                 "the host file after the run")
    finally:
        shutil.rmtree(d)


@test
def setuid_copy_in_shared_directory():
    """A set-uid copy made in a host directory is the sandbox's unprivileged host uid's."""
    need_escape()
    d = tempfile.mkdtemp(prefix="warren-adv-suid-")
    try:
        os.chmod(d, 0o1777)
        before = os.stat(d)
        t = run_tracked(["--bind", f"{d}:/w"], [ESCAPE_IN_ROOT, "setuid-file", "/w"])
        _, got, detail = verdict(t.result)
        check_eq(got, "EPERM", f"errno of chown to root ({detail})")
        st = os.stat(os.path.join(d, "suid"))
        check(st.st_mode & stat.S_ISUID, f"the copy is not set-uid (mode {st.st_mode:o})")
        check(st.st_uid != 0 and st.st_gid != 0, f"the copy is root's: {st}")
        check_eq(st.st_uid, t.uid, "host owner of the copy")
        check(st.st_uid >= HOST_UID_BASE, f"owner {st.st_uid} is not a sandbox uid")
        after = os.stat(d)
        check_eq((after.st_uid, after.st_gid, after.st_mode), (before.st_uid, before.st_gid,
                 before.st_mode), "owner and mode of the shared directory")
        check_host_clean(t)
    finally:
        shutil.rmtree(d)


@test
def setuid_root_binary_from_host():
    """A set-uid-root program bound in from the host does not raise the program's uid."""
    need_escape()
    d = tempfile.mkdtemp(prefix="warren-adv-suidroot-")
    try:
        os.chmod(d, 0o755)
        suid = os.path.join(d, "suid")
        shutil.copy(harness.ESCAPE, suid)
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        for opt in ("--ro-bind", "--bind"):
            r = warren_run([opt, f"{d}:/x", "/x/suid", "euid"])
            check_eq(r.report["status"], "exited", f"status ({r!r})")
            check_eq(r.report["exit_code"], 0, f"set-uid root raised the euid with {opt}")
            attack(["setid", "uid"], "EPERM", opts=[opt, f"{d}:/x"])
    finally:
        shutil.rmtree(d)


@test
def hostile_rootfs():
    """A root built from a job's image may hold device nodes, set-uid-root programs and file
    capabilities (made by root on the host while unpacking it): all inert in the sandbox."""
    need_escape()
    d = tempfile.mkdtemp(prefix="warren-adv-hostile-")
    try:
        os.chmod(d, 0o755)
        b = os.path.join(d, "bin")
        os.mkdir(b, 0o755)
        shutil.copy(harness.ESCAPE, os.path.join(b, "escape"))
        # World-accessible, so that only nodev can stop them; never read, only opened.
        os.mknod(os.path.join(b, "mem"), stat.S_IFCHR | 0o666, os.makedev(1, 1))
        os.mknod(os.path.join(b, "kmsg"), stat.S_IFCHR | 0o666, os.makedev(1, 11))
        os.chmod(os.path.join(b, "mem"), 0o666)
        os.chmod(os.path.join(b, "kmsg"), 0o666)
        suid = os.path.join(b, "suid")
        shutil.copy(harness.ESCAPE, suid)
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        fcap = os.path.join(b, "fcap")
        shutil.copy(harness.ESCAPE, fcap)
        # vfs_cap_data v2, effective: CAP_SYS_ADMIN, CAP_SETUID, CAP_SYS_CHROOT permitted.
        caps = (1 << 21) | (1 << 7) | (1 << 18)
        os.setxattr(fcap, "security.capability", struct.pack("<IIIII", 0x02000001, caps, 0, 0, 0))

        def run(args):
            return warren_run(["--rootfs", d, *args], rootfs=False)

        for node in ("mem", "kmsg"):
            _, got, detail = verdict(run(["/bin/escape", "open", f"/bin/{node}", "r"]))
            check_eq(got, "EACCES", f"open of a device node from the root ({detail})")
        r = run(["/bin/suid", "euid"])
        check_eq((r.report["status"], r.report["exit_code"]), ("exited", 0),
                 f"set-uid root program from the root raised the euid ({r!r})")
        for args, want in ((["mount", "tmpfs"], "EPERM"), (["setid", "uid"], "EPERM"),
                           (["chroot"], "EPERM")):
            _, got, detail = verdict(run(["/bin/fcap", *args]))
            check_eq(got, want, f"`{' '.join(args)}` from a program with file capabilities "
                                f"({detail})")
    finally:
        shutil.rmtree(d)


@test
def host_environment_does_not_leak():
    """warren's own environment (secrets, tokens) is not the program's."""
    env = dict(os.environ, WARREN_ADV_SECRET="hunter2")
    r = warren_run(["env"], env=env)
    check_eq(r.code, 0, f"env ({r!r})")
    check("hunter2" not in r.stdout, f"the host's environment leaked: {r.stdout!r}")
    check_eq(sorted(line.split("=")[0] for line in r.stdout.splitlines()), ["HOME", "PATH"],
             "the program's environment")


def proc_status(text):
    fields = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.split()
    return fields


@test
def credentials_of_the_program_and_its_init():
    """The program: uid 1000, no groups, no capability in any set, no_new_privs, seccomp.
    init (uid 0 inside): no capability but CAP_KILL, to forward signals."""
    r = warren_run(["sh", "-c", "cat /proc/self/status; echo ----; cat /proc/1/status"])
    check_eq(r.code, 0, f"cat status ({r!r})")
    prog, init = (proc_status(x) for x in r.stdout.split("----\n"))
    check_eq(prog["Uid"], ["1000"] * 4, "program uids")
    check_eq(prog["Gid"], ["1000"] * 4, "program gids")
    check_eq(prog["Groups"], [], "program groups")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        check_eq(int(prog[cap][0], 16), 0, f"program {cap}")
    check_eq(prog["NoNewPrivs"], ["1"], "program NoNewPrivs")
    check_eq(prog["Seccomp"], ["2"], "program Seccomp (filter mode)")
    check_eq(init["Groups"], [], "init groups")
    # init's bounding set is left alone: it limits only what an execve() could gain, init never
    # executes anything, and no_new_privs would stop the gain anyway.
    cap_kill = 1 << 5
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        check_eq(int(init[cap][0], 16) & ~cap_kill, 0, f"init {cap} beyond CAP_KILL")
    check_eq(init["NoNewPrivs"], ["1"], "init NoNewPrivs")


# ---- identity, clock, limits ----

blocked("setuid_root", ["setid", "uid"], "EPERM")
blocked("setresuid_root", ["setid", "resuid"], "EPERM")
blocked("setgid_root", ["setid", "gid"], "EPERM")
blocked("setgroups_root", ["setid", "groups"], "EPERM")
# Warren sets the host name once, before the filter; the program may not change it.
blocked("sethostname", ["hostname"], "EPERM")
blocked("setdomainname", ["hostname", "domain"], "EPERM")
blocked("clock_settime", ["clock", "settime"], "EPERM")
blocked("settimeofday", ["clock", "settimeofday"], "EPERM")
blocked("adjtimex", ["clock", "adjtimex"], "EPERM")
blocked("raise_rlimit_nofile", ["rlimit"], "EPERM")
blocked("personality_read_implies_exec", ["personality"], "EPERM")
blocked("sched_fifo", ["sched", "fifo"], "EPERM")
blocked("sched_deadline", ["sched", "deadline"], "EPERM")
blocked("nice_minus_20", ["sched", "nice"], "EACCES")
blocked("ioprio_realtime", ["sched", "ioprio"], "EPERM")

# ---- the kernel ----

blocked("init_module", ["module", "init"], "EPERM")
blocked("finit_module", ["module", "finit"], "EPERM")
blocked("delete_module", ["module", "delete"], "EPERM")
blocked("reboot", ["reboot"], "EPERM")
blocked("syslog_read_all", ["syslog"], "EPERM")
blocked("iopl", ["iopl"], "EPERM")
blocked("keyctl_session_keyring", ["key", "get"], "EPERM")
blocked("add_key", ["key", "add"], "EPERM")
blocked("request_key", ["key", "request"], "EPERM")
for _kind in ("packet", "packet-dgram", "packet-hi", "inet-raw", "inet6-raw", "inet-packet",
              "vsock", "alg", "netlink-audit", "netlink-uevent", "netlink-hi", "key", "bluetooth"):
    blocked(f"socket_{_kind.replace('-', '_')}", ["socket", _kind], "EPERM")
blocked("io_uring_setup", ["io-uring"], "EPERM")
blocked("userfaultfd", ["userfaultfd"], "EPERM")
blocked("perf_event_open", ["perf"], "EPERM")
blocked("bpf_map_create", ["bpf", "map"], "EPERM")
blocked("bpf_prog_load", ["bpf", "prog"], "EPERM")
blocked("open_by_handle_at", ["open-by-handle"], "EPERM")


@test
def x32_abi_is_killed():
    """An x32 syscall number: the filter kills the process before the kernel sees it."""
    need_escape()
    r = warren_run([ESCAPE_IN_ROOT, "abi", "x32"])
    check(not r.stdout.startswith("ESCAPED"), f"HOLE: {r.stdout.strip()}")
    check_eq((r.report["status"], r.report["signal"]), ("signaled", signal.SIGSYS),
             f"x32 syscall ({r!r})")


@test
def i386_abi_is_killed():
    """unshare() through int 0x80: the filter kills the process (other arch)."""
    need_escape()
    r = warren_run([ESCAPE_IN_ROOT, "abi", "i386"])
    check(not r.stdout.startswith("ESCAPED"), f"HOLE: {r.stdout.strip()}")
    probe = subprocess.run([harness.ESCAPE, "probe-i386"], capture_output=True, timeout=10)
    if probe.returncode == -signal.SIGSEGV:
        # The machine has no i386 entry (hypervisor, ia32_emulation=0): the attack faults first.
        check_eq((r.report["status"], r.report["signal"]), ("signaled", signal.SIGSEGV),
                 f"int 0x80 ({r!r})")
        raise Skip("int 0x80 faults on this machine, even on the host")
    check_eq(probe.returncode, 0, f"i386 probe on the host: {probe}")
    check_eq((r.report["status"], r.report["signal"]), ("signaled", signal.SIGSYS),
             f"int 0x80 ({r!r})")


# ---- terminals ----

def read_until(fd, marker, timeout=5.0):
    """Reads fd until `marker` arrives; returns what came before it."""
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got:
        left = deadline - time.monotonic()
        check(left > 0, f"timed out waiting for {marker!r} (got {got!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                got += os.read(fd, 4096)
            except BlockingIOError:
                pass
    return got[:got.index(marker)]


def tty_inject_marker_and_collect(master, slave, marker):
    """Pushes `marker` into the terminal's input as root would, and returns what was queued
    before it, on the input side (slave) and as echo (master). The queue is FIFO, so anything a
    sandbox pushed comes first."""
    fcntl.ioctl(slave, termios.TIOCSTI, marker)
    return read_until(slave, marker), read_until(master, marker)


@test
def tiocsti_on_a_terminal():
    """With a real terminal as stdin, the program cannot type into it (TIOCSTI), in any form."""
    need_escape()
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] = (attrs[3] & ~termios.ICANON) | termios.ECHO  # every byte readable and echoed
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        os.set_blocking(slave, False)
        # The detector works: a byte pushed by the host is seen on both sides.
        fcntl.ioctl(slave, termios.TIOCSTI, b"Z")
        check_eq(tty_inject_marker_and_collect(master, slave, b"~"), (b"Z", b"Z"),
                 "control injection")
        for variant in ("plain", "hi", "ctty"):
            _, detail = attack(["tiocsti", variant], "EPERM", opts=["--stdin", name])
            if variant == "ctty":
                check("TIOCSCTTY" not in detail,
                      f"the terminal did not become the controlling one: {detail}")
            check_eq(tty_inject_marker_and_collect(master, slave, b"~"), (b"", b""),
                     f"bytes pushed into the terminal by `tiocsti {variant}`")
        # Nor can it reopen its read-only terminal for writing (the pty is root's on the host).
        attack(["open", "/proc/self/fd/0", "w"], "EACCES", opts=["--stdin", name])
    finally:
        os.close(master)
        os.close(slave)


@test
def dev_has_only_the_harmless_nodes():
    r = warren_run(["ls", "-A", "/dev"])
    check_eq(r.code, 0, f"ls /dev ({r!r})")
    check_eq(sorted(r.stdout.split()),
             sorted(["null", "zero", "full", "random", "urandom", "shm", "fd", "stdin", "stdout",
                     "stderr"]), "/dev")
    attack(["read", "/dev/tty"], "ENOENT")
    attack(["read", "/dev/console"], "ENOENT")
    attack(["read", "/dev/kmsg"], "ENOENT")
    attack(["read", "/sys"], "ENOENT")


# ---- the network ----

@test
def connect_to_host_loopback_tcp():
    """127.0.0.1 in the sandbox is its own loopback: a host listener is unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        attack(["connect", "127.0.0.1", str(port)], "ECONNREFUSED")
        ready, _, _ = select.select([srv], [], [], 0)
        check(not ready, "the host listener got a connection")
        srv.setblocking(False)
        try:
            conn, peer = srv.accept()
            conn.close()
            raise TestFailure(f"the host listener accepted a connection from {peer}")
        except BlockingIOError:
            pass


@test
def send_to_host_loopback_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        attack(["udp", "127.0.0.1", str(port)], "ECONNREFUSED")
        ready, _, _ = select.select([srv], [], [], 0)
        check(not ready, "the host socket received a datagram from the sandbox")


@test
def connect_to_host_abstract_unix_socket():
    """Abstract unix sockets belong to the network namespace: the host's are out of reach."""
    name = f"warren-adv-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind("\0" + name)
        srv.listen(8)
        attack(["connect-abstract", name], "ECONNREFUSED")
        ready, _, _ = select.select([srv], [], [], 0)
        check(not ready, "the host's abstract socket got a connection")


@test
def network_namespace_is_empty():
    """Only a loopback interface, and the sandbox's own host name."""
    r = warren_run(["cat", "/proc/net/dev"])
    check_eq(r.code, 0, f"cat /proc/net/dev ({r!r})")
    ifaces = sorted(line.split(":")[0].strip() for line in r.stdout.splitlines() if ":" in line)
    check_eq(ifaces, ["lo"], "network interfaces")
    r = warren_run(["hostname"])
    check_eq(r.stdout.strip(), "warren", "host name")


# 192.0.2.0/24 is TEST-NET-1: no route from a loopback-only namespace.
blocked("connect_outside", ["connect", "192.0.2.1", "80"], "ENETUNREACH")


# ---- IPC ----

def libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


@test
def host_sysv_ipc_is_out_of_reach():
    """SysV shared memory and message queues of the host, world-accessible, found by key."""
    import ctypes
    c = libc()
    IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
    key = 0x57410000 | (os.getpid() & 0xFFFF)
    shm = c.shmget(ctypes.c_int(key), ctypes.c_size_t(4096), IPC_CREAT | IPC_EXCL | 0o666)
    check(shm >= 0, f"host shmget: {os.strerror(ctypes.get_errno())}")
    try:
        msg = c.msgget(ctypes.c_int(key), IPC_CREAT | IPC_EXCL | 0o666)
        check(msg >= 0, f"host msgget: {os.strerror(ctypes.get_errno())}")
        try:
            attack(["sysv", "shm", str(key)], "ENOENT")
            attack(["sysv", "msg", str(key)], "ENOENT")
        finally:
            c.msgctl(msg, IPC_RMID, None)
    finally:
        c.shmctl(shm, IPC_RMID, None)


@test
def dev_shm_is_private():
    """The sandbox's /dev/shm is its own, both ways."""
    name = f"warren-adv-{os.getpid()}"
    host_file = f"/dev/shm/{name}-host"
    if not os.path.isdir("/dev/shm"):
        raise Skip("no /dev/shm on the host")
    with open(host_file, "w") as f:
        f.write("host\n")
    try:
        attack(["read", host_file], "ENOENT")
        r = warren_run(["sh", "-c", f"echo x > /dev/shm/{name}-sandbox && ls -A /dev/shm"])
        check_eq((r.code, r.stdout.split()), (0, [f"{name}-sandbox"]), f"/dev/shm ({r!r})")
        check(not os.path.exists(f"/dev/shm/{name}-sandbox"),
              "the sandbox wrote into the host's /dev/shm")
    finally:
        os.unlink(host_file)


# ---- exhausting resources ----

@test
def exhaust_inodes_in_tmp():
    t = run_tracked([], [ESCAPE_IN_ROOT, "fill-inodes", "/tmp"])
    _, got, detail = verdict(t.result)
    check_eq(got, "ENOSPC", f"errno ({detail})")
    n = int(detail.split("files=")[1])
    # One inode per 16 KiB of the 64M tmpfs (4096), the root directory included.
    check(0 < n < 4096, f"{n} files in /tmp")
    check(n < 200000, f"{n} files in /tmp")
    check_host_clean(t)


@test
def exhaust_space_in_tmp():
    t = run_tracked([], [ESCAPE_IN_ROOT, "fill-space", "/tmp"])
    _, got, detail = verdict(t.result)
    check_eq(got, "ENOSPC", f"errno ({detail})")
    n = int(detail.split("bytes=")[1])
    check(60 * MiB <= n <= 64 * MiB, f"{n} bytes in the 64M /tmp")
    check_host_clean(t)


@test
def exhaust_space_in_sized_tmp():
    t = run_tracked(["--tmpfs", "/tmp:8M"], [ESCAPE_IN_ROOT, "fill-space", "/tmp"])
    _, got, detail = verdict(t.result)
    check_eq(got, "ENOSPC", f"errno ({detail})")
    n = int(detail.split("bytes=")[1])
    check(7 * MiB <= n <= 8 * MiB, f"{n} bytes in an 8M /tmp")
    check_host_clean(t)


@test
def exhaust_space_in_dev_shm():
    t = run_tracked([], [ESCAPE_IN_ROOT, "fill-space", "/dev/shm"])
    _, got, detail = verdict(t.result)
    check_eq(got, "ENOSPC", f"errno ({detail})")
    n = int(detail.split("bytes=")[1])
    check(n <= 16 * MiB, f"{n} bytes in the 16M /dev/shm")
    check_host_clean(t)


def check_memory_limit_outcome(t, limit):
    """A sandbox that filled its memory: killed for it (memory_limit), or refused the memory
    (ENOMEM/ENOSPC); never another status, and never more than the limit."""
    rep = t.report
    check(not t.result.stdout.startswith("ESCAPED"), f"HOLE: {t.result.stdout}")
    check_eq(rep["error"], None, f"error in the report ({t.result!r})")
    if rep["status"] == "exited":
        _, got, detail = verdict(t.result)
        check(got in ("ENOMEM", "ENOSPC"), f"refused with {got} ({detail})")
        check(int(detail.split("bytes=")[1]) <= limit, f"{detail} with a {limit}-byte limit")
    else:
        check_eq(rep["status"], "memory_limit", f"status ({t.result!r})")
        check_eq(rep["oom_killed"], True, "oom_killed")
    check(rep["peak_memory"] <= limit + MiB, f"peak memory {rep['peak_memory']}")


@test
def tmpfs_counts_against_memory_limit():
    """Files in /tmp are memory: a 64M /tmp cannot hold more than a 32M sandbox may use."""
    t = run_tracked(["--memory", "32M", "--wall-time", "10"],
                    [ESCAPE_IN_ROOT, "fill-space", "/tmp"])
    check_memory_limit_outcome(t, 32 * MiB)
    check_host_clean(t)


@test
def oom_in_tmpfs_does_not_take_down_init():
    """The same with fallocate(): the program stays tiny, so the OOM killer's choice falls on
    the biggest process left, init, and the report must still say memory_limit. (A hostile job
    can otherwise have its own failure reported as warren's: internal_error.) Five runs: the
    victim is chosen by size, which varies by a few pages from run to run."""
    for _ in range(5):
        t = run_tracked(["--memory", "32M", "--wall-time", "10"],
                        [ESCAPE_IN_ROOT, "fill-space", "/tmp", "fallocate"])
        check_host_clean(t)  # whichever process died, nothing may be left
        check_memory_limit_outcome(t, 32 * MiB)


@test
def fork_bomb_counted():
    """Processes that stay alive: the pids limit holds however many forks are tried."""
    t = run_tracked(["--pids", "32", "--wall-time", "3"], [ESCAPE_IN_ROOT, "forkbomb", "wait"],
                    timeout=20)
    _, got, detail = verdict(t.result)
    check_eq(got, "EAGAIN", f"errno of fork ({detail})")
    n = int(detail.split("forks=")[1])
    # The program itself is one of the 32, so 31 children at most (init is not counted).
    check(n <= 31, f"{n} children alive at once with --pids 32")
    check(n >= 25, f"only {n} children with --pids 32: the limit is much lower than asked")
    check_eq(t.report["status"], "wall_time_limit", "status")
    check(t.report["wall_time"] < 4.5, f"wall time {t.report['wall_time']}")
    check_host_clean(t)


@test
def fork_bomb_shell():
    """The classic shell fork bomb, ended by the wall-time limit, leaves nothing behind."""
    start = time.monotonic()
    t = run_tracked(["--pids", "32", "--wall-time", "3"],
                    ["/bin/sh", "-c", "f() { f | f & }; f; exec sleep 100"], timeout=20)
    check_eq(t.report["status"], "wall_time_limit", f"status ({t.result!r})")
    check(time.monotonic() - start < 6, "the fork bomb outlived its wall time")
    check_host_clean(t)


@test
def children_left_behind_are_killed():
    """The program exits leaving 31 children and a daemon in its own session: all die with it."""
    start = time.monotonic()
    t = run_tracked(["--pids", "64"], [ESCAPE_IN_ROOT, "forkbomb"], timeout=20)
    check_eq(t.report["status"], "exited", f"status ({t.result!r})")
    check(time.monotonic() - start < 5, "the run waited for the children")
    check_host_clean(t)
    t = run_tracked([], [ESCAPE_IN_ROOT, "daemon"], timeout=20)
    _, got, _ = verdict(t.result)
    check_eq(got, "DETACHED", "daemon")
    check_host_clean(t)


@test
def exhaust_memory():
    t = run_tracked(["--memory", "64M"], [ESCAPE_IN_ROOT, "memory", "1024"], timeout=60)
    rep = t.report
    check(not t.result.stdout.startswith("ESCAPED"), f"HOLE: {t.result.stdout}")
    check_eq(rep["status"], "memory_limit", f"status ({t.result!r})")
    check_eq(rep["oom_killed"], True, "oom_killed")
    check_eq(rep["signal"], signal.SIGKILL, "signal")
    check(rep["peak_memory"] <= 65 * MiB, f"peak memory {rep['peak_memory']} with --memory 64M")
    check_host_clean(t)


@test
def flood_stdout():
    t = run_tracked(["--output-limit", "1M"], ["yes"], timeout=30)
    rep = t.report
    check_eq(rep["status"], "output_limit", f"status ({t.result!r})")
    check_eq(rep["stdout_bytes"], MiB, "stdout_bytes")
    check_eq(len(t.result.stdout), MiB, "bytes received")
    check_eq(rep["stderr_bytes"], 0, "stderr_bytes")
    check_host_clean(t)


@test
def flood_stdout_and_stderr():
    """The limit is on both streams together."""
    t = run_tracked(["--output-limit", "1M"], ["/bin/sh", "-c", "yes & exec yes >&2"],
                    timeout=30)
    rep = t.report
    check_eq(rep["status"], "output_limit", f"status ({t.result!r})")
    check_eq(rep["stdout_bytes"] + rep["stderr_bytes"], MiB, "stdout_bytes + stderr_bytes")
    check_eq(len(t.result.stdout) + len(t.result.stderr), MiB, "bytes received")
    check_host_clean(t)


@test
def spin_forever():
    t = run_tracked(["--cpu-time", "1"], [ESCAPE_IN_ROOT, "spin"], timeout=30)
    rep = t.report
    check_eq(rep["status"], "cpu_time_limit", f"status ({t.result!r})")
    check(0.95 <= rep["cpu_time"] <= 1.5, f"cpu time {rep['cpu_time']} for a 1 s limit")
    check(rep["wall_time"] < 10, f"wall time {rep['wall_time']}")
    check_host_clean(t)


@test
def spin_forever_in_two_processes():
    """The cpu-time limit is the whole sandbox's: two spinners share one second. (A limit per
    process would let them use two.) On an idle machine with two cpus the run lasts about half a
    second; that is printed, not asserted: other work on the machine stretches it."""
    t = run_tracked(["--cpu-time", "1"], [ESCAPE_IN_ROOT, "spin", "2"], timeout=30)
    rep = t.report
    check_eq(rep["status"], "cpu_time_limit", f"status ({t.result!r})")
    check(0.95 <= rep["cpu_time"] <= 1.5, f"cpu time {rep['cpu_time']} for a 1 s limit")
    check(rep["wall_time"] < 10, f"wall time {rep['wall_time']}")
    print(f"# two spinners: {rep['cpu_time']:.2f} s of cpu in {rep['wall_time']:.2f} s "
          f"on {NCPUS} cpus", flush=True)
    check_host_clean(t)


@test
def sleep_forever():
    start = time.monotonic()
    t = run_tracked(["--wall-time", "1"], ["sleep", "1000"], timeout=30)
    rep = t.report
    check_eq(rep["status"], "wall_time_limit", f"status ({t.result!r})")
    check(1.0 <= rep["wall_time"] < 3.0, f"wall time {rep['wall_time']}")
    check(time.monotonic() - start < 6, "warren took too long to end the run")
    check_host_clean(t)


if __name__ == "__main__":
    harness.run_all()
