#!/bin/sh
# The demo: a single Warren node (embedded store, local workers), a user logged in with the CLI,
# and sample jobs submitted and followed live. The node then keeps serving until Ctrl-C.
#
#   scripts/demo.sh [BUILD_DIR]        WARREN_DEMO_EXIT=1: stop after the samples
#                                      WARREN_DEMO_STATE=DIR: keep the node's state there
set -eu
BUILD=${1:-build}
WARREN="$BUILD/warren"
STATE=${WARREN_DEMO_STATE:-$(mktemp -d /tmp/warren-demo.XXXXXX)}
export XDG_CONFIG_HOME="$STATE/client-config" # the demo's login stays out of ~/.config
SAMPLES=$(mktemp -d /tmp/warren-demo-samples.XXXXXX)
NODE_PID=
cleanup() {
        if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
                kill -TERM "$NODE_PID" 2>/dev/null || true
                wait "$NODE_PID" 2>/dev/null || true
        fi
        rm -rf "$SAMPLES"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== warren node: state in $STATE =="
"$WARREN" node --state "$STATE" --listen 127.0.0.1:0 2>"$STATE/node.log" &
NODE_PID=$!
i=0
until URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$STATE/node.log" 2>/dev/null); do
        i=$((i + 1))
        if [ "$i" -gt 300 ] || ! kill -0 "$NODE_PID" 2>/dev/null; then
                echo "demo: the node did not start:" >&2
                cat "$STATE/node.log" >&2
                exit 1
        fi
        sleep 0.1
done
echo "   listening on $URL; the administrator's password is in $STATE/admin.password"

echo "== warren login $URL --user admin =="
"$WARREN" login "$URL" --user admin --password-stdin <"$STATE/admin.password"

cat >"$SAMPLES/primes.c" <<'EOF'
#include <stdio.h>

int main(void)
{
        int n = 0;

        for (int i = 2; n < 10; i++) {
                int prime = 1;
                for (int d = 2; d * d <= i; d++)
                        prime &= i % d != 0;
                if (prime)
                        printf("%d%s", i, ++n < 10 ? " " : "\n");
        }
        return 0;
}
EOF
cat >"$SAMPLES/hello.py" <<'EOF'
import os, socket, sys
print("hello from", socket.gethostname(), "as uid", os.getuid(), "with args", sys.argv[1:])
try:
    open("/etc/shadow").read()
except OSError as e:
    print("reading /etc/shadow:", e.strerror)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=1)
except OSError as e:
    print("reaching the network:", e.strerror or e)
sys.exit(3)
EOF

echo "== warren submit --wait primes.c  (the c app: gcc, then run) =="
"$WARREN" submit --wait "$SAMPLES/primes.c"
echo "== warren submit --wait hello.py -- one two  (exits 3: the program's own code) =="
set +e
"$WARREN" submit --wait "$SAMPLES/hello.py" -- one two
echo "   exit code: $?"
set -e
echo "== warren jobs =="
"$WARREN" jobs

if [ "${WARREN_DEMO_EXIT:-0}" = 1 ]; then
        exit 0
fi
echo
echo "The node keeps serving at $URL (Ctrl-C stops it). Try, in another terminal:"
echo "   XDG_CONFIG_HOME=$XDG_CONFIG_HOME $WARREN submit --wait some.py"
echo "   curl -s $URL/metrics | grep warren_jobs"
wait "$NODE_PID"
