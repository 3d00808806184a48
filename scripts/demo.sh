#!/bin/sh
# The demo: one untrusted-looking program under `warren run`, then its report.
set -eu
WARREN=${1:-build/warren}
REPORT=$(mktemp /tmp/warren-demo-report.XXXXXX)
trap 'rm -f "$REPORT"' EXIT

echo "== warren run: a shell script in a fresh sandbox (64M memory, 32 processes, 10 s) =="
set +e
"$WARREN" run --memory 64M --pids 32 --wall-time 10 --report "$REPORT" -- /bin/sh -c '
echo "hello from $(hostname), running as $(id)"
echo "root file system:"; ls /
echo "capabilities: $(grep CapEff /proc/self/status)"
echo "seccomp mode: $(grep "^Seccomp:" /proc/self/status)"
echo "network interfaces: $(ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -s " \n" " ")"
echo "writing to /usr: $(touch /usr/x 2>&1 || true)"
echo "mounting: $(mount -t tmpfs none /tmp 2>&1 | head -n 1)"
exit 3
'
code=$?
set -e
echo "== exit code: $code (the program's own) =="
echo "== report =="
if command -v python3 >/dev/null 2>&1; then
        python3 -m json.tool "$REPORT"
else
        cat "$REPORT"
fi
