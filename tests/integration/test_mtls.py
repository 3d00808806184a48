#!/usr/bin/env python3
"""Mutual TLS end to end: `warren cert client`, a real `warren node --tls-client-ca
--tls-client-crl`, checked with curl (a certificate for an existing user, for no user, from another
CA, expired, revoked, for servers only; never an anonymous request) and the CLI's `warren login
--cert --key`, with authorization still applying to the certificate's user."""

import atexit
import datetime
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile

import harness
from harness import Skip, TestFailure, check, check_eq, run_all, test, wait_for

WARREN = harness.WARREN
SCRATCH = tempfile.mkdtemp(prefix="warren-mtls-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
CA_DIR = os.path.join(SCRATCH, "certs")
OTHER_DIR = os.path.join(SCRATCH, "other-certs")
PASSWORD = "password-" + "x" * 8


def clean_env(home=SCRATCH, **extra):
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
    check(needle in lines[0], f"{what}: {needle!r} not in {lines[0]!r}")


def cert_init(d):
    p = warren(["cert", "init", d])
    check_eq(p.returncode, 0, f"cert init {d}: {p.stderr!r}")


def cert_client(d, name, *extra):
    p = warren(["cert", "client", d, name] + list(extra))
    check_eq(p.returncode, 0, f"cert client {d} {name}: {p.stderr!r}")
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


_ready = False


def certs():
    global _ready
    if not _ready:
        cert_init(CA_DIR)
        cert_init(OTHER_DIR)
        _ready = True
    return os.path.join(CA_DIR, "ca.pem")


# ---- certificates made outside warren (python3-cryptography), with the CA's key ----

def crypto():
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise Skip("python3-cryptography is missing")
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def load_key(path):
    """GnuTLS 3.7 writes an EC key's scalar with a leading zero byte where it has its high bit
    set; OpenSSL takes that, python3-cryptography does not: openssl re-encodes it first."""
    _, _, serialization, *_ = crypto()
    pem = subprocess.run(["openssl", "pkey", "-in", path], capture_output=True, check=True,
                         timeout=30).stdout
    return serialization.load_pem_private_key(pem, None)


def load_ca(d=CA_DIR):
    x509, *_ = crypto()
    with open(os.path.join(d, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    return ca, load_key(os.path.join(d, "ca.key"))


def make_client(label, cn, emails=(), days_before=30, days_after=30):
    """A clientAuth certificate signed by the CA, with this CN and email SANs, valid from
    days_before ago to days_after from now (negative: in the past)."""
    x509, hashes, serialization, ec, EKU, NameOID = crypto()
    ca, ca_key = load_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=days_before))
         .not_valid_after(now + datetime.timedelta(days=days_after))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([EKU.CLIENT_AUTH]), critical=False))
    if emails:
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(e) for e in emails]),
                            critical=False)
    crt = b.sign(ca_key, hashes.SHA256())
    pem, kpath = (os.path.join(SCRATCH, f"{label}.{e}") for e in ("pem", "key"))
    with open(pem, "wb") as f:
        f.write(crt.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(kpath, 0o600)
    return pem, kpath


def make_expired(name):
    """A clientAuth certificate for name, signed by the CA, that ended yesterday."""
    return make_client(f"expired-{name}", name, days_after=-1)


def make_crl(revoked_pems, path, signer=None):
    """A CRL of the CA (or of signer: (cert, key)) revoking these certificates."""
    x509, hashes, serialization, *_ = crypto()
    ca, ca_key = signer or load_ca()
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now - datetime.timedelta(hours=1))
         .next_update(now + datetime.timedelta(days=7)))
    for pem in revoked_pems:
        with open(pem, "rb") as f:
            serial = x509.load_pem_x509_certificate(f.read()).serial_number
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    with open(path, "wb") as f:
        f.write(b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


# ---- the node ----

class Node:
    def __init__(self, *args, name="node"):
        self.state = tempfile.mkdtemp(prefix="warren-mtls-node-")
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


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "60", "--noproxy", "*"] + list(args),
                          capture_output=True, text=True, timeout=90)


def api(n, method, path, body=None, token=None, cert=None):
    """(status, JSON or None) of one request; cert: (pem, key) presented as the client's."""
    args = ["--cacert", certs(), "-X", method, "-w", "\n%{http_code}"]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    if cert:
        args += ["--cert", cert[0], "--key", cert[1]]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    p = curl(*args, n.url + path)
    check_eq(p.returncode, 0, f"curl {method} {path}: {p.stderr!r}")
    text, _, status = p.stdout.rpartition("\n")
    return int(status), (json.loads(text) if text else None)


