#!/usr/bin/env python3
"""The workers of a master over the API and the CLI, on a real node (not a master: every worker
shows as disconnected): registering by CURVE public key with each confinement, listing with
pages, showing, removing; the 400s, 404s and 409s; administrators only (403 for a standard
user on every route, before any lookup); one-time join tokens (format, ttl bounds, never in the
audit log); and `warren worker ...` / `warren workers` end to end."""

import datetime
import os
import re
import subprocess
import tempfile

from harness import WARREN, check, check_eq, run_all, test
from nodeutil import Node

Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
TOKEN_RE = re.compile(r"^wjt_[A-Za-z0-9_-]{43}$")
WORKER_FIELDS = {"name", "public_key", "confinement", "group", "owner", "user", "errors",
                 "created_at", "last_seen", "state", "slots", "running", "cpus", "memory",
                 "last_heartbeat"}

_node = None
_tokens = {}
_key_counter = [0]


def node():
    global _node
    if _node is None:
        _node = Node(workers=1)
    return _node


def tok(who):
    """admin; alice (standard, in group team); bob (standard)."""
    n = node()
    if not _tokens:
        _tokens["admin"] = n.login()
        for name in ("alice", "bob"):
            _tokens[name] = n.add_user(_tokens["admin"], name, "password-" + name)
        r = n.request("POST", "/api/v1/groups", {"name": "team"}, token=_tokens["admin"])
        check_eq(r.status, 201, f"group: {r}")
        r = n.request("PUT", "/api/v1/groups/team/members/alice", token=_tokens["admin"])
        check_eq(r.status, 204, "member")
    return _tokens[who]


def new_key():
    """A distinct, well-formed Z85 key (40 characters)."""
    _key_counter[0] += 1
    k = _key_counter[0]
    suffix = ""
    while k:
        suffix = Z85[k % 85] + suffix
        k //= 85
    return ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" + "0" * 40)[:40 - len(suffix)] + suffix


def req(method, path, body=None, who="admin"):
    return node().request(method, path, body, token=tok(who) if who else None)


def add(name, key=None, **extra):
    body = {"name": name, "public_key": key or new_key(), **extra}
    r = req("POST", "/api/v1/workers", body)
    check_eq(r.status, 201, f"add {name}: {r}")
    return r.json


def audit_records():
    out, after = [], 0
    while True:
        r = req("GET", f"/api/v1/audit?after={after}&limit=1000")
        check_eq(r.status, 200, "audit")
        out += r.json["records"]
        if not r.json["next_after"]:
            return out
        after = r.json["next_after"]


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


@test
def test_add_list_show_remove():
    key = new_key()
    w = add("w-public", key)
    check_eq(set(w), WORKER_FIELDS, "fields")
    check_eq((w["name"], w["public_key"], w["confinement"], w["group"], w["owner"], w["user"]),
             ("w-public", key, "public", None, None, "w-public"), "public worker")
    check_eq((w["state"], w["slots"], w["running"], w["cpus"], w["memory"], w["errors"],
              w["last_heartbeat"], w["last_seen"]),
             ("disconnected", 0, 0, 0, 0, 0, None, None), "not a master: disconnected")
    check(parse_time(w["created_at"]), "created_at")

    g = add("w-group", confinement="group", group="team")
    check_eq((g["confinement"], g["group"], g["owner"]), ("group", "team", None), "group")
    p = add("w-private", confinement="private", owner="alice")
    check_eq((p["confinement"], p["group"], p["owner"]), ("private", None, "alice"), "private")
    d = add("w-default", confinement="public")
    check_eq(d["confinement"], "public", "explicit public")

    # its account: a worker_user named like it
    r = req("GET", "/api/v1/users/w-group")
    check_eq(r.status, 200, f"account: {r}")
    check_eq(r.json["rights"], "worker_user", "account rights")

    r = req("GET", "/api/v1/workers")
    check_eq(r.status, 200, f"list: {r}")
    check_eq(set(r.json), {"workers", "next_cursor"}, "list keys")
    names = [x["name"] for x in r.json["workers"]]
    for name in ("w-public", "w-group", "w-private", "w-default"):
        check(name in names, f"{name} listed: {names}")
    check_eq(r.json["next_cursor"], None, "one page")

    r = req("GET", "/api/v1/workers/w-group")
    check_eq(r.status, 200, f"show: {r}")
    check_eq(r.json, g, "show is what add said")

    r = req("DELETE", "/api/v1/workers/w-group")
    check_eq(r.status, 204, f"delete: {r}")
    check_eq(r.body, b"", "204 has no body")
    r = req("GET", "/api/v1/workers/w-group")
    check_eq(r.status, 404, "gone")
    check_eq(r.error_code(), "not_found", "code")
    r = req("GET", "/api/v1/users/w-group")
    check_eq(r.status, 404, "its account is gone too")
    names = [x["name"] for x in req("GET", "/api/v1/workers").json["workers"]]
    check("w-group" not in names, "not listed")
    # the name and the key are free again
    add("w-group", g["public_key"], confinement="group", group="team")


