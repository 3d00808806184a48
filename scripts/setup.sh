#!/bin/sh
# Installs every Debian package Warren needs to build, test and benchmark.
# Idempotent: does nothing (and needs no network) when everything is present.
set -eu

PACKAGES="
gcc libc6-dev make pkg-config meson ninja-build
libseccomp-dev libjansson-dev libcmocka-dev libsqlite3-dev libsodium-dev libzmq3-dev libczmq-dev
busybox-static python3 python3-cryptography iproute2 procps util-linux
clang-format bubblewrap valgrind
libmicrohttpd-dev libcurl4-gnutls-dev curl libgnutls28-dev openssl
g++ nodejs
"

missing=""
for p in $PACKAGES; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
                missing="$missing $p"
        fi
done

if [ -z "$missing" ]; then
        exit 0
fi

echo "setup: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
else
        echo "setup: missing packages:$missing; run this script as root" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