_node = None
_admin = None
CRL = os.path.join(SCRATCH, "crl.pem")


def node():
    """The node: client CAs = ours, and a CRL revoking 'carol's first certificate."""
    global _node, _admin
    if _node is None:
        ca = certs()
        carol = cert_client(CA_DIR, "carol")
        revoked = os.path.join(SCRATCH, "carol-revoked")
        os.makedirs(revoked)
        for e in ("pem", "key"):
            shutil.copy(carol[0 if e == "pem" else 1], os.path.join(revoked, "carol." + e))
        make_crl([os.path.join(revoked, "carol.pem")], CRL)
        _node = Node("--tls-cert", os.path.join(CA_DIR, "server.pem"), "--tls-key",
                     os.path.join(CA_DIR, "server.key"), "--tls-client-ca", ca,
                     "--tls-client-crl", CRL)
        status, reply = api(_node, "POST", "/api/v1/login",
                            {"user": "admin", "password": _node.admin_password})
        check_eq(status, 200, f"admin login: {reply}")
        _admin = reply["token"]
        for user in ("alice", "bob", "carol", "dave"):
            status, reply = api(_node, "POST", "/api/v1/users",
                                {"name": user, "password": PASSWORD}, token=_admin)
            check_eq(status, 201, f"add {user}: {reply}")
    return _node


def admin_token():
    node()
    return _admin


def check_refused(n, cert, needle, what):
    status, reply = api(n, "GET", "/api/v1/whoami", cert=cert)
    check_eq(status, 401, f"{what}: {reply}")
    check_eq(reply["error"]["code"], "unauthorized", what)
    check(needle in reply["error"]["message"], f"{what}: {needle!r} not in {reply}")
    # Not anonymous either where nothing needs a login.
    status, reply = api(n, "GET", "/api/v1/jobs", cert=cert)
    check_eq(status, 401, f"{what}: jobs: {reply}")


def audit_events(n):
    status, reply = api(n, "GET", "/api/v1/audit?limit=1000", token=admin_token())
    check_eq(status, 200, f"audit: {reply}")
    return reply["records"]


# ---- warren cert client ----