@test
def test_pages():
    for i in range(5):
        add(f"page-{i}")
    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/v1/workers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = req("GET", path)
        check_eq(r.status, 200, f"page: {r}")
        check(len(r.json["workers"]) <= 2, "limit")
        seen += [x["name"] for x in r.json["workers"]]
        pages += 1
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        check(isinstance(cursor, str), "a string cursor")
    check_eq(len(seen), len(set(seen)), "no worker twice")
    for i in range(5):
        check(f"page-{i}" in seen, f"page-{i} on a page")
    check(pages >= 3, "several pages")
    for q in ("limit=0", "limit=1001", "limit=x", "cursor=abc", "cursor=-1"):
        r = req("GET", "/api/v1/workers?" + q)
        check_eq(r.status, 400, f"{q}: {r}")
        check_eq(r.error_code(), "invalid", q)


@test
def test_bad_requests():
    good = new_key()
    cases = [
        ({"name": "bad1", "public_key": good[:39]}, "invalid", "short key"),
        ({"name": "bad1", "public_key": good + "0"}, "invalid", "long key"),
        ({"name": "bad1", "public_key": good[:39] + "~"}, "invalid", "not Z85"),
        ({"name": "bad1", "public_key": good[:39] + " "}, "invalid", "space"),
        ({"name": "bad1", "public_key": ""}, "invalid", "empty key"),
        ({"name": "Bad", "public_key": good}, "invalid", "upper case name"),
        ({"name": "1bad", "public_key": good}, "invalid", "digit first"),
        ({"name": "", "public_key": good}, "invalid", "empty name"),
        ({"name": "a" * 65, "public_key": good}, "invalid", "long name"),
        ({"name": "a/b", "public_key": good}, "invalid", "slash"),
        ({"name": "bad1", "public_key": good, "confinement": "group"}, "missing_field",
         "group without group"),
        ({"name": "bad1", "public_key": good, "confinement": "private"}, "missing_field",
         "private without owner"),
        ({"name": "bad1", "public_key": good, "confinement": "shared"}, "invalid",
         "unknown confinement"),
        ({"name": "bad1", "public_key": good, "confinement": "PUBLIC"}, "invalid", "case"),
        ({"name": "bad1", "public_key": good, "group": "team"}, "invalid",
         "group with public"),
        ({"name": "bad1", "public_key": good, "confinement": "group", "group": "team",
          "owner": "alice"}, "invalid", "owner with group"),
        ({"name": "bad1", "public_key": good, "confinement": "private", "owner": "alice",
          "group": "team"}, "invalid", "group with private"),
        ({"name": "bad1"}, "missing_field", "no key"),
        ({"public_key": good}, "missing_field", "no name"),
        ({"name": "bad1", "public_key": good, "extra": 1}, "unknown_field", "unknown field"),
        ({"name": 1, "public_key": good}, "wrong_type", "number name"),
        ({"name": "bad1", "public_key": good, "confinement": 2}, "wrong_type",
         "number confinement"),
    ]
    for body, code, what in cases:
        r = req("POST", "/api/v1/workers", body)
        check_eq(r.status, 400, f"{what}: {r}")
        check_eq(r.error_code(), code, what)
    # a worker_user cannot own a private worker
    add("some-worker")
    r = req("POST", "/api/v1/workers", {"name": "bad1", "public_key": good,
                                         "confinement": "private", "owner": "some-worker"})
    check_eq(r.status, 400, f"worker as owner: {r}")
    r = node().request("POST", "/api/v1/workers", raw=b"{not json", token=tok("admin"))
    check_eq(r.status, 400, "malformed JSON")
    r = req("GET", "/api/v1/workers/bad1")
    check_eq(r.status, 404, "nothing was made")


