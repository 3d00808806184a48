#!/usr/bin/env python3
"""OpenID Connect bearer tokens end to end: a real `warren node --oidc-issuer --oidc-audience
--oidc-jwks`, tokens signed here by keys the test makes. Accepted: RS256, ES256 and EdDSA tokens
of the configured issuer and audience. Refused, each with its reason, audited, creating no one:
forged, tampered, expired, not yet valid, wrong issuer or audience, alg "none", an unknown kid,
and the alg-confusion forgery (HS256 MACed with the RSA public key). Admission: "approval" holds a
new identity until an administrator approves it; "auto" admits it at once. A token's
preferred_username never takes a name that exists. Key rotation by replacing the file."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import harness
from harness import Skip, TestFailure, check, check_eq, run_all, test, wait_for
from nodeutil import Node

import jwtutil

ISSUER = "https://idp.test/realms/warren"
AUDIENCE = "warren-api"
SCRATCH = tempfile.mkdtemp(prefix="warren-oidc-")
WARREN = harness.WARREN

class Key:
    """A jwtutil key that signs claims with a header the test may bend."""

    def __init__(self, alg, kid):
        self.key = jwtutil.Key.generate(alg, kid=kid)
        self.alg = alg

    def jwk(self):
        return self.key.jwk()

    def sign(self, claims, kid="", alg=None, extra_header=None):
        """kid "": the key's own; None: no kid. alg: what the header claims."""
        header = {"alg": alg or self.alg, "typ": "JWT"}
        kid = self.key.kid if kid == "" else kid
        if kid:
            header["kid"] = kid
        header.update(extra_header or {})
        return jwtutil.token(self.key, claims, header=header)


def write_jwks(path, keys):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(jwtutil.jwks(*[k.key for k in keys]))
    os.rename(tmp, path)


RSA = Key("RS256", "r1")
EC = Key("ES256", "e1")
ED = Key("EdDSA", "d1")
PS = Key("PS256", "p1")
STRANGER = Key("RS256", "r1")  # the same kid, another key: not in the file
JWKS = os.path.join(SCRATCH, "jwks.json")
write_jwks(JWKS, [RSA, EC, ED, PS])

_nodes = {}


def claims(sub, name=None, **extra):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600}
    if name:
        c["preferred_username"] = name
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def node(mode):
    """One node per admission mode, started on first use."""
    if mode not in _nodes:
        _nodes[mode] = Node("--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE,
                            "--oidc-jwks", JWKS, "--admission", mode,
                            "--login-max-per-address", "1000")
        _nodes[mode].admin = _nodes[mode].login()
    return _nodes[mode]


def call(n, token, method="GET", path="/api/v1/whoami", body=None):
    return n.request(method, path, body=body, headers={"Authorization": "Bearer " + token})


def audit(n, event):
    r = n.request("GET", "/api/v1/audit?limit=1000", token=n.admin)
    check_eq(r.status, 200, f"audit: {r}")
    return [a for a in r.json["records"] if a["event"] == event]


def user_names(n):
    r = n.request("GET", "/api/v1/users", token=n.admin)
    check_eq(r.status, 200, f"users: {r}")
    return {u["name"]: u for u in r.json["users"]}


@test
def approval_holds_a_new_identity_until_approved():
    n = node("approval")
    token = RSA.sign(claims("sub-alice", "alice"))
    r = call(n, token)
    check_eq((r.status, r.error_code()), (403, "pending_approval"), f"{r}")
    check("alice" in r.json["error"]["message"], f"{r}")
    # held, with no rights, and listed as pending
    r = n.request("GET", "/api/v1/users?state=pending", token=n.admin)
    check_eq([(u["name"], u["rights"], u["state"]) for u in r.json["users"]],
             [("alice", "none", "pending")], f"{r}")
    check(any(a["object"] == "alice" and ISSUER in a["detail"] for a in audit(n, "user_pending")),
          "user_pending audited")
    # asking again creates no one else
    r = call(n, token)
    check_eq(r.status, 403, f"{r}")
    check_eq(len([u for u in user_names(n) if u.startswith(("alice", "oidc-"))]), 1, "one user")
    # a standard user may not approve
    bob_token = n.add_user(n.admin, "bob")
    r = n.request("POST", "/api/v1/users/alice/approve", token=bob_token)
    check_eq(r.status, 403, f"approve by bob: {r}")
    r = n.request("POST", "/api/v1/users/alice/approve", body={"rights": "none"}, token=n.admin)
    check_eq((r.status, r.error_code()), (400, "invalid"), f"{r}")
    r = n.request("POST", "/api/v1/users/alice/approve", token=n.admin)
    check_eq((r.status, r.json["state"], r.json["rights"]), (200, "active", "standard_user"),
             f"{r}")
    check(audit(n, "user_approve"), "user_approve audited")
    r = n.request("POST", "/api/v1/users/alice/approve", token=n.admin)
    check_eq((r.status, r.error_code()), (409, "not_pending"), f"{r}")
    r = n.request("POST", "/api/v1/users/nobody/approve", token=n.admin)
    check_eq(r.status, 404, f"{r}")
    # the same token now works, as alice, a standard user, authenticated by OIDC
    r = call(n, token)
    check_eq((r.status, r.json["name"], r.json["rights"], r.json["auth"]),
             (200, "alice", "standard_user", "oidc"), f"{r}")
    # and alice can do what a standard user does: run a job
    r = call(n, token, "POST", "/api/v1/jobs?wait=true",
             {"app": "sh", "source": "echo from-oidc"})
    check_eq((r.status, r.json.get("state")), (201, "finished"), f"{r}")
    check_eq(r.json["result"]["run"]["stdout"]["text"], "from-oidc\n", f"{r}")
    # but not what an administrator does
    r = call(n, token, "GET", "/api/v1/users")
    check_eq(r.status, 403, f"{r}")
    # no session to end: logout says so
    r = call(n, token, "POST", "/api/v1/logout")
    check_eq((r.status, r.error_code()), (400, "bad_request"), f"{r}")


