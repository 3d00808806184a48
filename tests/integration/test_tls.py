#!/usr/bin/env python3
"""HTTPS end to end: `warren cert init`, a real `warren node --tls-cert --tls-key` on loopback,
checked from outside with curl and `openssl s_client` (no plaintext, TLS 1.2+ only, AEAD ciphers,
a bad CA refused), and the CLI's verification (--ca, --pin, WARREN_CA)."""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile

import harness
from harness import Skip, TestFailure, check, check_eq, run_all, test, wait_for

WARREN = harness.WARREN
SCRATCH = tempfile.mkdtemp(prefix="warren-tls-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
CA_DIR = os.path.join(SCRATCH, "certs")
OTHER_DIR = os.path.join(SCRATCH, "other-certs")


def clean_env(home=SCRATCH, **extra):
    """No WARREN_* and no proxy from ours; HOME and the configuration in home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WARREN_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env.update(extra)
    return env


def warren(args, home=SCRATCH, input=None, timeout=120, **env):
    return subprocess.run([WARREN] + list(args), capture_output=True, timeout=timeout,
                          input=input, text=True, env=clean_env(home, **env))


def new_home(name):
    home = os.path.join(SCRATCH, "home-" + name)
    os.makedirs(home, mode=0o700)
    return home


def check_one_line_error(p, code, needle, what):
    check_eq(p.returncode, code, f"{what}: exit code (stderr {p.stderr!r})")
    lines = p.stderr.strip().splitlines()
    check_eq(len(lines), 1, f"{what}: one line on stderr: {p.stderr!r}")
    check(lines[0].startswith("warren: "), f"{what}: {lines[0]!r}")
    check(needle in lines[0], f"{what}: {needle!r} not in {lines[0]!r}")


def cert_init(d, *extra):
    p = warren(["cert", "init", d] + list(extra))
    check_eq(p.returncode, 0, f"cert init {d}: {p.stderr!r}")
    return {n: os.path.join(d, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key")}


_certs = {}


def certs():
    if not _certs:
        _certs.update(cert_init(CA_DIR))
    return _certs


_other = {}


def other_certs():
    if not _other:
        _other.update(cert_init(OTHER_DIR))
    return _other


# ---- the node ----

class Node:
    def __init__(self, *args, name="node"):
        self.state = tempfile.mkdtemp(prefix="warren-tls-node-")
        atexit.register(shutil.rmtree, self.state, ignore_errors=True)
        self.stderr_path = os.path.join(SCRATCH, name + ".stderr")
        self.log = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [WARREN, "node", "--state", self.state, "--listen", "127.0.0.1:0", "--workers", "1"]
            + list(args), stdout=subprocess.DEVNULL, stderr=self.log, env=clean_env())
        atexit.register(self.kill)
        m = wait_for(self.listening, timeout=30, what="the node's 'listening on' line")
        self.url = m.group(1).decode()
        self.port = int(m.group(2))
        with open(os.path.join(self.state, "admin.password")) as f:
            self.admin_password = f.read().strip()

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read()

    def listening(self):
        if self.proc.poll() is not None:
            raise TestFailure(f"the node exited {self.proc.returncode}: {self.stderr()!r}")
        return re.search(rb"listening on (https://127\.0\.0\.1:(\d+))", self.stderr())

    def stop(self):
        """SIGTERM; the node must exit 0 (under ASan a leak is a failure)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()
        check_eq(self.proc.returncode, 0, f"the node's exit code on SIGTERM: "
                 f"{self.stderr()[-2000:]!r}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_node = None


def node():
    global _node
    if _node is None:
        c = certs()
        _node = Node("--tls-cert", c["server.pem"], "--tls-key", c["server.key"])
    return _node


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--noproxy", "*"] + list(args),
                          capture_output=True, text=True, timeout=60)


def s_client(*args):
    """openssl s_client to the node; stdin at EOF: it handshakes, then closes."""
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{node().port}",
                           "-servername", "localhost", "-CAfile", certs()["ca.pem"],
                           "-verify_return_error"] + list(args),
                          capture_output=True, text=True, timeout=60, input="")


