"""warren run: statuses, exit codes, the report, I/O, the file system, and bad options."""

import os
import subprocess
import tempfile

import harness
from harness import check, check_eq, test, warren_run


@test
def exits_with_program_code_and_reports_exited():
    r = warren_run(["--", "/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
    check_eq(r.code, 7, "exit code")
    check_eq(r.stdout, "out\n", "stdout")
    check_eq(r.stderr, "err\n", "stderr")
    rep = r.report
    check_eq(rep["status"], "exited", "status")
    check_eq(rep["exit_code"], 7, "exit_code")
    check_eq(rep["signal"], None, "signal")
    check_eq(rep["stdout_bytes"], 4, "stdout_bytes")
    check_eq(rep["stderr_bytes"], 4, "stderr_bytes")
    check_eq(rep["oom_killed"], False, "oom_killed")
    check_eq(rep["error"], None, "error")
    check(rep["wall_time"] > 0 and rep["wall_time"] < 10, f"wall_time {rep['wall_time']}")
    check(rep["peak_memory"] > 0, "peak_memory")
    check(abs(rep["cpu_time"] - (rep["user_time"] + rep["sys_time"])) < 0.05,
          "cpu_time is user + sys")


@test
def signaled_program_exits_128_plus_signal():
    r = warren_run(["--", "/bin/sh", "-c", "kill -TERM $$"])
    check_eq(r.code, 128 + 15, "exit code")
    check_eq(r.report["status"], "signaled", "status")
    check_eq(r.report["signal"], 15, "signal")
    check_eq(r.report["exit_code"], None, "exit_code")


@test
def missing_program_is_127_exec_error():
    r = warren_run(["--", "/bin/does-not-exist"])
    check_eq(r.code, 127, "exit code")
    check_eq(r.report["status"], "exec_error", "status")
    check("does-not-exist" in r.report["error"], r.report["error"])
    check("No such file" in r.stderr, r.stderr)
    check_eq(len(r.stderr.strip().splitlines()), 1, "one line on stderr")
    r = warren_run(["--", "no-such-command-in-path"])
    check_eq(r.code, 127, "exit code for a PATH lookup")


@test
def non_executable_program_is_126_exec_error():
    r = warren_run(["--", "/etc/passwd"])
    check_eq(r.code, 126, "exit code")
    check_eq(r.report["status"], "exec_error", "status")
    r = warren_run(["--", "/bin"])
    check_eq(r.code, 126, "a directory is not executable")


@test
def path_lookup_uses_the_sandbox_path():
    r = warren_run(["--", "echo", "hi"])
    check_eq((r.code, r.stdout), (0, "hi\n"), "echo via PATH")


@test
def environment_starts_clean():
    env = dict(os.environ, SECRET_TOKEN="do-not-leak")
    r = warren_run(["--env", "FOO=bar", "--env", "FOO=baz", "--", "/bin/env"], env=env)
    check_eq(r.code, 0, "exit code")
    lines = sorted(r.stdout.splitlines())
    check("FOO=baz" in lines, lines)
    check("FOO=bar" not in lines, "a later --env replaces an earlier one")
    check(not any("SECRET_TOKEN" in line for line in lines), "caller environment leaked")
    names = sorted(line.split("=", 1)[0] for line in lines)
    check_eq(names, ["FOO", "HOME", "PATH"], "environment names")


@test
def identity_hostname_and_namespaces():
    r = warren_run(["--", "/bin/sh", "-c",
                    "id -u; id -g; hostname; cat /proc/self/status | grep -E '^(CapEff|CapBnd|CapAmb"
                    "|NoNewPrivs|Seccomp):'; echo $$; echo /proc/[0-9]*"])
    check_eq(r.code, 0, f"exit code {r}")
    lines = r.stdout.splitlines()
    check_eq(lines[0], "1000", "uid")
    check_eq(lines[1], "1000", "gid")
    check_eq(lines[2], "warren", "hostname")
    fields = dict(line.split(":\t") for line in lines[3:8])
    check_eq(fields["CapEff"], "0000000000000000", "CapEff")
    check_eq(fields["CapBnd"], "0000000000000000", "CapBnd")
    check_eq(fields["CapAmb"], "0000000000000000", "CapAmb")
    check_eq(fields["NoNewPrivs"], "1", "NoNewPrivs")
    check_eq(fields["Seccomp"], "2", "Seccomp filter mode")
    check_eq(lines[8], "2", "the shell is PID 2, after the sandbox's init")
    check_eq(lines[9], "/proc/1 /proc/2", "only the sandbox's init and the shell are visible")


@test
def init_reveals_nothing_of_the_caller():
    env = dict(os.environ, CALLER_SECRET="do-not-leak")
    r = warren_run(["--env", "X=visible-arg", "--", "/bin/sh", "-c",
                    "tr -d '\\000' < /proc/1/cmdline | wc -c; cat /proc/1/environ; "
                    "readlink /proc/1/exe; echo end"], env=env)
    lines = r.stdout.splitlines()
    check_eq(lines[0].strip(), "0", "bytes other than NUL in init's /proc/1/cmdline")
    check_eq(lines[1:], ["end"], "init's environ and exe are unreadable")
    check("Permission denied" in r.stderr, r.stderr)
    check("do-not-leak" not in r.stdout + r.stderr, "the caller's environment leaked")


@test
def root_is_read_only_and_tmp_is_writable():
    r = warren_run(["--", "/bin/sh", "-c",
                    "touch /x 2>&1; touch /bin/x 2>&1; echo data > /tmp/f && cat /tmp/f; pwd"])
    out = r.stdout
    check_eq(r.code, 0, f"exit {r}")
    check(out.count("Read-only file system") == 2, out)
    check("data\n" in out, out)
    check(out.endswith("/tmp\n"), "the default working directory is /tmp")


@test
def mounts_are_nosuid_nodev():
    r = warren_run(["--", "/bin/cat", "/proc/self/mountinfo"])
    check_eq(r.code, 0, "exit code")
    for line in r.stdout.splitlines():
        fields = line.split()
        mountpoint, opts = fields[4], fields[5].split(",")
        check("nosuid" in opts, f"{mountpoint} lacks nosuid: {line}")
        if not mountpoint.startswith("/dev/") or mountpoint == "/dev/shm":
            check("nodev" in opts or mountpoint == "/dev", f"{mountpoint} lacks nodev: {line}")


@test
def host_profile_runs_host_programs():
    r = warren_run(["--", "/bin/sh", "-c", "ls / && cat /etc/passwd | grep sandbox"], rootfs=False)
    check_eq(r.code, 0, f"exit {r}")
    top = set(r.stdout.split())
    check({"usr", "bin", "etc", "proc", "dev", "tmp"} <= top, top)
    check("root" not in top and "home" not in top, f"host directories leaked: {top}")
    r = warren_run(["--", "/bin/cat", "/etc/shadow"], rootfs=False)
    check_eq(r.code, 1, "the host's /etc/shadow is not in the sandbox")


@test
def stdin_stdout_stderr_files():
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "in")
        with open(inp, "w") as f:
            f.write("hello\nworld\n")
        out, err = os.path.join(d, "out"), os.path.join(d, "err")
        r = warren_run(["--stdin", inp, "--stdout", out, "--stderr", err, "--",
                        "/bin/sh", "-c", "wc -l; echo oops >&2"])
        check_eq(r.code, 0, "exit code")
        check_eq(r.stdout, "", "nothing on warren's own stdout")
        with open(out) as f:
            check_eq(f.read().strip(), "2", "stdout file")
        with open(err) as f:
            check_eq(f.read(), "oops\n", "stderr file")
        r = warren_run(["--", "/bin/cat"])
        check_eq((r.code, r.stdout), (0, ""), "stdin defaults to /dev/null")
        r = warren_run(["--stdin", "-", "--", "/bin/cat"], input="piped\n")
        check_eq(r.stdout, "piped\n", "--stdin - passes warren's stdin")


@test
def bind_ro_bind_and_tmpfs():
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o1777)
        with open(os.path.join(d, "hostfile"), "w") as f:
            f.write("from host\n")
        r = warren_run(["--ro-bind", d + ":/data", "--bind", d + ":/rw", "--tmpfs", "/scratch:1M",
                        "--", "/bin/sh", "-c",
                        "cat /data/hostfile; touch /data/x 2>&1; echo made > /rw/made; "
                        "dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1; "
                        "stat -c %U /scratch"])
        out = r.stdout
        check("from host" in out, out)
        check("Read-only file system" in out, out)
        check("No space left on device" in out, f"tmpfs size is enforced: {out}")
        check(out.strip().endswith("sandbox"), f"a --tmpfs belongs to the sandbox user: {out}")
        st = os.stat(os.path.join(d, "made"))
        check(st.st_uid >= 2000000000, f"a file made inside is owned by an unprivileged host uid "
                                       f"({st.st_uid})")


