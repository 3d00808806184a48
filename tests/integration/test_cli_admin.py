#!/usr/bin/env python3
"""The client's access-control and administration commands end to end: chmod, chgrp, chown,
group, session and audit through the real binaries against a real node (nodeutil.Node), each
outcome checked against the API; refusals (usage errors before any request, the node's
refusals as one line), and the escaping of hostile text in the audit log."""

import atexit
import json
import os
import shutil
import socket
import subprocess
import tempfile

from harness import WARREN, check, check_eq, run_all, test
from nodeutil import Node

SCRATCH = tempfile.mkdtemp(prefix="warren-cli-admin-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)

_node = None
_tokens = {}


def node():
    global _node
    if _node is None:
        _node = Node(workers=2)
    return _node


def tok(who):
    """Tokens of: admin; alice and bob (in group team); carol (in no group)."""
    n = node()
    if not _tokens:
        _tokens["admin"] = n.login()
        a = _tokens["admin"]
        for name in ("alice", "bob", "carol"):
            _tokens[name] = n.add_user(a, name, "password-" + name)
        r = n.request("POST", "/api/v1/groups", {"name": "team"}, token=a)
        check_eq(r.status, 201, f"group team: {r}")
        for m in ("alice", "bob"):
            r = n.request("PUT", f"/api/v1/groups/team/members/{m}", token=a)
            check_eq(r.status, 204, f"member {m}: {r}")
    return _tokens[who]


def env(token=None, url=None):
    """A user's environment: its own HOME (no saved login), the node's URL, the token if any."""
    home = os.path.join(SCRATCH, "home")
    os.makedirs(home, mode=0o700, exist_ok=True)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("WARREN_") and k.lower() not in
         ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    e["HOME"] = home
    e["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    e["WARREN_URL"] = url or f"http://127.0.0.1:{node().port}"
    if token:
        e["WARREN_TOKEN"] = token
    return e


def warren(args, who="admin", url=None):
    """Runs warren ARGS as who (a name from tok(), or None: no token)."""
    return subprocess.run([WARREN] + list(args), capture_output=True, text=True, timeout=120,
                          env=env(tok(who) if who else None, url))


def check_ok(p, what):
    check_eq(p.returncode, 0, f"{what}: exit code (stderr {p.stderr!r})")
    check_eq(p.stderr, "", f"{what}: stderr")


def check_one_line_error(p, code, needle, what):
    """Exit code, exactly one line on stderr naming needle, nothing on stdout."""
    check_eq(p.returncode, code, f"{what}: exit code (stderr {p.stderr!r})")
    lines = p.stderr.splitlines()
    check_eq(len(lines), 1, f"{what}: one line on stderr: {p.stderr!r}")
    check(lines[0].startswith("warren: "), f"{what}: {lines[0]!r}")
    check(needle in lines[0], f"{what}: {needle!r} not in {lines[0]!r}")
    check_eq(p.stdout, "", f"{what}: stdout")


def fields(stdout):
    """The 'label  value' lines chmod, chgrp, chown and group show print, as a dict."""
    out = {}
    for line in stdout.splitlines():
        label, _, value = line.partition(" ")
        out[label] = value.strip()
    return out


def api(method, path, who="admin", body=None):
    return node().request(method, path, body, token=tok(who))


def new_job(who="alice"):
    return node().submit(tok(who), {"app": "sh", "source": "true"})["id"]


# ---- without a node's answer ----

@test
def test_help():
    for args in (["chmod"], ["chgrp"], ["chown"], ["group"], ["session"], ["audit"]):
        p = subprocess.run([WARREN] + args + ["--help"], capture_output=True, text=True,
                           timeout=60, env=env())
        check_ok(p, f"{args} --help")
        check(p.stdout.startswith(f"Usage: warren {args[0]}"), f"{args}: {p.stdout[:80]!r}")
    for args in (["group", "ls", "--help"], ["group", "member", "--help"],
                 ["group", "member", "add", "-h"], ["session", "revoke", "--help"]):
        p = subprocess.run([WARREN] + args, capture_output=True, text=True, timeout=60, env=env())
        check_ok(p, " ".join(args))
        check(p.stdout.startswith(f"Usage: warren {args[0]}"), f"{args}: {p.stdout[:80]!r}")
    p = subprocess.run([WARREN, "--help"], capture_output=True, text=True, timeout=60, env=env())
    for cmd in ("chmod", "chgrp", "chown", "group", "session", "audit"):
        check(f"\n  {cmd} " in p.stdout, f"warren --help lists {cmd}: {p.stdout!r}")


USAGE_ERRORS = [
    (["chmod", "8", "job", "x"], "invalid mode '8'"),
    (["chmod", "75", "job", "x"], "invalid mode '75'"),
    (["chmod", "0800", "job", "x"], "invalid mode '0800'"),
    (["chmod", "1777", "job", "x"], "invalid mode '1777'"),
    (["chmod", "07500", "job", "x"], "invalid mode '07500'"),
    (["chmod", "rwx", "job", "x"], "invalid mode 'rwx'"),
    (["chmod", "+755", "job", "x"], "invalid mode '+755'"),
    (["chmod", " 755", "job", "x"], "invalid mode ' 755'"),
    (["chmod", "", "job", "x"], "the mode is empty"),
    (["chmod", "750", "jobs", "x"], "unknown kind 'jobs'"),
    (["chgrp", "team", "file", "x"], "unknown kind 'file'"),
    (["chown", "alice", "", "x"], "the kind is empty"),
    (["chmod", "750", "job"], "no name given"),
    (["chmod", "750"], "no kind given"),
    (["chown"], "no user given"),
    (["chmod", "750", "job", "x", "y"], "unexpected argument 'y'"),
    (["chmod", "--bogus", "750", "job", "x"], "unknown option '--bogus'"),
    (["group"], "no command given"),
    (["group", "frob"], "unknown command 'frob'"),
    (["group", "add"], "no group name given"),
    (["group", "member", "add", "team"], "no user name given"),
    (["group", "member", "frob"], "unknown command 'frob'"),
    (["group", "rm", "team", "--json"], "unknown option '--json'"),
    (["session", "revoke"], "no session id given"),
    (["session", "revoke", "abc"], "invalid session id 'abc'"),
    (["session", "revoke", "0"], "invalid session id '0'"),
    (["audit", "--limit", "0"], "invalid --limit '0'"),
    (["audit", "--limit", "x"], "invalid --limit 'x'"),
    (["audit", "--after", "-1"], "invalid --after '-1'"),
    (["audit", "extra"], "unexpected argument 'extra'"),
]


@test
def test_usage_errors_before_any_request():
    """Each is exit 2 and one line; a listener that stands in for the node sees no connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.setblocking(False)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        for args, needle in USAGE_ERRORS:
            p = subprocess.run([WARREN] + args, capture_output=True, text=True, timeout=60,
                               env=env("wrn_" + "A" * 43, url))
            check_one_line_error(p, 2, needle, " ".join(args))
        try:
            conn, _ = s.accept()
            conn.close()
            raise AssertionError("a usage error connected to the node")
        except BlockingIOError:
            pass


@test
def test_no_token():
    for args in (["chmod", "750", "job", "x"], ["group", "ls"], ["session", "ls"], ["audit"]):
        p = warren(args, who=None)
        check_one_line_error(p, 1, "not logged in", " ".join(args))


# ---- chmod, chgrp, chown ----

@test
def test_chmod_opens_a_job_to_its_group():
    jid = new_job("alice")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "bob").status, 404, "bob cannot see it yet")
    p = warren(["chgrp", "team", "job", jid], "alice")
    check_ok(p, "alice: chgrp team")
    check_eq(fields(p.stdout), {"owner": "alice", "group": "team", "mode": "0700"}, "chgrp out")
    p = warren(["chmod", "750", "job", jid], "admin")
    check_ok(p, "admin: chmod 750")
    check_eq(fields(p.stdout), {"owner": "alice", "group": "team", "mode": "0750"}, "chmod out")
    job = api("GET", f"/api/v1/jobs/{jid}", "alice").json
    check_eq((job["mode"], job["group"], job["owner"]), ("0750", "team", "alice"), "the API")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "bob").status, 200, "a member reads it now")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "carol").status, 404, "carol still not")
    # the owner lowers it (4 digits), with --json
    p = warren(["chmod", "0740", "job", jid, "--json"], "alice")
    check_ok(p, "alice: chmod 0740 --json")
    check_eq(json.loads(p.stdout), {"owner": "alice", "group": "team", "mode": "0740"}, "json")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "alice").json["mode"], "0740", "lowered")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "bob").status, 200, "group still reads")
    # no group, both spellings
    for none in ("-", "none"):
        p = warren(["chgrp", none, "job", jid, "--json"], "admin")
        check_ok(p, f"chgrp {none}")
        check_eq(json.loads(p.stdout)["group"], None, f"chgrp {none}")
        check_eq(api("GET", f"/api/v1/jobs/{jid}", "alice").json["group"], None, "no group")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "bob").status, 404, "bob is an other again")


@test
def test_chown_by_admin():
    jid = new_job("alice")
    p = warren(["chown", "carol", "job", jid], "admin")
    check_ok(p, "chown carol")
    check_eq(fields(p.stdout)["owner"], "carol", "chown out")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "admin").json["owner"], "carol", "the API")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "carol").status, 200, "carol owns it")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "alice").status, 404, "alice no more")


@test
def test_acl_of_apps_users_and_groups():
    # an app: only its group may see it at 0750
    p = warren(["chgrp", "team", "app", "sh"])
    check_ok(p, "chgrp team app sh")
    p = warren(["chmod", "750", "app", "sh"])
    check_ok(p, "chmod 750 app sh")
    app = api("GET", "/api/v1/apps/sh", "admin").json
    check_eq((app["group"], app["mode"]), ("team", "0750"), "the app's acl")
    check_eq(api("GET", "/api/v1/apps/sh", "bob").status, 200, "a member sees the app")
    check_eq(api("GET", "/api/v1/apps/sh", "carol").status, 404, "carol does not")
    check_ok(warren(["chmod", "0755", "app", "sh"]), "chmod 0755 app sh")
    check_ok(warren(["chgrp", "none", "app", "sh"]), "chgrp none app sh")
    app = api("GET", "/api/v1/apps/sh", "carol").json
    check_eq((app["group"], app["mode"]), (None, "0755"), "restored")
    # a group: at 0700 its members no longer read it
    p = warren(["chmod", "700", "group", "team"])
    check_ok(p, "chmod 700 group team")
    check_eq(api("GET", "/api/v1/groups/team", "admin").json["mode"], "0700", "the group's mode")
    check_eq(api("GET", "/api/v1/groups/team", "bob").status, 404, "bob cannot read it")
    check_ok(warren(["chmod", "750", "group", "team"]), "chmod 750 group team")
    check_eq(api("GET", "/api/v1/groups/team", "bob").status, 200, "bob reads it again")
    # a user: the reply is the new acl, and it stays
    p = warren(["chmod", "700", "user", "carol", "--json"])
    check_ok(p, "chmod 700 user carol")
    check_eq(json.loads(p.stdout), {"owner": "carol", "group": None, "mode": "0700"}, "user acl")
    p = warren(["chgrp", "-", "user", "carol", "--json"])
    check_eq(json.loads(p.stdout)["mode"], "0700", "kept")


@test
def test_acl_refusals():
    jid = new_job("alice")
    p = warren(["chmod", "755", "job", jid], "alice")
    check_one_line_error(p, 1, "you may not do this to this job (forbidden)", "raise a mode")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "alice").json["mode"], "0700", "unchanged")
    p = warren(["chown", "carol", "job", jid], "alice")
    check_one_line_error(p, 1, "(forbidden)", "chown by its owner")
    check_eq(api("GET", f"/api/v1/jobs/{jid}", "admin").json["owner"], "alice", "unchanged")
    p = warren(["chmod", "700", "job", jid], "carol")
    check_one_line_error(p, 1, "no such job (not_found)", "another user's job")
    p = warren(["chmod", "700", "job", "0" * 32])
    check_one_line_error(p, 1, "no such job (not_found)", "an unknown job")
    p = warren(["chmod", "700", "app", "no-such-app"])
    check_one_line_error(p, 1, "no such app (not_found)", "an unknown app")
    p = warren(["chmod", "700", "user", "nobody"])
    check_one_line_error(p, 1, "no such user (not_found)", "an unknown user")
    p = warren(["chgrp", "nosuchgroup", "job", jid])
    check_one_line_error(p, 1, "no such group (not_found)", "an unknown group")
    p = warren(["chown", "nobody", "job", jid])
    check_one_line_error(p, 1, "no such user (not_found)", "an unknown new owner")
    p = warren(["chgrp", "team", "job", jid], "carol")
    check_one_line_error(p, 1, "(not_found)", "carol, on a job she cannot see")
    # a name with a slash stays one segment: it does not reach /api/v1/users/alice/acl
    p = warren(["chmod", "700", "app", "../users/alice"])
    check_eq(p.returncode, 1, f"a name with slashes: {p.stderr!r}")
    check("(no_route)" in p.stderr or "(not_found)" in p.stderr, f"refused: {p.stderr!r}")


# ---- groups ----

@test
def test_group_commands():
    tok("admin")
    check_ok(warren(["group", "add", "devs"]), "group add devs")
    g = api("GET", "/api/v1/groups/devs").json
    check_eq((g["owner"], g["mode"], g["members"]), ("admin", "0750", []), "created")
    p = warren(["group", "ls"])
    check_ok(p, "group ls")
    lines = p.stdout.splitlines()
    check_eq(lines[0].split(), ["NAME", "OWNER", "MODE", "MEMBERS"], "header")
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    check_eq(rows.get("devs"), ["admin", "0750", "-"], f"devs row: {p.stdout!r}")
    check_eq(rows.get("team"), ["admin", "0750", "alice,", "bob"], f"team row: {p.stdout!r}")
    p = warren(["group", "ls", "--json"])
    check_ok(p, "group ls --json")
    check_eq(json.loads(p.stdout), api("GET", "/api/v1/groups").json, "ls --json is the API's")

    check_ok(warren(["group", "member", "add", "devs", "carol"]), "member add")
    check_eq(api("GET", "/api/v1/groups/devs").json["members"], ["carol"], "a member")
    p = warren(["group", "member", "add", "devs", "carol"])
    check_one_line_error(p, 1, "already a member (conflict)", "twice")
    p = warren(["group", "member", "add", "devs", "nobody"])
    check_one_line_error(p, 1, "no such user (not_found)", "an unknown user")
    p = warren(["group", "member", "add", "devs", "bob"], "alice")
    check_one_line_error(p, 1, "(forbidden)", "a standard user (rights first)")
    p = warren(["group", "member", "add", "team", "carol"], "alice")
    check_one_line_error(p, 1, "you may not do this to this group (forbidden)", "a member")

    p = warren(["group", "show", "devs"], "carol")
    check_ok(p, "group show (a member)")
    f = fields(p.stdout)
    check_eq((f["name"], f["owner"], f["group"], f["mode"], f["members"]),
             ("devs", "admin", "devs", "0750", "carol"), f"show: {p.stdout!r}")
    check_eq(f["created"], g["created_at"], "created")
    p = warren(["group", "show", "devs", "--json"])
    check_ok(p, "group show --json")
    check_eq(json.loads(p.stdout), api("GET", "/api/v1/groups/devs").json, "show --json")
    p = warren(["group", "ls"], "carol")
    names = [line.split()[0] for line in p.stdout.splitlines()[1:]]
    check_eq(names, ["devs"], "carol sees only her group")

    check_ok(warren(["group", "member", "rm", "devs", "carol"]), "member rm")
    check_eq(api("GET", "/api/v1/groups/devs").json["members"], [], "removed")
    p = warren(["group", "member", "rm", "devs", "carol"])
    check_one_line_error(p, 1, "no such user in the group (not_found)", "rm twice")
    p = warren(["group", "add", "devs"])
    check_one_line_error(p, 1, "the group 'devs' exists (conflict)", "add twice")
    p = warren(["group", "add", "Bad Name"])
    check_one_line_error(p, 1, "(invalid)", "a bad name")
    p = warren(["group", "add", "mine"], "alice")
    check_one_line_error(p, 1, "(forbidden)", "a standard user")
    check_eq(api("GET", "/api/v1/groups/mine").status, 404, "not made")
    check_ok(warren(["group", "rm", "devs"]), "group rm")
    check_eq(api("GET", "/api/v1/groups/devs").status, 404, "gone")
    p = warren(["group", "show", "devs"])
    check_one_line_error(p, 1, "no such group (not_found)", "show a removed group")


# ---- sessions ----

@test
def test_session_commands():
    n = node()
    tok("admin")
    t1 = n.login("carol", "password-carol")
    t2 = n.login("carol", "password-carol")
    listed = n.request("GET", "/api/v1/sessions", token=t1).json["sessions"]
    ids = {s["id"]: s for s in listed}
    current = [s["id"] for s in listed if s["current"]]
    check_eq(len(current), 1, "the API marks one")

    p = subprocess.run([WARREN, "session", "ls"], capture_output=True, text=True, timeout=60,
                       env=env(t1))
    check_ok(p, "session ls")
    lines = p.stdout.splitlines()
    check_eq(lines[0].split(), ["ID", "CREATED", "EXPIRES", "CURRENT"], "header")
    rows = [line.split() for line in lines[1:]]
    check_eq(sorted(int(r[0]) for r in rows), sorted(ids), "one line per session")
    for r in rows:
        s = ids[int(r[0])]
        check_eq(r[1:3], [s["created_at"], s["expires_at"]], "times")
        check_eq(r[3:] == ["*"], s["current"], f"current mark of {r}")
    p = subprocess.run([WARREN, "session", "ls", "--json"], capture_output=True, text=True,
                       timeout=60, env=env(t1))
    check_ok(p, "session ls --json")
    check_eq(json.loads(p.stdout)["sessions"], listed, "--json is the API's")

    t2_id = [s["id"] for s in n.request("GET", "/api/v1/sessions", token=t2).json["sessions"]
             if s["current"]][0]
    p = subprocess.run([WARREN, "session", "revoke", str(t2_id)], capture_output=True, text=True,
                       timeout=60, env=env(t1))
    check_ok(p, "session revoke")
    check_eq(n.request("GET", "/api/v1/whoami", token=t2).status, 401, "t2 is revoked")
    check_eq(n.request("GET", "/api/v1/whoami", token=t1).status, 200, "t1 is not")
    p = subprocess.run([WARREN, "session", "revoke", str(t2_id)], capture_output=True, text=True,
                       timeout=60, env=env(t1))
    check_one_line_error(p, 1, "no such session (not_found)", "revoke twice")
    alice_id = n.request("GET", "/api/v1/sessions", token=tok("alice")).json["sessions"][0]["id"]
    p = subprocess.run([WARREN, "session", "revoke", str(alice_id)], capture_output=True,
                       text=True, timeout=60, env=env(t1))
    check_one_line_error(p, 1, "no such session (not_found)", "another user's session")
    check_eq(api("GET", "/api/v1/whoami", "alice").status, 200, "alice still logged in")


# ---- the audit log ----

def all_records():
    records, after = [], 0
    while True:
        r = api("GET", f"/api/v1/audit?after={after}&limit=1000")
        check_eq(r.status, 200, "audit page")
        records += r.json["records"]
        if not r.json["next_after"]:
            return records
        after = r.json["next_after"]


def record_ids(stdout):
    return [int(line.split()[0]) for line in stdout.splitlines()]


@test
def test_audit():
    jid = new_job("alice")
    check_ok(warren(["chmod", "0500", "job", jid], "alice"), "something to audit")
    records = all_records()
    check(len(records) > 5, f"records: {len(records)}")
    p = warren(["audit"])
    check_ok(p, "audit")
    check_eq(record_ids(p.stdout), [x["id"] for x in records], "one line per record, in order")
    last = [line for line in p.stdout.splitlines()
            if int(line.split()[0]) == records[-1]["id"]][0]
    x = records[-1]
    check_eq(x["event"], "acl_change", "the last record")
    check_eq(last.split()[1:6], [x["at"], "alice", "acl_change", f"job:{jid}", "127.0.0.1"],
             f"its fields: {last!r}")
    check(last.endswith(x["detail"]), f"its detail: {last!r}")

    p = warren(["audit", "--limit", "2"])
    check_ok(p, "audit --limit 2")
    check_eq(record_ids(p.stdout), [x["id"] for x in records[:2]], "the first two")
    after = records[2]["id"]
    p = warren(["audit", "--after", str(after), "--limit", "3"])
    check_ok(p, "audit --after --limit")
    check_eq(record_ids(p.stdout), [x["id"] for x in records if x["id"] > after][:3], "a page")
    p = warren(["audit", "--json", "--after", str(after), "--limit", "3"])
    check_ok(p, "audit --json")
    got = json.loads(p.stdout)
    check_eq(got["records"], [x for x in records if x["id"] > after][:3], "--json records")
    check_eq(got["next_after"], got["records"][-1]["id"], "--json next_after")
    p = warren(["audit", "--json"])
    got = json.loads(p.stdout)
    check_eq((got["records"], got["next_after"]), (all_records()[:len(got["records"])], None),
             "--json, everything")

    p = warren(["audit"], "alice")
    check_one_line_error(p, 1, "you may not do this to this audit log (forbidden)", "non-admin")
    p = warren(["audit", "--after", "99999999"])
    check_ok(p, "after the end")
    check_eq(p.stdout, "", "nothing after the end")


HOSTILE = "x\x1b[2J\x1b]0;pwned\x07\u009b31m\u202eyz\\x1b\x7f"


@test
def test_audit_escapes_hostile_text():
    """A failed login records the user name it was given, raw; audit shows it escaped."""
    n = node()
    tok("admin")
    r = n.request("POST", "/api/v1/login", {"user": HOSTILE, "password": "whatever-password"})
    check_eq(r.status, 401, "the login fails")
    raw = [x for x in all_records() if x["event"] == "login_failed" and x["object"] == HOSTILE]
    check_eq(len(raw), 1, "the store kept it raw")

    p = subprocess.run([WARREN, "audit"], capture_output=True, timeout=60, env=env(tok("admin")))
    check_eq(p.returncode, 0, f"audit: {p.stderr!r}")
    out = p.stdout.decode("utf-8")
    for ch in out:
        o = ord(ch)
        check(ch == "\n" or not (o < 0x20 or 0x7f <= o <= 0x9f or 0x2028 <= o <= 0x202e),
              f"a control character U+{o:04X} reached the terminal: {out[-300:]!r}")
    line = [l for l in out.splitlines() if int(l.split()[0]) == raw[0]["id"]][0]
    want = "x\\x1b[2J\\x1b]0;pwned\\x07\\u009b31m\\u202eyz\\\\x1b\\x7f"
    check(f"  {want}  " in line, f"escaped: {line!r}, want {want!r}")

    p = subprocess.run([WARREN, "audit", "--json"], capture_output=True, timeout=60,
                       env=env(tok("admin")))
    check_eq(p.returncode, 0, f"audit --json: {p.stderr!r}")
    check(all(b < 0x7f and (b >= 0x20 or b == 0x0a) for b in p.stdout),
          "--json is printable ASCII")
    got = [x for x in json.loads(p.stdout)["records"] if x["id"] == raw[0]["id"]]
    check_eq(got, raw, "--json keeps the text exact")


if __name__ == "__main__":
    try:
        run_all()
    finally:
        if _node:
            _node.close()