@test
def test_not_found():
    for method in ("GET", "DELETE"):
        for name in ("nobody", "Nobody", "x" * 70):
            r = req(method, f"/api/v1/workers/{name}")
            check_eq(r.status, 404, f"{method} {name}: {r}")
            check_eq(r.error_code(), "not_found", "code")
    key = new_key()
    r = req("POST", "/api/v1/workers", {"name": "nf", "public_key": key,
                                         "confinement": "group", "group": "nogroup"})
    check_eq(r.status, 404, f"unknown group: {r}")
    r = req("POST", "/api/v1/workers", {"name": "nf", "public_key": key,
                                         "confinement": "private", "owner": "nouser"})
    check_eq(r.status, 404, f"unknown owner: {r}")
    r = req("POST", "/api/v1/workers/tokens", {"confinement": "group", "group": "nogroup"})
    check_eq(r.status, 404, f"token, unknown group: {r}")
    r = req("POST", "/api/v1/workers/tokens", {"confinement": "private", "owner": "nouser"})
    check_eq(r.status, 404, f"token, unknown owner: {r}")


@test
def test_conflicts():
    key = new_key()
    add("dup", key)
    r = req("POST", "/api/v1/workers", {"name": "dup", "public_key": new_key()})
    check_eq(r.status, 409, f"same name: {r}")
    check_eq(r.error_code(), "conflict", "code")
    r = req("POST", "/api/v1/workers", {"name": "dup2", "public_key": key})
    check_eq(r.status, 409, f"same key: {r}")
    check_eq(r.error_code(), "conflict", "code")
    check("dup" in r.json["error"]["message"], "says whose key it is")
    tok("alice")
    r = req("POST", "/api/v1/workers", {"name": "alice", "public_key": new_key()})
    check_eq(r.status, 409, f"a user's name: {r}")
    check_eq(r.error_code(), "conflict", "code")
    r = req("POST", "/api/v1/workers", {"name": "admin", "public_key": new_key()})
    check_eq(r.status, 409, f"admin's name: {r}")
    # and a user may not take a worker's name either
    r = req("POST", "/api/v1/users", {"name": "dup", "password": "password-dup"})
    check_eq(r.status, 409, f"user with a worker's name: {r}")
    r = req("GET", "/api/v1/users/alice")
    check_eq(r.json["rights"], "standard_user", "alice untouched")


@test
def test_forbidden():
    add("target")
    key = new_key()
    routes = [
        ("GET", "/api/v1/workers", None),
        ("GET", "/api/v1/workers?limit=1", None),
        ("GET", "/api/v1/workers/target", None),
        ("GET", "/api/v1/workers/nonexistent", None),
        ("DELETE", "/api/v1/workers/target", None),
        ("DELETE", "/api/v1/workers/nonexistent", None),
        ("POST", "/api/v1/workers", {"name": "mine", "public_key": key}),
        ("POST", "/api/v1/workers", {"name": "bad name", "public_key": "x"}),
        ("POST", "/api/v1/workers/tokens", {}),
        ("POST", "/api/v1/workers/tokens", {"confinement": "private", "owner": "bob"}),
    ]
    for who in ("alice", "bob"):
        for method, path, body in routes:
            r = req(method, path, body, who=who)
            check_eq(r.status, 403, f"{who} {method} {path}: {r}")
            check_eq(r.error_code(), "forbidden", "code")
    for method, path, body in routes:
        r = req(method, path, body, who=None)
        check_eq(r.status, 401, f"anonymous {method} {path}: {r}")
    r = req("GET", "/api/v1/workers/target")
    check_eq(r.status, 200, "still there")
    r = req("GET", "/api/v1/workers/mine")
    check_eq(r.status, 404, "nothing made")
    denied = [x for x in audit_records() if x["event"] == "denied" and x["actor"] == "bob"]
    for action in ("worker_list", "worker_get", "worker_delete", "worker_insert",
                   "worker_token"):
        check(any(x["detail"] == action for x in denied), f"{action} refusal audited")