@test
def each_algorithm_of_the_file_verifies():
    n = node("auto")
    for key, sub in ((RSA, "s-rs"), (EC, "s-es"), (ED, "s-ed"), (PS, "s-ps")):
        r = call(n, key.sign(claims(sub)))
        check_eq(r.status, 200, f"{key.alg}: {r}")
        check(r.json["name"].startswith("oidc-"), f"{key.alg}: derived name {r.json}")
        # without a kid, the keys of the token's alg are tried
        r2 = call(n, key.sign(claims(sub), kid=None))
        check_eq((r2.status, r2.json["name"]), (200, r.json["name"]), f"{key.alg} no kid: {r2}")


@test
def auto_admits_at_once_and_never_takes_a_name():
    n = node("auto")
    r = call(n, EC.sign(claims("sub-carol", "carol")))
    check_eq((r.status, r.json["name"], r.json["rights"]), (200, "carol", "standard_user"),
             f"{r}")
    check(audit(n, "user_admit"), "user_admit audited")
    # another identity claiming the same name, or the administrator's, gets a name of its own
    for sub, claimed in (("sub-carol-2", "carol"), ("sub-mallory", "admin"),
                         ("sub-bad", "Not A Name")):
        r = call(n, RSA.sign(claims(sub, claimed)))
        check_eq(r.status, 200, f"{claimed}: {r}")
        check(r.json["name"].startswith("oidc-") and r.json["rights"] == "standard_user",
              f"{claimed}: {r.json}")
    names = [u for u in user_names(n) if u.startswith("oidc-")]
    check_eq(len(names), len(set(names)), "distinct names")
    # the same identity is the same user, whatever name it claims later
    r = call(n, RSA.sign(claims("sub-carol", "someone-else")))
    check_eq((r.status, r.json["name"]), (200, "carol"), f"{r}")
    # deleting the user unbinds the identity: the next token makes a new user
    check_eq(n.request("DELETE", "/api/v1/users/carol", token=n.admin).status, 204, "delete")
    r = call(n, EC.sign(claims("sub-carol", "carol")))
    check_eq((r.status, r.json["name"]), (200, "carol"), f"{r}")