def pin_of(cert_path):
    """curl's pin of a certificate's public key, computed with openssl."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                            capture_output=True, check=True, timeout=30).stdout
    b64 = subprocess.run(["base64"], input=digest, capture_output=True, check=True,
                         timeout=30).stdout
    return "sha256//" + b64.decode().strip()


# ---- warren cert init ----

@test
def cert_init_writes_a_ca_and_a_server_certificate():
    c = certs()
    for name, path in c.items():
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        check_eq(mode, 0o600 if name.endswith(".key") else 0o644, f"{name} mode")
    p = subprocess.run(["openssl", "verify", "-CAfile", c["ca.pem"], c["server.pem"]],
                       capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 0, f"openssl verify: {p.stdout!r} {p.stderr!r}")
    text = subprocess.run(["openssl", "x509", "-in", c["server.pem"], "-noout", "-text"],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    for needle in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1",
                   "TLS Web Server Authentication", "CA:FALSE"):
        check(needle in text, f"{needle!r} in the server certificate")
    text = subprocess.run(["openssl", "x509", "-in", c["ca.pem"], "-noout", "-text"],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    check("CA:TRUE" in text and "Certificate Sign" in text, "the CA is a CA")


@test
def cert_init_refuses_to_overwrite():
    c = certs()
    before = {n: open(p).read() for n, p in c.items()}
    p = warren(["cert", "init", CA_DIR])
    check_one_line_error(p, 1, "--force", "a second cert init")
    check_eq({n: open(p).read() for n, p in c.items()}, before, "nothing was overwritten")
    # One file of the set is enough to refuse.
    d = os.path.join(SCRATCH, "partial")
    os.makedirs(d)
    with open(os.path.join(d, "server.key"), "w") as f:
        f.write("mine\n")
    p = warren(["cert", "init", d])
    check_one_line_error(p, 1, "server.key", "cert init over one file")
    check_eq(sorted(os.listdir(d)), ["server.key"], "nothing written")
    p = warren(["cert", "init", d, "--force", "--san", "node.example.org", "--san", "10.0.0.9"])
    check_eq(p.returncode, 0, f"--force: {p.stderr!r}")
    check(open(os.path.join(d, "server.key")).read() != "mine\n", "replaced")
    text = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "server.pem"), "-noout",
                           "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True, timeout=30).stdout
    check("DNS:node.example.org" in text and "IP Address:10.0.0.9" in text, text)
    for args, needle in ((["cert", "init"], "no directory"),
                         (["cert", "init", d, "--san", "bad name"], "--san"),
                         (["cert", "frobnicate"], "frobnicate")):
        check_one_line_error(warren(args), 2, needle, " ".join(args))
    for args in (["cert", "--help"], ["cert", "init", "--help"]):
        p = warren(args)
        check_eq(p.returncode, 0, " ".join(args))
        check(p.stdout.startswith("Usage: warren cert"), p.stdout)


# ---- the node over HTTPS, seen from outside ----

@test
def curl_with_the_ca_gets_healthz():
    n = node()
    p = curl("--cacert", certs()["ca.pem"], n.url + "/healthz")
    check_eq(p.returncode, 0, f"curl: {p.stderr!r}")
    check_eq(json.loads(p.stdout)["status"], "ok", "healthz")
    # By name too: the certificate is for localhost.
    p = curl("--cacert", certs()["ca.pem"], f"https://localhost:{n.port}/healthz")
    check_eq(p.returncode, 0, f"curl localhost: {p.stderr!r}")


@test
def plain_http_gets_no_http_answer():
    n = node()
    with socket.create_connection(("127.0.0.1", n.port), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    check(b"HTTP/1.1 200" not in data and not data.startswith(b"HTTP/"),
          f"plain HTTP got an HTTP answer: {data[:200]!r}")
    check(b'"status"' not in data, "no body in the clear")
    p = curl(f"http://127.0.0.1:{n.port}/healthz")
    check(p.returncode != 0, f"curl over http: {p.stdout!r}")


@test
def curl_without_the_ca_or_with_another_fails_verification():
    n = node()
    p = curl(n.url + "/healthz")
    check_eq(p.returncode, 60, f"curl without the CA: {p.stderr!r}")
    p = curl("--cacert", other_certs()["ca.pem"], n.url + "/healthz")
    check_eq(p.returncode, 60, f"curl with another CA: {p.stderr!r}")
    p = curl("--cacert", certs()["ca.pem"], f"https://127.0.0.2:{n.port}/healthz")
    check(p.returncode != 0, "127.0.0.2 is not in the certificate (or not reachable)")
    # Python's own TLS stack agrees.
    ctx = ssl.create_default_context(cafile=other_certs()["ca.pem"])
    try:
        with socket.create_connection(("127.0.0.1", n.port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                raise TestFailure("a handshake verified against another CA")
    except ssl.SSLCertVerificationError:
        pass


@test
def only_tls_1_2_and_1_3():
    node()
    probe = subprocess.run(["openssl", "s_client", "-help"], capture_output=True, text=True,
                           timeout=30)
    for v in ("tls1", "tls1_1"):
        if f"-{v} " not in probe.stderr + probe.stdout:
            continue
        # SECLEVEL=0: this openssl would otherwise refuse to offer them itself.
        p = s_client(f"-{v}", "-cipher", "DEFAULT@SECLEVEL=0")
        check(p.returncode != 0, f"-{v} handshook: {p.stdout[-500:]!r}")
        check("BEGIN CERTIFICATE" not in p.stdout, f"-{v}: no certificate was sent")
    for v, name in (("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")):
        p = s_client(f"-{v}")
        check_eq(p.returncode, 0, f"-{v}: {p.stderr[-500:]!r}")
        m = re.search(r"New, (\S+), Cipher is (\S+)", p.stdout)
        check(m, f"-{v}: no session line: {p.stdout[-800:]!r}")
        check_eq(m.group(1), name, f"-{v}: the protocol")
        check("GCM" in m.group(2) or "CHACHA20" in m.group(2), f"-{v}: an AEAD cipher: {m[2]}")
        check("Verify return code: 0 (ok)" in p.stdout, f"-{v} verified")
    # No CBC suites, no key exchange without forward secrecy.
    for cipher in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256"):
        p = s_client("-tls1_2", "-cipher", cipher)
        check(p.returncode != 0, f"-tls1_2 -cipher {cipher} handshook")


# ---- the CLI over HTTPS ----

def login(home, n, *extra, **env):
    return warren(["login", n.url, "--user", "admin", "--password-stdin"] + list(extra), home,
                  input=n.admin_password + "\n", **env)


@test
def cli_login_with_the_ca_and_submit():
    n = node()
    home = new_home("ca")
    p = login(home, n, "--ca", certs()["ca.pem"])
    check_eq(p.returncode, 0, f"login --ca: {p.stderr!r}")
    with open(os.path.join(home, ".config", "warren", "config.json")) as f:
        cfg = json.load(f)
    check_eq(cfg["ca"], open(certs()["ca.pem"]).read(), "the CA's content is saved")
    src = os.path.join(SCRATCH, "hello.py")
    with open(src, "w") as f:
        f.write("print('hello over tls')\n")
    p = warren(["submit", src, "--wait"], home)
    check_eq((p.returncode, p.stdout), (0, "hello over tls\n"), f"submit --wait: {p.stderr!r}")
    # The saved CA still works once the file is gone.
    moved = certs()["ca.pem"] + ".moved"
    os.rename(certs()["ca.pem"], moved)
    try:
        p = warren(["jobs"], home)
        check_eq(p.returncode, 0, f"jobs without the CA file: {p.stderr!r}")
    finally:
        os.rename(moved, certs()["ca.pem"])


@test
def cli_refuses_an_unverified_server():
    n = node()
    home = new_home("no-ca")
    p = login(home, n)
    check_one_line_error(p, 1, f"cannot reach {n.url}: the server's certificate is not trusted",
                         "login without --ca")
    check(not os.path.exists(os.path.join(home, ".config", "warren", "config.json")),
          "nothing saved")
    p = login(home, n, "--ca", other_certs()["ca.pem"])
    check_one_line_error(p, 1, "the server's certificate is not trusted", "login with another CA")
    p = login(home, n, "--ca", os.path.join(SCRATCH, "missing.pem"))
    check_eq(p.returncode, 1, f"a missing CA file: {p.stderr!r}")
    p = login(home, n, "--ca", certs()["server.key"])
    check_one_line_error(p, 1, "not a PEM certificate", "a key as the CA")
    p = warren(["login", "http://127.0.0.1:9", "--ca", certs()["ca.pem"], "--user", "admin",
                "--password-stdin"], home, input="x\n")
    check_one_line_error(p, 2, "https://", "--ca with http://")


@test
def cli_pin():
    n = node()
    home = new_home("pin")
    right = pin_of(certs()["server.pem"])
    wrong = pin_of(other_certs()["server.pem"])
    p = login(home, n, "--pin", wrong)
    check_one_line_error(p, 1, "does not match the pin", "a wrong pin")
    for bad in ("sha256//short", "md5//" + right[8:], right[8:]):
        check_one_line_error(login(home, n, "--pin", bad), 1, "invalid pin", bad)
    p = login(home, n, "--pin", right)
    check_eq(p.returncode, 0, f"the right pin: {p.stderr!r}")
    p = warren(["jobs"], home)
    check_eq(p.returncode, 0, f"jobs with the saved pin: {p.stderr!r}")
    # A CA and a pin together: both are checked.
    p = login(home, n, "--ca", certs()["ca.pem"], "--pin", wrong)
    check_one_line_error(p, 1, "does not match the pin", "the CA with a wrong pin")
    p = login(home, n, "--ca", certs()["ca.pem"], "--pin", right)
    check_eq(p.returncode, 0, f"the CA and the right pin: {p.stderr!r}")


@test
def cli_warren_ca():
    n = node()
    home = new_home("env-ca")
    p = login(home, n, WARREN_CA=certs()["ca.pem"])
    check_eq(p.returncode, 0, f"login with WARREN_CA: {p.stderr!r}")
    with open(os.path.join(home, ".config", "warren", "config.json")) as f:
        token = json.load(f)["token"]
    other = new_home("env-ca-2")
    p = warren(["jobs"], other, WARREN_URL=n.url, WARREN_TOKEN=token, WARREN_CA=certs()["ca.pem"])
    check_eq(p.returncode, 0, f"jobs with WARREN_CA: {p.stderr!r}")
    p = warren(["jobs"], other, WARREN_URL=n.url, WARREN_TOKEN=token)
    check_one_line_error(p, 1, "not trusted", "jobs without a CA")
    p = warren(["jobs"], other, WARREN_URL=n.url, WARREN_TOKEN=token,
               WARREN_CA=other_certs()["ca.pem"])
    check_one_line_error(p, 1, "not trusted", "jobs with another CA in WARREN_CA")


# ---- the node's checks of its files ----

def node_fails(*args):
    state = tempfile.mkdtemp(prefix="warren-tls-bad-")
    try:
        return subprocess.run([WARREN, "node", "--state", state, "--listen", "127.0.0.1:0",
                               "--workers", "1"] + list(args),
                              capture_output=True, text=True, timeout=60, env=clean_env())
    finally:
        shutil.rmtree(state, ignore_errors=True)


@test
def node_refuses_bad_tls_files():
    c, o = certs(), other_certs()
    key = os.path.join(SCRATCH, "readable.key")
    shutil.copy(c["server.key"], key)
    for mode in (0o644, 0o640, 0o604):
        os.chmod(key, mode)
        p = node_fails("--tls-cert", c["server.pem"], "--tls-key", key)
        check(p.returncode != 0, f"a {mode:o} key was accepted")
        lines = p.stderr.strip().splitlines()
        check_eq(len(lines), 1, f"one line: {p.stderr!r}")
        check("chmod 600" in lines[0] and key in lines[0], lines[0])
    if harness.is_root():
        os.chmod(key, 0o600)
        os.chown(key, 65534, 65534)
        p = node_fails("--tls-cert", c["server.pem"], "--tls-key", key)
        check(p.returncode != 0, "a key of another user was accepted")
        lines = p.stderr.strip().splitlines()
        check_eq(len(lines), 1, f"one line: {p.stderr!r}")
        check("uid 65534" in lines[0], lines[0])
    bad = os.path.join(SCRATCH, "garbage.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    os.chmod(bad, 0o600)
    cases = [
        (("--tls-cert", c["server.pem"], "--tls-key", o["server.key"]), "does not belong"),
        (("--tls-cert", c["server.pem"], "--tls-key", os.path.join(SCRATCH, "none.key")),
         "none.key"),
        (("--tls-cert", os.path.join(SCRATCH, "none.pem"), "--tls-key", c["server.key"]),
         "none.pem"),
        (("--tls-cert", bad, "--tls-key", c["server.key"]), "not a PEM certificate"),
        (("--tls-cert", c["server.pem"], "--tls-key", bad), "private key"),
        (("--tls-cert", c["server.pem"]), "both or neither"),
        (("--tls-key", c["server.key"]), "both or neither"),
    ]
    for args, needle in cases:
        p = node_fails(*args)
        check(p.returncode != 0, f"{args}: accepted")
        lines = p.stderr.strip().splitlines()
        check_eq(len(lines), 1, f"{args}: one line: {p.stderr!r}")
        check(needle in lines[0], f"{args}: {needle!r} not in {lines[0]!r}")
    p = subprocess.run([WARREN, "node", "--help"], capture_output=True, text=True, timeout=30)
    check("--tls-cert" in p.stdout and "--tls-key" in p.stdout, "node --help")


@test
def node_tls_from_the_config_file():
    c = certs()
    cfg = os.path.join(SCRATCH, "node.json")
    with open(cfg, "w") as f:
        json.dump({"tls-cert": c["server.pem"], "tls-key": c["server.key"]}, f)
    n = Node("--config", cfg, name="config-node")
    try:
        p = curl("--cacert", c["ca.pem"], n.url + "/healthz")
        check_eq(p.returncode, 0, f"curl: {p.stderr!r}")
    finally:
        n.stop()


@test
def node_serves_an_rsa_certificate_made_by_openssl():
    d = os.path.join(SCRATCH, "rsa")
    os.makedirs(d)
    crt, key = os.path.join(d, "rsa.pem"), os.path.join(d, "rsa.key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", crt],
                       capture_output=True, text=True, timeout=120)
    check_eq(p.returncode, 0, f"openssl req: {p.stderr!r}")
    os.chmod(key, 0o600)
    n = Node("--tls-cert", crt, "--tls-key", key, name="rsa-node")
    try:
        p = curl("--cacert", crt, n.url + "/healthz")
        check_eq(p.returncode, 0, f"curl: {p.stderr!r}")
        # ECDHE only: a client that offers RSA key transport alone gets no handshake.
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{n.port}", "-tls1_2",
                            "-cipher", "AES256-GCM-SHA384", "-CAfile", crt], input="",
                           capture_output=True, text=True, timeout=60)
        check(p.returncode != 0, "RSA key transport was accepted")
    finally:
        n.stop()


@test
def node_stops_cleanly():
    if _node is None:
        raise Skip("no node was started")
    _node.stop()


if __name__ == "__main__":
    for tool in ("curl", "openssl"):
        if not shutil.which(tool):
            print(f"1..0 # SKIP {tool} is missing (scripts/setup.sh installs it)")
            raise SystemExit(0)
    run_all()