@test
def test_tokens():
    issued = []
    before = datetime.datetime.now(datetime.timezone.utc)
    r = req("POST", "/api/v1/workers/tokens", {})
    check_eq(r.status, 201, f"default token: {r}")
    check_eq(set(r.json), {"token", "expires_at", "ttl", "confinement", "group", "owner"},
             "fields")
    check(TOKEN_RE.match(r.json["token"]), f"format: {r.json['token']}")
    check_eq((r.json["ttl"], r.json["confinement"], r.json["group"], r.json["owner"]),
             (3600, "public", None, None), "defaults")
    exp = parse_time(r.json["expires_at"])
    after = datetime.datetime.now(datetime.timezone.utc)
    check(before + datetime.timedelta(seconds=3599) <= exp <=
          after + datetime.timedelta(seconds=3601), f"expires in an hour: {exp}")
    issued.append(r.json["token"])

    for ttl in (60, 604800):
        r = req("POST", "/api/v1/workers/tokens", {"ttl": ttl})
        check_eq(r.status, 201, f"ttl {ttl}: {r}")
        check_eq(r.json["ttl"], ttl, "ttl echoed")
        issued.append(r.json["token"])
    for ttl in (59, 0, -1, 604801, 10 ** 12):
        r = req("POST", "/api/v1/workers/tokens", {"ttl": ttl})
        check_eq(r.status, 400, f"ttl {ttl}: {r}")
    for ttl in ("1h", 60.5, None):
        r = req("POST", "/api/v1/workers/tokens", {"ttl": ttl})
        check_eq(r.status, 400, f"ttl {ttl!r}: {r}")
        check_eq(r.error_code(), "wrong_type", "code")

    r = req("POST", "/api/v1/workers/tokens", {"confinement": "group", "group": "team"})
    check_eq(r.status, 201, f"group token: {r}")
    check_eq((r.json["confinement"], r.json["group"]), ("group", "team"), "group token")
    issued.append(r.json["token"])
    r = req("POST", "/api/v1/workers/tokens", {"confinement": "private", "owner": "bob"})
    check_eq(r.status, 201, f"private token: {r}")
    check_eq((r.json["confinement"], r.json["owner"]), ("private", "bob"), "private token")
    issued.append(r.json["token"])
    for body, what in (({"confinement": "group"}, "group without group"),
                       ({"confinement": "private"}, "private without owner"),
                       ({"confinement": "nope"}, "unknown confinement"),
                       ({"group": "team"}, "group with public"),
                       ({"ttl": 600, "extra": True}, "unknown field")):
        r = req("POST", "/api/v1/workers/tokens", body)
        check_eq(r.status, 400, f"{what}: {r}")
    check_eq(len(set(issued)), len(issued), "every token new")

    records = audit_records()
    made = [x for x in records if x["event"] == "worker_token"]
    check(len(made) >= len(issued), f"audited: {len(made)}")
    check(any("confinement private owner bob" in (x["detail"] or "") for x in made),
          "the audit says what it grants")
    text = repr(records)
    for t in issued:
        check(t not in text and t[4:] not in text, "a token never reaches the audit log")
    check(all(t not in node().stderr().decode(errors="replace") for t in issued),
          "nor the node's log")


@test
def test_audit():
    add("audited", confinement="group", group="team")
    check_eq(req("DELETE", "/api/v1/workers/audited").status, 204, "delete")
    records = audit_records()
    adds = [x for x in records if x["event"] == "worker_add" and x["object"] == "worker:audited"]
    check(adds and adds[-1]["actor"] == "admin", f"worker_add: {adds}")
    check("group team" in adds[-1]["detail"], f"detail: {adds[-1]}")
    rms = [x for x in records if x["event"] == "worker_remove" and
           x["object"] == "worker:audited"]
    check(rms and rms[-1]["actor"] == "admin", f"worker_remove: {rms}")