def refusals():
    """(what, token, reason the node gives)."""
    ok = claims("sub-refused", "refused")
    now = int(time.time())
    tampered = RSA.sign(ok).split(".")
    evil = dict(ok, sub="sub-admin-ish", preferred_username="admin")
    tampered[1] = jwtutil.b64url(json.dumps(evil).encode())
    return [
        ("another key with the same kid", STRANGER.sign(ok), "signature"),
        ("a payload swapped", ".".join(tampered), "signature"),
        ("a signature bit", jwtutil.tamper(RSA.sign(ok), 2), "signature"),
        ("a payload bit", jwtutil.tamper(EC.sign(ok), 1), "signature"),
        ("an ECDSA signature in DER", jwtutil.der_ecdsa_token(EC.key, ok), "signature"),
        ("expired", RSA.sign(dict(ok, exp=now - 120)), "expired"),
        ("expired within the leeway is fine, beyond it", RSA.sign(dict(ok, exp=now - 61)),
         "expired"),
        ("not yet valid", RSA.sign(dict(ok, nbf=now + 600)), "not valid yet"),
        ("issued in the future", RSA.sign(dict(ok, iat=now + 600)), "future"),
        ("wrong audience", RSA.sign(dict(ok, aud="another-api")), "audience"),
        ("audience list without ours", RSA.sign(dict(ok, aud=["a", "b"])), "audience"),
        ("wrong issuer", RSA.sign(dict(ok, iss=ISSUER + "/")), "issuer"),
        ("no exp", RSA.sign({k: v for k, v in ok.items() if k != "exp"}), "missing"),
        ("no sub", RSA.sign({k: v for k, v in ok.items() if k != "sub"}), "missing"),
        ("exp null", RSA.sign(dict(ok, exp=None)), "invalid claim"),
        ("sub not a string", RSA.sign(dict(ok, sub=7)), "invalid claim"),
        ("alg none", jwtutil.none_token(ok), "alg"),
        ("unknown kid", RSA.sign(ok, kid="r9"), "key"),
        ("alg confusion, kid of the RSA key", jwtutil.alg_confusion_token(RSA.key, ok), "alg"),
        ("alg confusion, no kid", jwtutil.alg_confusion_token(RSA.key, ok, kid=False), "key"),
        ("RS256 header on an ES256 key", EC.sign(ok, alg="RS256"), "alg"),
        ("crit", RSA.sign(ok, extra_header={"crit": ["exp"], "exp": 1}), "crit"),
    ]


@test
def forged_and_invalid_tokens_are_refused_and_audited():
    n = node("approval")
    before_users = set(user_names(n))
    before_audit = len(audit(n, "login_oidc_failed"))
    for what, token, reason in refusals():
        r = call(n, token)
        check_eq((r.status, r.error_code()), (401, "unauthorized"), f"{what}: {r}")
        msg = r.json["error"]["message"]
        check(reason in msg, f"{what}: {reason!r} not in {msg!r}")
        check(r.headers.get("WWW-Authenticate", "").startswith("Bearer"), f"{what}: header")
    check_eq(set(user_names(n)), before_users, "no user created by a refused token")
    check_eq(len(audit(n, "login_oidc_failed")) - before_audit, len(refusals()),
             "every refusal audited")
    # and the leeway: 59 s past exp is still accepted
    r = call(n, RSA.sign(claims("sub-leeway", exp=int(time.time()) - 50)))
    check_eq((r.status, r.error_code()), (403, "pending_approval"), f"{r}")


@test
def refused_tokens_are_throttled_per_address():
    n = Node("--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", JWKS,
             "--admission", "auto", "--login-max-per-address", "3")
    try:
        bad = STRANGER.sign(claims("sub-x"))
        for i in range(3):
            check_eq(call(n, bad).status, 401, f"refusal {i}")
        r = call(n, bad)
        check_eq((r.status, r.error_code()), (429, "rate_limited"), f"{r}")
        check(int(r.headers["Retry-After"]) > 0, f"{r.headers}")
        # a good token from the same address waits too: the address is what is throttled
        r = call(n, RSA.sign(claims("sub-y")))
        check_eq(r.status, 429, f"{r}")
    finally:
        n.close()


@test
def keys_rotate_with_the_file():
    jwks = os.path.join(SCRATCH, "rotating.json")
    old, new = Key("RS256", "old"), Key("ES256", "new")
    write_jwks(jwks, [old])
    n = Node("--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", jwks,
             "--admission", "auto", "--login-max-per-address", "1000")
    try:
        check_eq(call(n, old.sign(claims("s1"))).status, 200, "old key")
        check_eq(call(n, new.sign(claims("s1"))).status, 401, "new key before the rotation")
        write_jwks(jwks, [new])
        wait_for(lambda: call(n, new.sign(claims("s1"))).status == 200, 10, "new key taken")
        r = call(n, old.sign(claims("s1")))
        check_eq(r.status, 401, f"old key after the rotation: {r}")
        # a broken file keeps the keys there are
        with open(jwks + ".tmp", "w") as f:
            f.write('{"keys": [{"kty": "oct", "k": "c2hvcnQ", "alg": "HS256"}]}')
        os.rename(jwks + ".tmp", jwks)
        # the file is looked at when a token comes, at most once a second
        wait_for(lambda: call(n, new.sign(claims("s1"))).status == 200 and
                 b"oidc_keys_kept" in n.stderr(), 10, "the broken file noticed")
        check_eq(call(n, new.sign(claims("s1"))).status, 200, "new key still")
    finally:
        n.close()