@test
def chdir_option():
    r = warren_run(["--chdir", "/bin", "--", "/bin/pwd"])
    check_eq(r.stdout, "/bin\n", "pwd")
    r = warren_run(["--chdir", "/nonexistent", "--", "/bin/pwd"])
    check_eq(r.code, 125, "a missing working directory is warren's error")
    check_eq(r.report["status"], "internal_error", "status")
    check("/nonexistent" in r.report["error"], r.report["error"])


@test
def network_is_loopback_only():
    r = warren_run(["--", "/bin/cat", "/proc/net/dev"])
    ifaces = [line.split(":")[0].strip() for line in r.stdout.splitlines()[2:]]
    check_eq(ifaces, ["lo"], "interfaces")


@test
def runs_as_an_unprivileged_user():
    if not harness.is_root():
        raise harness.Skip("needs root to switch to nobody")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i",
              "PATH=/usr/bin:/bin", harness.WARREN, "run"]
    p = subprocess.run(nobody + ["--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map"],
                       capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 0, f"exit code ({p.stderr})")
    lines = p.stdout.split("\n")
    check_eq(lines[0], "1000", "uid inside")
    check_eq(lines[1].split(), ["1000", "65534", "1"], "only the caller's own uid is mapped")
    check("default --memory limit is not enforced" in p.stderr, p.stderr)
    p = subprocess.run(nobody + ["--memory", "10M", "--", "/bin/true"], capture_output=True,
                       text=True, timeout=30)
    check_eq(p.returncode, 125, "an explicit limit that cannot be enforced is an error")
    check("--memory cannot be enforced" in p.stderr, p.stderr)