def cli(args, who="admin", **kw):
    home = tempfile.mkdtemp(prefix="warren-workers-home-")
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "WARREN_URL": f"http://127.0.0.1:{node().port}", "WARREN_TOKEN": tok(who)}
    return subprocess.run([WARREN] + list(args), capture_output=True, timeout=120, env=env,
                          text=True, **kw)


def one_line_error(p, what):
    check(p.returncode != 0, f"{what}: exit code {p.returncode}")
    lines = p.stderr.strip().splitlines()
    check_eq(len(lines), 1, f"{what}: one line: {p.stderr!r}")
    check(lines[0].startswith("warren: "), f"{what}: {p.stderr!r}")


@test
def test_cli():
    d = tempfile.mkdtemp(prefix="warren-workers-keys-")
    pub, sec = new_key(), new_key()
    pub2 = new_key()
    with open(os.path.join(d, "k1"), "w") as f:
        f.write(pub + "\n")
    with open(os.path.join(d, "k2.secret"), "w") as f:
        f.write(f"public {pub2}\nsecret {sec}\n")
    with open(os.path.join(d, "only.secret"), "w") as f:
        f.write(f"secret {sec}\n")
    with open(os.path.join(d, "empty"), "w") as f:
        f.write("")

    p = cli(["worker", "add", "cli-one", "--key", os.path.join(d, "k1")])
    check_eq(p.returncode, 0, f"add --key: {p.stderr}")
    check_eq(p.stdout, "", "quiet")
    p = cli(["worker", "add", "cli-two", "--key", os.path.join(d, "k2.secret"), "--group",
             "team", "--json"])
    check_eq(p.returncode, 0, f"add --key .secret: {p.stderr}")
    import json
    w = json.loads(p.stdout)
    check_eq((w["public_key"], w["confinement"], w["group"]), (pub2, "group", "team"),
             "the public line, never the secret")
    key3 = new_key()
    p = cli(["worker", "add", "cli-three", "--key-text", key3, "--private", "bob"])
    check_eq(p.returncode, 0, f"add --key-text: {p.stderr}")
    p = cli(["worker", "add", "cli-four", "--key-text", new_key(), "--public"])
    check_eq(p.returncode, 0, f"add --public: {p.stderr}")

    for args in (["workers"], ["worker", "ls"]):
        p = cli(args)
        check_eq(p.returncode, 0, f"{args}: {p.stderr}")
        lines = p.stdout.splitlines()
        check_eq(lines[0].split(), ["NAME", "STATE", "CONFINEMENT", "SLOTS", "RUNNING", "ERRORS",
                                    "LAST-HEARTBEAT"], "header")
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        check_eq(rows["cli-two"][1:], ["disconnected", "group:team", "0", "0", "0", "-"],
                 f"row: {rows.get('cli-two')}")
        check_eq(rows["cli-three"][2], "private:bob", "private row")
        check_eq(rows["cli-one"][2], "public", "public row")
    p = cli(["workers", "--json"])
    check_eq(p.returncode, 0, f"--json: {p.stderr}")
    names = [x["name"] for x in json.loads(p.stdout)["workers"]]
    check("cli-one" in names and "cli-two" in names, "json list")

    p = cli(["worker", "show", "cli-three"])
    check_eq(p.returncode, 0, f"show: {p.stderr}")
    check(re.search(r"^public key\s+" + re.escape(key3) + "$", p.stdout, re.M), p.stdout)
    check(re.search(r"^confinement\s+private:bob$", p.stdout, re.M), p.stdout)
    check(re.search(r"^state\s+disconnected$", p.stdout, re.M), p.stdout)
    p = cli(["worker", "show", "cli-three", "--json"])
    check_eq(json.loads(p.stdout)["owner"], "bob", "show --json")

    p = cli(["worker", "token"])
    check_eq(p.returncode, 0, f"token: {p.stderr}")
    check(TOKEN_RE.match(p.stdout.strip()) and p.stdout.count("\n") == 1,
          f"one line, the token: {p.stdout!r}")
    check("expires" in p.stderr and p.stdout.strip() not in p.stderr, f"stderr: {p.stderr!r}")
    p = cli(["worker", "token", "--group", "team", "--ttl", "2h", "--json"])
    check_eq(p.returncode, 0, f"token --json: {p.stderr}")
    t = json.loads(p.stdout)
    check_eq((t["ttl"], t["confinement"], t["group"]), (7200, "group", "team"), "token opts")
    for ttl, secs in (("90", 90), ("90s", 90), ("30m", 1800), ("7d", 604800)):
        p = cli(["worker", "token", "--private", "alice", "--ttl", ttl, "--json"])
        check_eq(p.returncode, 0, f"--ttl {ttl}: {p.stderr}")
        check_eq(json.loads(p.stdout)["ttl"], secs, f"--ttl {ttl}")

    p = cli(["worker", "rm", "cli-four"])
    check_eq(p.returncode, 0, f"rm: {p.stderr}")
    p = cli(["worker", "show", "cli-four"])
    one_line_error(p, "show removed")
    check("not_found" in p.stderr, p.stderr)

    bad = [
        (["worker", "add", "x"], "no key"),
        (["worker", "add", "x", "--key-text", "short"], "bad key text"),
        (["worker", "add", "x", "--key-text", new_key(), "--key", os.path.join(d, "k1")],
         "two keys"),
        (["worker", "add", "x", "--key", os.path.join(d, "only.secret")], "secret only"),
        (["worker", "add", "x", "--key", os.path.join(d, "empty")], "empty file"),
        (["worker", "add", "x", "--key", os.path.join(d, "missing")], "missing file"),
        (["worker", "add", "x", "--key-text", new_key(), "--public", "--group", "team"],
         "two confinements"),
        (["worker", "add", "x", "--key-text", new_key(), "--group", "nogroup"], "no group"),
        (["worker", "add", "Bad", "--key-text", new_key()], "bad name"),
        (["worker", "add", "", "--key-text", new_key()], "empty name"),
        (["worker", "add", "cli-one", "--key-text", new_key()], "taken name"),
        (["worker", "add", "y", "--key-text", pub], "taken key"),
        (["worker", "add", "alice", "--key-text", new_key()], "a user's name"),
        (["worker", "add"], "no name"),
        (["worker", "show"], "show without name"),
        (["worker", "rm", "nobody"], "rm unknown"),
        (["worker", "token", "--ttl", "59"], "ttl too short"),
        (["worker", "token", "--ttl", "8d"], "ttl too long"),
        (["worker", "token", "--ttl", "1x"], "ttl junk"),
        (["worker", "token", "--group", "team", "--private", "bob"], "two confinements"),
        (["worker", "token", "--key-text", new_key()], "--key-text is add's"),
        (["worker", "ls", "--ttl", "1h"], "--ttl is token's"),
        (["worker", "frobnicate"], "unknown sub-command"),
        (["worker"], "no sub-command"),
        (["workers", "extra"], "workers takes no argument"),
    ]
    for args, what in bad:
        p = cli(args)
        one_line_error(p, what)
    check(sec not in repr(audit_records()), "the secret key never reached the node")

    # a standard user: refused, one line
    for args in (["workers"], ["worker", "show", "cli-one"], ["worker", "rm", "cli-one"],
                 ["worker", "token"], ["worker", "add", "z", "--key-text", new_key()]):
        p = cli(args, who="bob")
        one_line_error(p, f"bob {args}")
        check("forbidden" in p.stderr, p.stderr)
    check_eq(req("GET", "/api/v1/workers/cli-one").status, 200, "still there")

    p = cli(["help"])
    check("worker " in p.stdout and "workers " in p.stdout, "listed in help")
    p = cli(["worker", "--help"])
    check_eq(p.returncode, 0, "help")
    check("token" in p.stdout and "--key" in p.stdout, "worker help")


if __name__ == "__main__":
    try:
        run_all()
    finally:
        if _node:
            _node.close()
