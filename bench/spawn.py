#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Spawn latency of /bin/true: bare, under bubblewrap, under `warren run`; then the library's.

Builds a busybox root file system in a temporary directory and times, from this process,
RUNS executions (default 200) of each of:

  floor    ROOTFS/bin/true, run directly (no sandbox at all)
  bwrap    bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL
                 --ro-bind ROOTFS / --proc /proc --dev /dev /bin/true
  warren   warren run --rootfs ROOTFS --memory 64M --pids 32 -- /bin/true

interleaved (one of each in turn, the order rotating every round) so that machine noise falls on
all three alike. Each run is timed with perf_counter_ns() around os.posix_spawn() + waitpid(),
the same way for all three. Then it runs the library benchmark (bench-spawn) on the same root.

Everything is printed as plain text lines; --json adds one JSON line at the end.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_VS_BWRAP = 0.7  # warren median <= 0.7 x bubblewrap's
TARGET_VS_FLOOR = 3.0  # warren median <= 3 x the floor's

LIB_LINE = re.compile(
    r"^library (?P<mode>\w+) \((?P<procs>\d+) process(?:es)?\): (?P<n>\d+) sandboxes in "
    r"(?P<seconds>[\d.]+) s = (?P<rate>[\d.]+) sandboxes/s; per sandbox median "
    r"(?P<median>[\d.]+) ms, p90 (?P<p90>[\d.]+) ms$")


def find_busybox():
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("busybox")


def build_rootfs(busybox, top):
    """A busybox root: bin/busybox, one symlink per applet, empty proc, dev and tmp."""
    # The sandbox's root is an unprivileged host uid: it must be able to walk down to the root.
    os.chmod(top, 0o755)
    root = os.path.join(top, "rootfs")
    bindir = os.path.join(root, "bin")
    os.makedirs(bindir)
    # bwrap mounts /proc and /dev on a read-only root: the mount points must exist.
    for d in ("proc", "dev", "tmp"):
        os.mkdir(os.path.join(root, d))
    shutil.copy2(busybox, os.path.join(bindir, "busybox"))
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        if "/" in applet or applet in ("busybox", ".", ".."):
            continue
        os.symlink("busybox", os.path.join(bindir, applet))
    if not os.access(os.path.join(bindir, "true"), os.X_OK):
        sys.exit(f"spawn.py: {busybox} has no 'true' applet")
    return root