BAD_OPTIONS = [
    (["--memory", "12X", "true"], "--memory"),
    (["--memory", "0", "true"], "--memory"),
    (["--memory", "-5M", "true"], "--memory"),
    (["--memory", "99999999999999999999", "true"], "--memory"),
    (["--pids", "abc", "true"], "--pids"),
    (["--pids", "0", "true"], "--pids"),
    (["--cpus", "nan", "true"], "--cpus"),
    (["--cpus", "-1", "true"], "--cpus"),
    (["--cpu-time", "0", "true"], "--cpu-time"),
    (["--wall-time", "inf", "true"], "--wall-time"),
    (["--wall-time", "1s", "true"], "--wall-time"),
    (["--output-limit", "1T", "true"], "--output-limit"),
    (["--open-files", "1", "true"], "--open-files"),
    (["--bind", "relative:/x", "true"], "--bind"),
    (["--bind", "/tmp:relative", "true"], "--bind"),
    (["--tmpfs", "/x:0", "true"], "--tmpfs"),
    (["--env", "NOEQUALS", "true"], "--env"),
    (["--env", "1BAD=x", "true"], "--env"),
    (["--chdir", "relative", "true"], "--chdir"),
    (["--no-such-option", "true"], "--no-such-option"),
    (["--memory"], "--memory"),
    ([], "no program"),
    (["--stdin", "/nonexistent/file", "true"], "/nonexistent/file"),
    (["--ro-bind", "/nonexistent-src:/x", "true"], "/nonexistent-src"),
    (["--ro-bind", "/tmp:/../etc", "true"], "/../etc"),
    (["--ro-bind", "/tmp:/proc/x", "true"], "/proc/x"),
    (["--rootfs", "/nonexistent-root", "true"], "/nonexistent-root"),
]


@test
def bad_options_exit_125_with_one_line():
    for args, needle in BAD_OPTIONS:
        r = warren_run(args, rootfs=False, report=False)
        check_eq(r.code, 125, f"exit code for {args}")
        lines = r.stderr.strip().splitlines()
        check_eq(len(lines), 1, f"one line on stderr for {args}: {r.stderr!r}")
        check(lines[0].startswith("warren: "), lines[0])
        check(needle in lines[0], f"{needle!r} named in {lines[0]!r}")
        check_eq(r.stdout, "", f"nothing on stdout for {args}")


@test
def help_and_unknown_command():
    p = subprocess.run([harness.WARREN, "run", "--help"], capture_output=True, text=True)
    check_eq(p.returncode, 0, "--help exit code")
    for opt in ("--rootfs", "--bind", "--ro-bind", "--tmpfs", "--chdir", "--env", "--memory",
                "--pids", "--cpus", "--cpu-time", "--wall-time", "--output-limit", "--file-size",
                "--open-files", "--stdin", "--stdout", "--stderr", "--report"):
        check(opt in p.stdout, f"{opt} documented")
    p = subprocess.run([harness.WARREN, "frobnicate"], capture_output=True, text=True)
    check(p.returncode != 0 and "frobnicate" in p.stderr, p.stderr)


harness.run_all()
