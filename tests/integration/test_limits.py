"""warren run: every limit, and the status and accounting it produces."""

import harness
from harness import check, check_eq, test, warren_run

ESC = "/bin/escape"


@test
def memory_limit_is_detected_as_oom():
    # Allocate and touch 256 MiB under a 32 MiB limit: the OOM killer, not a guess.
    r = warren_run(["--memory", "32M", "--", ESC, "memory", "256"])
    rep = r.report
    check_eq(rep["status"], "memory_limit", f"status {r}")
    check_eq(rep["oom_killed"], True, "oom_killed")
    check_eq(rep["signal"], 9, "killed by SIGKILL")
    check_eq(r.code, 128 + 9, "exit code")
    check(rep["peak_memory"] >= 24 << 20, f"peak_memory {rep['peak_memory']} near the limit")
    check(rep["peak_memory"] <= 40 << 20, f"peak_memory {rep['peak_memory']} within the limit")


@test
def memory_within_limit_is_not_oom():
    r = warren_run(["--memory", "64M", "--", ESC, "memory", "16"])
    check_eq(r.report["status"], "exited", f"status {r}")
    check_eq(r.stdout, "ESCAPED touched 16 MB\n", "the allocation succeeded")
    check_eq(r.report["oom_killed"], False, "oom_killed")
    check(r.report["peak_memory"] >= 16 << 20, f"peak_memory {r.report['peak_memory']}")


@test
def pids_limit_caps_processes():
    # escape forks children that stay alive until a fork fails, and says how many it got.
    r = warren_run(["--pids", "10", "--", ESC, "forkbomb"])
    check_eq(r.code, 0, f"exit {r}")
    # The program itself is one of the 10.
    check_eq(r.stdout, "BLOCKED EAGAIN forks=9\n", "forks that succeeded under --pids 10")


@test
def cpu_time_limit_covers_the_whole_sandbox():
    # Two spinning processes share one budget: were it per process, each would spin its own
    # second and the sandbox would use about 2 s before being stopped.
    r = warren_run(["--cpu-time", "1", "--wall-time", "20", "--",
                    "/bin/sh", "-c", "/bin/escape spin & /bin/escape spin; wait"])
    rep = r.report
    check_eq(rep["status"], "cpu_time_limit", f"status {r}")
    check(1.0 <= rep["cpu_time"] < 1.3, f"cpu_time {rep['cpu_time']} (one budget for both)")
    check_eq(r.code, 128 + 9, "exit code")


@test
def cpu_time_limit_single_process():
    r = warren_run(["--cpu-time", "0.5", "--", ESC, "spin"])
    check_eq(r.report["status"], "cpu_time_limit", f"status {r}")
    check(0.5 <= r.report["cpu_time"] < 0.8, f"cpu_time {r.report['cpu_time']}")


@test
def cpus_bandwidth_throttles():
    r = warren_run(["--cpus", "0.25", "--wall-time", "1", "--", ESC, "spin"])
    rep = r.report
    check_eq(rep["status"], "wall_time_limit", f"status {r}")
    # A quarter of a cpu for a second of wall time, with some slack for the period edges.
    check(rep["cpu_time"] < 0.45, f"cpu_time {rep['cpu_time']} under a 0.25 cpu quota")


@test
def wall_time_limit():
    r = warren_run(["--wall-time", "0.5", "--", "/bin/sleep", "100"])
    rep = r.report
    check_eq(rep["status"], "wall_time_limit", f"status {r}")
    check(0.5 <= rep["wall_time"] < 2.5, f"wall_time {rep['wall_time']}")
    check(rep["cpu_time"] < 0.2, "sleeping costs no cpu")
    check_eq(r.code, 128 + 9, "exit code")


@test
def output_limit_cuts_exactly():
    r = warren_run(["--output-limit", "100K", "--", "/bin/yes"], text=False)
    rep = r.report
    check_eq(rep["status"], "output_limit", f"status {rep}")
    check_eq(rep["stdout_bytes"], 100 << 10, "stdout_bytes")
    check_eq(len(r.stdout), 100 << 10, "bytes actually written")
    check(set(r.stdout) <= set(b"y\n"), "content")


@test
def output_limit_counts_stdout_and_stderr_together():
    r = warren_run(["--output-limit", "64K", "--", "/bin/sh", "-c",
                    "yes out & yes err >&2; wait"], text=False)
    rep = r.report
    check_eq(rep["status"], "output_limit", f"status {rep}")
    check_eq(rep["stdout_bytes"] + rep["stderr_bytes"], 64 << 10, "total bytes")


@test
def file_size_limit():
    r = warren_run(["--file-size", "64K", "--", "/bin/sh", "-c",
                    "dd if=/dev/zero of=/tmp/f bs=1k count=100 2>/dev/null; "
                    "echo $?; stat -c %s /tmp/f"])
    lines = r.stdout.split()
    check(lines[0] != "0", f"dd failed beyond the limit: {r}")
    check_eq(lines[1], str(64 << 10), "file size capped")


@test
def open_files_limit():
    r = warren_run(["--open-files", "20", "--", ESC, "openmany", "100"])
    check_eq(r.code, 0, f"exit {r}")
    check_eq(r.stdout, "BLOCKED EMFILE opened=17\n", "files opened beyond stdin, stdout, stderr")


@test
def default_limits_apply():
    r = warren_run(["--", "/bin/sh", "-c", "ulimit -n"])
    check_eq(r.stdout.strip(), "256", "default open files")
    r = warren_run(["--", ESC, "memory", "1024"])
    check_eq(r.report["status"], "memory_limit", "the default memory limit (512M) is enforced")


@test
def unlimited_lifts_a_default():
    r = warren_run(["--memory", "unlimited", "--", ESC, "memory", "600"])
    check_eq(r.report["status"], "exited", f"status {r}")
    check_eq(r.stdout, "ESCAPED touched 600 MB\n", "600 MB beyond the default limit")


harness.run_all()