@test
def cert_client_writes_a_client_certificate():
    certs()
    pem, key = cert_client(CA_DIR, "alice")
    check_eq(stat.S_IMODE(os.lstat(key).st_mode), 0o600, "key mode")
    check_eq(stat.S_IMODE(os.lstat(pem).st_mode), 0o644, "certificate mode")
    p = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(CA_DIR, "ca.pem"),
                        "-purpose", "sslclient", pem], capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 0, f"openssl verify -purpose sslclient: {p.stdout!r} {p.stderr!r}")
    text = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-text", "-nameopt",
                           "RFC2253"], capture_output=True, text=True, check=True,
                          timeout=30).stdout
    for needle in ("CN=alice", "TLS Web Client Authentication", "CA:FALSE",
                   "Digital Signature"):
        check(needle in text, f"{needle!r} in the client certificate")
    check("TLS Web Server Authentication" not in text, "not for servers")
    dates = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-enddate"],
                           capture_output=True, text=True, check=True, timeout=30).stdout
    end = datetime.datetime.strptime(dates.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    days = (end - now).days
    check(364 <= days <= 365, f"a year by default: {days} days")


@test
def cert_client_refuses_to_overwrite_and_bad_input():
    certs()
    pem, key = cert_client(CA_DIR, "erin")
    before = (open(pem).read(), open(key).read())
    check_one_line_error(warren(["cert", "client", CA_DIR, "erin"]), 1, "--force",
                         "a second cert client")
    check_eq((open(pem).read(), open(key).read()), before, "nothing was overwritten")
    p = warren(["cert", "client", CA_DIR, "erin", "--force", "--days", "2"])
    check_eq(p.returncode, 0, f"--force: {p.stderr!r}")
    check(open(pem).read() != before[0], "replaced")
    empty = os.path.join(SCRATCH, "empty")
    os.makedirs(empty)
    for args, code, needle in (
            (["cert", "client", CA_DIR], 2, "user name"),
            (["cert", "client", CA_DIR, "Bad Name"], 2, "not a user name"),
            (["cert", "client", CA_DIR, "ca"], 2, "not a user name"),
            (["cert", "client", CA_DIR, "server", "--force"], 2, "not a user name"),
            (["cert", "client", CA_DIR, "x", "--days", "0"], 2, "--days"),
            (["cert", "client", CA_DIR, "x", "--days", "3651"], 2, "--days"),
            (["cert", "client", empty, "x"], 1, "ca.pem")):
        check_one_line_error(warren(args), code, needle, " ".join(args))
    check_eq(os.listdir(empty), [], "nothing written without a CA")
    p = warren(["cert", "client", "--help"])
    check(p.returncode == 0 and "--days" in p.stdout, p.stdout)


# ---- the node, from outside ----

@test
def a_client_certificate_authenticates_its_user():
    n = node()
    alice = cert_client(CA_DIR, "alice", "--force")
    status, reply = api(n, "GET", "/api/v1/whoami", cert=alice)
    check_eq((status, reply["name"]), (200, "alice"), f"whoami: {reply}")
    records = [r for r in audit_events(n) if r["event"] == "login_cert"]
    check(any(r["actor"] == "alice" and r["object"] == "alice" and
              r["detail"].startswith("serial ") for r in records), f"audited: {records}")


@test
def without_a_certificate_or_a_token_it_is_401():
    n = node()
    status, reply = api(n, "GET", "/api/v1/whoami")
    check_eq(status, 401, f"{reply}")
    check("client certificate" in reply["error"]["message"], f"{reply}")
    status, _ = api(n, "GET", "/healthz")
    check_eq(status, 200, "healthz needs nothing")


@test
def a_certificate_for_no_such_user_is_401():
    n = node()
    check_refused(n, cert_client(CA_DIR, "mallory"), "'mallory'", "no such user")
    records = [r for r in audit_events(n) if r["event"] == "login_cert_failed"]
    check(any(r["object"] == "mallory" for r in records), f"audited: {records}")


@test
def a_certificate_from_another_ca_is_401():
    n = node()
    certs()
    other = cert_client(OTHER_DIR, "alice")
    # The handshake takes it (the server only asks); the request is refused, not anonymous.
    check_refused(n, other, "not signed by a trusted CA", "another CA")


@test
def an_expired_certificate_is_401():
    n = node()
    check_refused(n, make_expired("alice"), "expired", "expired")


@test
def a_revoked_certificate_is_401_and_a_new_one_works():
    n = node()
    revoked = (os.path.join(SCRATCH, "carol-revoked", "carol.pem"),
               os.path.join(SCRATCH, "carol-revoked", "carol.key"))
    check_refused(n, revoked, "revoked", "revoked")
    records = [r for r in audit_events(n) if r["event"] == "login_cert_failed"]
    check(any("revoked" in (r["detail"] or "") for r in records), f"audited: {records}")
    fresh = cert_client(CA_DIR, "carol", "--force")
    status, reply = api(n, "GET", "/api/v1/whoami", cert=fresh)
    check_eq((status, reply.get("name")), (200, "carol"), f"a new certificate: {reply}")


@test
def a_server_certificate_is_not_a_client_certificate():
    n = node()
    server = (os.path.join(CA_DIR, "server.pem"), os.path.join(CA_DIR, "server.key"))
    check_refused(n, server, "client authentication", "serverAuth only")


@test
def a_deactivated_user_is_401_and_a_token_wins():
    n = node()
    dave = cert_client(CA_DIR, "dave")
    status, _ = api(n, "GET", "/api/v1/whoami", cert=dave)
    check_eq(status, 200, "dave")
    # The token wins over the certificate: bob's token with dave's certificate is bob.
    status, reply = api(n, "POST", "/api/v1/login", {"user": "bob", "password": PASSWORD})
    check_eq(status, 200, f"bob's login: {reply}")
    status, reply = api(n, "GET", "/api/v1/whoami", cert=dave, token=reply["token"])
    check_eq((status, reply["name"]), (200, "bob"), f"token and certificate: {reply}")
    # A bad token is not rescued by a good certificate.
    status, reply = api(n, "GET", "/api/v1/whoami", cert=dave, token="wrn_" + "A" * 43)
    check_eq(status, 401, f"bad token with a certificate: {reply}")
    status, reply = api(n, "DELETE", "/api/v1/users/dave", token=admin_token())
    check(status in (200, 204), f"delete dave: {status} {reply}")
    check_refused(n, dave, "'dave'", "a deleted user")


@test
def cli_login_with_a_certificate_submit_and_authorization():
    n = node()
    alice = cert_client(CA_DIR, "alice", "--force")
    bob = cert_client(CA_DIR, "bob")
    home = new_home("alice")
    p = warren(["login", n.url, "--ca", certs(), "--cert", alice[0], "--key", alice[1]], home)
    check_eq(p.returncode, 0, f"login --cert: {p.stderr!r}")
    check("as alice" in p.stdout, p.stdout)
    cfg_path = os.path.join(home, ".config", "warren", "config.json")
    check_eq(stat.S_IMODE(os.stat(cfg_path).st_mode), 0o600, "config mode")
    with open(cfg_path) as f:
        cfg = json.load(f)
    check_eq(cfg["cert"], open(alice[0]).read(), "the certificate's content is saved")
    check_eq(cfg["key"], open(alice[1]).read(), "the key's content is saved")
    check("token" not in cfg, f"no token: {cfg.keys()}")
    src = os.path.join(SCRATCH, "hello.py")
    with open(src, "w") as f:
        f.write("print('hello over mutual tls')\n")
    # The files may go: their contents are saved.
    moved = alice[1] + ".moved"
    os.rename(alice[1], moved)
    try:
        p = warren(["submit", src, "--wait"], home)
    finally:
        os.rename(moved, alice[1])
    check_eq((p.returncode, p.stdout), (0, "hello over mutual tls\n"),
             f"submit --wait: {p.stderr!r}")
    p = warren(["jobs"], home)
    check_eq(p.returncode, 0, f"jobs: {p.stderr!r}")
    status, reply = api(n, "GET", "/api/v1/jobs", cert=alice)
    check_eq(status, 200, f"alice's jobs: {reply}")
    check(len(reply["jobs"]) >= 1 and all(j["owner"] == "alice" for j in reply["jobs"]),
          f"{reply}")
    job = reply["jobs"][0]["id"]
    status, reply = api(n, "GET", f"/api/v1/jobs/{job}", cert=bob)
    check_eq(status, 404, f"bob sees alice's job: {reply}")
    status, reply = api(n, "GET", "/api/v1/jobs", cert=bob)
    check_eq((status, reply["jobs"]), (200, []), f"bob's list: {reply}")
    # A standard user stays one: no users for alice.
    status, reply = api(n, "GET", "/api/v1/users", cert=alice)
    check(status in (403, 404), f"alice lists users: {status} {reply}")
    # logout forgets the certificate; nothing is sent afterwards.
    p = warren(["logout"], home)
    check_eq(p.returncode, 0, f"logout: {p.stderr!r}")
    with open(cfg_path) as f:
        cfg = json.load(f)
    check("cert" not in cfg and "key" not in cfg, f"forgotten: {cfg.keys()}")
    p = warren(["jobs"], home)
    check(p.returncode != 0 and "not logged in" in p.stderr, f"after logout: {p.stderr!r}")


@test
def cli_login_with_a_bad_certificate_says_why():
    n = node()
    home = new_home("bad")
    other = cert_client(OTHER_DIR, "bob", "--force")
    p = warren(["login", n.url, "--ca", certs(), "--cert", other[0], "--key", other[1]], home)
    check_one_line_error(p, 1, "not signed by a trusted CA", "login with another CA's cert")
    check(not os.path.exists(os.path.join(home, ".config", "warren", "config.json")),
          "nothing saved")
    alice = cert_client(CA_DIR, "alice", "--force")
    for args, code, needle in (
            (["--cert", alice[0]], 2, "--key"),
            (["--cert", alice[0], "--key", other[1]], 1, "does not belong"),
            (["--cert", alice[0], "--key", alice[1], "--user", "bob"], 1, "'alice'"),
            (["--cert", alice[0], "--key", alice[1], "--password-stdin"], 2, "password")):
        p = warren(["login", n.url, "--ca", certs()] + args, home)
        check_one_line_error(p, code, needle, " ".join(args))
    os.chmod(alice[1], 0o644)
    try:
        p = warren(["login", n.url, "--ca", certs(), "--cert", alice[0], "--key", alice[1]], home)
        check_one_line_error(p, 1, "chmod 600", "a readable key")
    finally:
        os.chmod(alice[1], 0o600)
    p = warren(["login", "--help"])
    check("--cert" in p.stdout and "--key" in p.stdout, "login --help")


@test
def node_refuses_bad_client_ca_options():
    certs()
    srv = ["--tls-cert", os.path.join(CA_DIR, "server.pem"), "--tls-key",
           os.path.join(CA_DIR, "server.key")]
    garbage = os.path.join(SCRATCH, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("not a certificate\n")
    foreign_crl = os.path.join(SCRATCH, "foreign-crl.pem")
    make_crl([], foreign_crl, signer=load_ca(OTHER_DIR))
    ca = os.path.join(CA_DIR, "ca.pem")
    for args, code, needle in (
            (["--tls-client-ca", ca], 2, "--tls-cert"),
            (srv + ["--tls-client-crl", CRL], 2, "--tls-client-ca"),
            (srv + ["--tls-client-ca", garbage], 1, "no PEM certificate"),
            (srv + ["--tls-client-ca", os.path.join(SCRATCH, "none.pem")], 1, "none.pem"),
            (srv + ["--tls-client-ca", ca, "--tls-client-crl", garbage], 1, "cannot be parsed"),
            (srv + ["--tls-client-ca", ca, "--tls-client-crl", foreign_crl], 1,
             "not signed by a CA")):
        state = tempfile.mkdtemp(prefix="warren-mtls-fail-")
        try:
            p = subprocess.run([WARREN, "node", "--state", state, "--listen", "127.0.0.1:0"]
                               + args, capture_output=True, text=True, timeout=60,
                               env=clean_env())
        finally:
            shutil.rmtree(state, ignore_errors=True)
        check_one_line_error(p, code, needle, " ".join(args))
    p = subprocess.run([WARREN, "node", "--help"], capture_output=True, text=True, timeout=30)
    check("--tls-client-ca" in p.stdout and "--tls-client-crl" in p.stdout, "node --help")


@test
def node_client_ca_from_the_config_file():
    certs()
    cfg = os.path.join(SCRATCH, "node.json")
    with open(cfg, "w") as f:
        json.dump({"tls-cert": os.path.join(CA_DIR, "server.pem"),
                   "tls-key": os.path.join(CA_DIR, "server.key"),
                   "tls-client-ca": os.path.join(CA_DIR, "ca.pem")}, f)
    n = Node("--config", cfg, name="config-node")
    try:
        pem, key = cert_client(CA_DIR, "admin", "--force")
        status, reply = api(n, "GET", "/api/v1/whoami", cert=(pem, key))
        check_eq((status, reply.get("name")), (200, "admin"), f"{reply}")
    finally:
        n.stop()


@test
def an_email_san_names_the_user_with_an_email_domain():
    certs()
    n = Node("--tls-cert", os.path.join(CA_DIR, "server.pem"), "--tls-key",
             os.path.join(CA_DIR, "server.key"), "--tls-client-ca", os.path.join(CA_DIR, "ca.pem"),
             "--tls-client-email-domain", "example.org", name="email-node")
    try:
        status, reply = api(n, "POST", "/api/v1/login",
                            {"user": "admin", "password": n.admin_password})
        check_eq(status, 200, f"admin login: {reply}")
        status, reply = api(n, "POST", "/api/v1/users", {"name": "alice", "password": PASSWORD},
                            token=reply["token"])
        check_eq(status, 201, f"add alice: {reply}")
        # a CA that puts the person's name in the CN: the address in the domain is the user
        cert = make_client("alice-mail", "Alice Example", ["alice@other.test",
                                                             "alice@Example.ORG"])
        status, reply = api(n, "GET", "/api/v1/whoami", cert=cert)
        check_eq((status, reply.get("name"), reply.get("auth")), (200, "alice", "certificate"),
                 f"{reply}")
        # the CN no longer names anyone; nor two addresses, a look-alike domain, or none
        for label, cn, emails in (("cn-only", "alice", []),
                                  ("two", "x", ["alice@example.org", "admin@example.org"]),
                                  ("lookalike", "x", ["admin@example.org.evil.test"]),
                                  ("upper", "x", ["Admin@example.org"])):
            status, reply = api(n, "GET", "/api/v1/whoami", cert=make_client(label, cn, emails))
            check_eq(status, 401, f"{label}: {reply}")
            check("names no user" in reply["error"]["message"], f"{label}: {reply}")
    finally:
        n.stop()
    p = subprocess.run([WARREN, "node", "--state", SCRATCH, "--tls-client-email-domain",
                        "example.org"], capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 2, f"without --tls-client-ca: {p.stderr!r}")


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