@test
def a_shared_secret_verifies_when_its_file_is_private():
    hs = Key("HS256", "h1")
    path = os.path.join(SCRATCH, "hs.json")
    write_jwks(path, [hs, RSA])
    os.chmod(path, 0o600)
    n = Node("--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", path,
             "--admission", "auto")
    try:
        r = call(n, hs.sign(claims("sub-hs")))
        check_eq(r.status, 200, f"HS256: {r}")
        # the RSA key of the same file still refuses the forgery made with its public key
        r = call(n, jwtutil.alg_confusion_token(RSA.key, claims("sub-hs"), kid=False))
        check_eq(r.status, 401, f"forgery beside an HS256 key: {r}")
    finally:
        n.close()


@test
def bad_configurations_are_refused_at_start():
    bad = os.path.join(SCRATCH, "private.json")
    jwk = RSA.jwk()
    jwk["d"] = jwk["n"]
    with open(bad, "w") as f:
        json.dump({"keys": [jwk]}, f)
    hs = Key("HS256", "h1")
    shared = os.path.join(SCRATCH, "shared.json")
    write_jwks(shared, [hs])
    os.chmod(shared, 0o644)
    state = tempfile.mkdtemp(prefix="warren-oidc-bad-", dir=SCRATCH)
    for args, code, needle in (
            (["--oidc-issuer", ISSUER, "--oidc-jwks", JWKS], 2, "go together"),
            (["--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", bad], 1,
             "key 0"),
            (["--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks",
              os.path.join(SCRATCH, "missing.json")], 1, "missing.json"),
            (["--admission", "sometimes"], 2, "approval"),
            (["--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", shared], 1,
             "chmod 600"),
    ):
        p = subprocess.run([WARREN, "node", "--state", state, "--listen", "127.0.0.1:0"] + args,
                           capture_output=True, text=True, timeout=60)
        check_eq(p.returncode, code, f"{args}: {p.stderr!r}")
        lines = p.stderr.strip().splitlines()
        check(len(lines) == 1 and needle in lines[0], f"{args}: {p.stderr!r}")


@test
def cli_logs_in_with_a_token_and_an_administrator_approves():
    n = node("approval")
    home = tempfile.mkdtemp(prefix="home-", dir=SCRATCH)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARREN_")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"))
    url = f"http://127.0.0.1:{n.port}"

    def warren(*args, input=None, token=None):
        e = dict(env)
        if token:
            e["WARREN_TOKEN"] = token
        return subprocess.run([WARREN] + list(args), capture_output=True, text=True,
                              input=input, env=e, timeout=60)

    token = ED.sign(claims("sub-dana", "dana"))
    p = warren("login", "--url", url, "--token-stdin", input=token + "\n")
    check_eq(p.returncode, 1, f"pending: {p.stderr!r}")
    check("approval" in p.stderr and len(p.stderr.strip().splitlines()) == 1, f"{p.stderr!r}")
    admin = n.admin
    p = warren("user", "ls", "--pending", "--url", url, token=admin)
    check_eq(p.returncode, 0, f"{p.stderr!r}")
    check("dana" in p.stdout and "pending" in p.stdout, f"{p.stdout!r}")
    p = warren("user", "approve", "dana", "--url", url, token=admin)
    check_eq(p.returncode, 0, f"approve: {p.stderr!r}")
    p = warren("user", "approve", "dana", "--url", url, token=admin)
    check_eq(p.returncode, 1, f"approve twice: {p.stderr!r}")
    check("pending" in p.stderr, f"{p.stderr!r}")
    p = warren("login", "--url", url, "--token-stdin", input=token + "\n")
    check_eq(p.returncode, 0, f"login: {p.stderr!r}")
    check("as dana" in p.stdout, f"{p.stdout!r}")
    script = os.path.join(home, "hello.sh")
    with open(script, "w") as f:
        f.write("echo via-cli\n")
    p = warren("submit", "--wait", script)
    check_eq(p.returncode, 0, f"submit: {p.stderr!r}")
    check("via-cli" in p.stdout, f"{p.stdout!r}")
    p = warren("logout")
    check_eq(p.returncode, 0, f"logout: {p.stderr!r}")
    p = warren("jobs")
    check(p.returncode != 0, f"after logout: {p.stdout!r}")
    p = warren("login", "--url", url, "--token-stdin", input="not a token\n")
    check_eq(p.returncode, 1, f"{p.stderr!r}")


@test
def nodes_stop_cleanly():
    if not _nodes:
        raise Skip("no node was started")
    for n in _nodes.values():
        n.close()


if __name__ == "__main__":
    try:
        import cryptography  # noqa: F401
    except ImportError:
        print("1..0 # SKIP python3-cryptography is missing (scripts/setup.sh installs it)")
        raise SystemExit(0)
    try:
        run_all()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