def spawn_once(argv, devnull):
    """Wall time in ns of one run of argv, and its wait status."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                       (os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status = os.waitpid(pid, 0)
    return time.perf_counter_ns() - t0, status


def explain_failure(name, argv, status):
    """Runs argv again with its output visible, so that the failure can be read."""
    res = subprocess.run(argv, capture_output=True, text=True)
    detail = (res.stderr or res.stdout).strip() or "(no output)"
    sys.exit(f"spawn.py: {name} failed (wait status {status:#x}): {' '.join(argv)}\n"
             f"spawn.py: it says: {detail}")


def percentile(sorted_values, pct):
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[rank - 1]


def summarize(samples_ns):
    s = sorted(samples_ns)
    return {
        "runs": len(s),
        "median_ms": statistics.median(s) / 1e6,
        "p90_ms": percentile(s, 90) / 1e6,
        "min_ms": s[0] / 1e6,
        "mean_ms": statistics.fmean(s) / 1e6,
    }


def run_lib_bench(lib, rootfs, iterations):
    argv = [lib, rootfs] + ([str(iterations)] if iterations else [])
    res = subprocess.run(argv, capture_output=True, text=True)
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    parsed = []
    for line in lines:
        m = LIB_LINE.match(line)
        if m:
            parsed.append({
                "mode": m["mode"], "processes": int(m["procs"]), "sandboxes": int(m["n"]),
                "seconds": float(m["seconds"]), "sandboxes_per_s": float(m["rate"]),
                "median_ms": float(m["median"]), "p90_ms": float(m["p90"]),
            })
    return res.returncode, lines, res.stderr.strip(), parsed


def tool_version(path):
    try:
        res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        return (res.stdout or res.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "version unknown"


def describe_host():
    cpus = os.cpu_count() or 0
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"kernel": platform.release(), "cpus": cpus, "cpu_model": model,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warren", default="build/warren", help="warren binary (default: %(default)s)")
    ap.add_argument("--lib", default="build/bench/bench-spawn",
                    help="library benchmark binary (default: %(default)s; '' skips it)")
    ap.add_argument("--runs", type=int, default=200, help="runs of each (default: %(default)s)")
    ap.add_argument("--lib-iterations", type=int, default=0,
                    help="sandboxes for bench-spawn (default: its own, 500)")
    ap.add_argument("--bwrap", default=shutil.which("bwrap") or "",
                    help="bubblewrap binary (default: bwrap from PATH)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line at the end")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # in order with the errors on stderr

    if args.runs < 1:
        ap.error("--runs must be at least 1")
    warren = os.path.abspath(args.warren)
    if not os.access(warren, os.X_OK):
        sys.exit(f"spawn.py: no warren binary at '{args.warren}' (build first: make build)")
    busybox = find_busybox()
    if not busybox:
        sys.exit("spawn.py: busybox not found (Debian: apt-get install busybox-static)")

    host = describe_host()
    result = {"host": host, "runs": args.runs, "results": {}, "ratios": {}, "targets": {},
              "library": None, "notes": []}
    print(f"spawn benchmark, {host['date']}: kernel {host['kernel']}, {host['cpus']} cpus"
          + (f" ({host['cpu_model']})" if host["cpu_model"] else "")
          + f", euid {os.geteuid()}, {args.runs} runs each, interleaved")
    if os.geteuid() != 0:
        note = "not root: bubblewrap and warren run unprivileged, unlike the reference figures"
        result["notes"].append(note)
        print(f"note: {note}")

    with tempfile.TemporaryDirectory(prefix="warren-bench-") as top:
        rootfs = build_rootfs(busybox, top)
        print(f"rootfs: {rootfs} (busybox from {busybox})")
        print(f"warren: {warren}" + (f"; bwrap: {args.bwrap} ({tool_version(args.bwrap)})"
                                     if args.bwrap else ""))

        cases = [("floor", [os.path.join(rootfs, "bin", "true")])]
        if args.bwrap and os.access(args.bwrap, os.X_OK):
            cases.append(("bwrap", [args.bwrap, "--unshare-all", "--die-with-parent",
                                    "--new-session", "--cap-drop", "ALL", "--ro-bind", rootfs,
                                    "/", "--proc", "/proc", "--dev", "/dev", "/bin/true"]))
        else:
            note = "bubblewrap (bwrap) not found: skipped"
            result["notes"].append(note)
            print(f"note: {note}")
        cases.append(("warren", [warren, "run", "--rootfs", rootfs, "--memory", "64M",
                                 "--pids", "32", "--", "/bin/true"]))

        samples = {name: [] for name, _ in cases}
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            # One unmeasured round: page cache, dentries, the first cgroup of the warren tree.
            for name, argv in list(cases):
                _, status = spawn_once(argv, devnull)
                if status != 0 and name == "bwrap":
                    # bubblewrap is only the yardstick: without it the rest still means something.
                    res = subprocess.run(argv, capture_output=True, text=True)
                    why = (res.stderr or res.stdout).strip() or f"wait status {status:#x}"
                    note = f"bubblewrap does not work here ({why}): skipped"
                    result["notes"].append(note)
                    print(f"note: {note}")
                    cases.remove((name, argv))
                    del samples[name]
                elif status != 0:
                    explain_failure(name, argv, status)
            for i in range(args.runs):
                k = i % len(cases)
                for name, argv in cases[k:] + cases[:k]:
                    ns, status = spawn_once(argv, devnull)
                    if status != 0:
                        explain_failure(name, argv, status)
                    samples[name].append(ns)
        finally:
            os.close(devnull)

        labels = {"floor": "floor (bare /bin/true)", "bwrap": "bubblewrap (bwrap)",
                  "warren": "warren run"}
        for name, _ in cases:
            s = summarize(samples[name])
            result["results"][name] = s
            print(f"{labels[name]:<24} median {s['median_ms']:7.2f} ms   p90 {s['p90_ms']:7.2f} ms"
                  f"   min {s['min_ms']:7.2f} ms   ({s['runs']} runs)")

        w = result["results"]["warren"]["median_ms"]
        f = result["results"]["floor"]["median_ms"]
        result["ratios"]["warren_vs_floor"] = w / f
        if "bwrap" in result["results"]:
            b = result["results"]["bwrap"]["median_ms"]
            result["ratios"]["warren_vs_bwrap"] = w / b
            print(f"ratio warren/bwrap (medians): {w / b:.2f}")
        print(f"ratio warren/floor (medians): {w / f:.2f}")

        if "bwrap" in result["results"]:
            ok = w <= TARGET_VS_BWRAP * b
            result["targets"]["vs_bwrap"] = {"limit_ms": TARGET_VS_BWRAP * b, "met": ok}
            print(f"target: warren median <= {TARGET_VS_BWRAP} x bubblewrap's "
                  f"({TARGET_VS_BWRAP * b:.2f} ms): {'MET' if ok else 'NOT MET'} ({w:.2f} ms)")
        else:
            result["targets"]["vs_bwrap"] = {"limit_ms": None, "met": None}
            print(f"target: warren median <= {TARGET_VS_BWRAP} x bubblewrap's: "
                  "not measured (no bwrap)")
        ok = w <= TARGET_VS_FLOOR * f
        result["targets"]["vs_floor"] = {"limit_ms": TARGET_VS_FLOOR * f, "met": ok}
        print(f"target: warren median <= {TARGET_VS_FLOOR:g} x the floor "
              f"({TARGET_VS_FLOOR * f:.2f} ms): {'MET' if ok else 'NOT MET'} ({w:.2f} ms)")

        if args.lib:
            lib = os.path.abspath(args.lib)
            if not os.access(lib, os.X_OK):
                note = f"no library benchmark at '{args.lib}': skipped"
                result["notes"].append(note)
                print(f"note: {note}")
            else:
                rc, lines, err, parsed = run_lib_bench(lib, rootfs, args.lib_iterations)
                for line in lines:
                    print(line)
                result["library"] = {"exit_status": rc, "batches": parsed}
                if rc != 0:
                    print(f"library benchmark FAILED (exit status {rc}): {err or '(no message)'}")
                    if args.json:
                        print(json.dumps(result, sort_keys=True))
                    return 1

    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
