#!/usr/bin/env python3
"""Authorization end to end: a matrix of actions × callers × modes on the real node, the
expected outcome computed from the rule (rights first, then the one class's bits), the observed
one from the API; groups, owner/group/mode changes, sessions and the audit log."""

import http.client
import os

from harness import check, check_eq, run_all, test
from nodeutil import Node

_node = None
_tokens = {}


def node():
    global _node
    if _node is None:
        _node = Node(workers=2)
    return _node


def tok(who):
    """Tokens of: admin, alice (owner), bob (in group team), carol (other), worker."""
    n = node()
    if not _tokens:
        _tokens["admin"] = n.login()
        a = _tokens["admin"]
        for name in ("alice", "bob", "carol"):
            _tokens[name] = n.add_user(a, name, "password-" + name)
        _tokens["worker"] = n.add_user(a, "worker1", "password-worker", rights="worker_user")
        r = n.request("POST", "/api/v1/groups", {"name": "team"}, token=a)
        check_eq(r.status, 201, f"group: {r}")
        for m in ("alice", "bob"):
            r = n.request("PUT", f"/api/v1/groups/team/members/{m}", token=a)
            check_eq(r.status, 204, f"member {m}: {r}")
    return _tokens.get(who)


CLASS_SHIFT = {"alice": 6, "bob": 3, "carol": 0}


def expected(who, need, mode, allowed):
    """The rule of src/auth/access.h, for an object owned by alice, group team."""
    if who == "anonymous":
        return 401
    if who == "worker":
        return 403  # its rights allow none of these actions
    if who == "admin":
        return allowed
    bits = (mode >> CLASS_SHIFT[who]) & 7
    if bits & need:
        return allowed
    return 403 if bits & 4 else 404


def modes():
    """700, 750, 755 and every mode one bit away from them."""
    out = set()
    for base in (0o700, 0o750, 0o755):
        out.add(base)
        for bit in range(9):
            out.add(base ^ (1 << bit))
    return sorted(out)


def events_status(n, t, jid):
    c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=30)
    c.request("GET", f"/api/v1/jobs/{jid}/events",
              headers={"Authorization": "Bearer " + t} if t else {})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


@test
def test_job_matrix():
    n = node()
    a = tok("admin")
    job = n.submit(tok("alice"), {"app": "sh", "source": "echo hi"})
    jid = job["id"]
    r = n.request("PATCH", f"/api/v1/jobs/{jid}/acl", {"group": "team"}, token=a)
    check_eq(r.status, 200, f"chgrp by admin: {r}")
    who_all = ["admin", "alice", "bob", "carol", "worker", "anonymous"]
    checked = 0
    for mode in modes():
        r = n.request("PATCH", f"/api/v1/jobs/{jid}/acl", {"mode": f"{mode:04o}"}, token=a)
        check_eq((r.status, r.json["mode"]), (200, f"{mode:04o}"), f"admin sets {mode:o}")
        for who in who_all:
            t = tok(who) if who != "anonymous" else None
            # read: the job, its events; write: cancel (the job has ended: allowed is 409)
            got = n.request("GET", f"/api/v1/jobs/{jid}", token=t).status
            check_eq(got, expected(who, 4, mode, 200), f"{who} GET job at {mode:04o}")
            got = events_status(n, t, jid)
            check_eq(got, expected(who, 4, mode, 200), f"{who} GET events at {mode:04o}")
            got = n.request("DELETE", f"/api/v1/jobs/{jid}", token=t).status
            check_eq(got, expected(who, 2, mode, 409), f"{who} cancel at {mode:04o}")
            checked += 3
    check(checked >= 25 * 6 * 3, f"{checked} cases")


@test
def test_app_matrix():
    n = node()
    a = tok("admin")
    spec = {"name": "alice-app", "source_file": "main.sh",
            "run": {"argv": ["/bin/sh", "{source}"]}, "limits": {"memory": "64M", "pids": 16}}
    r = n.request("POST", "/api/v1/apps", spec, token=tok("alice"))
    check_eq(r.status, 201, f"alice's app: {r}")
    r = n.request("PATCH", "/api/v1/apps/alice-app/acl", {"group": "team"}, token=a)
    check_eq(r.status, 200, f"chgrp: {r}")
    for mode in modes():
        r = n.request("PATCH", "/api/v1/apps/alice-app/acl", {"mode": f"{mode:04o}"}, token=a)
        check_eq(r.status, 200, f"admin sets {mode:o}")
        for who in ["admin", "alice", "bob", "carol", "worker", "anonymous"]:
            t = tok(who) if who != "anonymous" else None
            got = n.request("GET", "/api/v1/apps/alice-app", token=t).status
            check_eq(got, expected(who, 4, mode, 200), f"{who} GET app at {mode:04o}")
            got = n.request("PUT", "/api/v1/apps/alice-app", spec, token=t).status
            check_eq(got, expected(who, 2, mode, 200), f"{who} PUT app at {mode:04o}")
            got = n.request("POST", "/api/v1/jobs", {"app": "alice-app", "source": "true"},
                            token=t).status
            # Inserting a job needs standard rights; then the app's execute bit.
            want = 403 if who == "worker" else expected(who, 1, mode, 201)
            check_eq(got, want, f"{who} runs the app at {mode:04o}")


def data_upload(t, name, body=b"data"):
    n = node()
    c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=60)
    h = {"Content-Type": "application/octet-stream"}
    if t:
        h["Authorization"] = "Bearer " + t
    c.request("POST", f"/api/v1/data?name={name}", body=body, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def expected_acl(who, mode):
    """chmod to the same mode: the owner and administrators; others as for a read."""
    if who == "anonymous":
        return 401
    if who == "worker":
        return 403
    if who in ("admin", "alice"):
        return 200
    return 403 if (mode >> CLASS_SHIFT[who]) & 4 else 404


@test
def test_data_matrix():
    """get, content, use as a job's input, acl and delete × callers × modes, for data owned by
    alice in group team; the list shows exactly what a caller may read."""
    import json

    n = node()
    a = tok("admin")
    status, body = data_upload(tok("alice"), "matrix.txt")
    check_eq(status, 201, f"alice's data: {body!r}")
    did = json.loads(body)["id"]
    r = n.request("PATCH", f"/api/v1/data/{did}/acl", {"group": "team"}, token=a)
    check_eq(r.status, 200, f"chgrp: {r}")
    check_eq(data_upload(tok("worker"), "w")[0], 403, "a worker inserts no data")
    check_eq(data_upload(None, "anon")[0], 401, "anonymous")
    checked = 0
    for mode in modes():
        r = n.request("PATCH", f"/api/v1/data/{did}/acl", {"mode": f"{mode:04o}"}, token=a)
        check_eq((r.status, r.json["mode"]), (200, f"{mode:04o}"), f"admin sets {mode:o}")
        for who in ["admin", "alice", "bob", "carol", "worker", "anonymous"]:
            t = tok(who) if who != "anonymous" else None
            got = n.request("GET", f"/api/v1/data/{did}", token=t).status
            check_eq(got, expected(who, 4, mode, 200), f"{who} GET data at {mode:04o}")
            got = n.request("GET", f"/api/v1/data/{did}/content", token=t).status
            check_eq(got, expected(who, 4, mode, 200), f"{who} GET content at {mode:04o}")
            got = n.request("POST", "/api/v1/jobs",
                            {"app": "sh", "source": "true", "inputs": [{"data": did, "path": "in"}]},
                            token=t).status
            want = 403 if who == "worker" else expected(who, 1, mode, 201)
            check_eq(got, want, f"{who} uses the data as input at {mode:04o}")
            got = n.request("PATCH", f"/api/v1/data/{did}/acl", {"mode": f"{mode:04o}"},
                            token=t).status
            check_eq(got, expected_acl(who, mode), f"{who} chmod (same mode) at {mode:04o}")
            # the list: exactly what one may read
            r = n.request("GET", "/api/v1/data?limit=1000", token=t)
            if who in ("worker", "anonymous"):
                check_eq(r.status, 403 if who == "worker" else 401, f"{who} lists")
            else:
                listed = did in {d["id"] for d in r.json["data"]}
                check_eq(listed, expected(who, 4, mode, 200) == 200,
                         f"{who} lists it at {mode:04o}")
            # delete: on a copy with the same acl, so that the matrix goes on
            want = expected(who, 2, mode, 204)
            victim = did
            if want == 204:
                status, body = data_upload(tok("alice"), "victim.txt")
                check_eq(status, 201, "a copy")
                victim = json.loads(body)["id"]
                r = n.request("PATCH", f"/api/v1/data/{victim}/acl",
                              {"group": "team", "mode": f"{mode:04o}"}, token=a)
                check_eq(r.status, 200, "the copy's acl")
            got = n.request("DELETE", f"/api/v1/data/{victim}", token=t).status
            check_eq(got, want, f"{who} deletes at {mode:04o}")
            checked += 6
    check(checked >= 25 * 6 * 6, f"{checked} cases")


@test
def test_mode_changes_by_owner():
    n = node()
    alice, carol = tok("alice"), tok("carol")
    jid = n.submit(alice, {"app": "sh", "source": "true"})["id"]
    path = f"/api/v1/jobs/{jid}/acl"
    r = n.request("PATCH", path, {"mode": "0755"}, token=alice)
    check_eq(r.status, 403, "the owner may not raise a mode")
    r = n.request("PATCH", path, {"mode": "0500"}, token=alice)
    check_eq((r.status, r.json["mode"]), (200, "0500"), "the owner may lower it")
    r = n.request("PATCH", path, {"mode": "0700"}, token=alice)
    check_eq(r.status, 403, "and not raise it back")
    check_eq(n.request("PATCH", path, {"mode": "0400"}, token=carol).status, 404,
             "another user cannot see it")
    check_eq(n.request("PATCH", path, {"owner": "carol"}, token=alice).status, 403,
             "chown is an administrator's")
    r = n.request("PATCH", path, {"owner": "carol", "mode": "0700"}, token=tok("admin"))
    check_eq((r.status, r.json["owner"], r.json["mode"]), (200, "carol", "0700"), "admin")
    check_eq(n.request("GET", f"/api/v1/jobs/{jid}", token=carol).status, 200, "carol owns it")
    check_eq(n.request("GET", f"/api/v1/jobs/{jid}", token=alice).status, 404, "alice no more")
    for bad in ({"mode": "0800"}, {"mode": "abc"}, {"mode": 755}, {}, {"group": 5},
                {"bogus": 1}):
        r = n.request("PATCH", path, bad, token=tok("admin"))
        check_eq(r.status, 400, f"bad body {bad}")
        r.error_code()


@test
def test_groups():
    n = node()
    a, alice, carol = tok("admin"), tok("alice"), tok("carol")
    check_eq(n.request("POST", "/api/v1/groups", {"name": "x"}, token=alice).status, 403,
             "only administrators make groups")
    r = n.request("GET", "/api/v1/groups/team", token=alice)
    check_eq(r.status, 200, "a member reads its group")
    check_eq(sorted(r.json["members"]), ["alice", "bob"], "members")
    check_eq(n.request("GET", "/api/v1/groups/team", token=carol).status, 404,
             "a non-member does not see it")
    names = [g["name"] for g in n.request("GET", "/api/v1/groups", token=carol).json["groups"]]
    check("team" not in names, "nor in the list")
    check_eq(n.request("PUT", "/api/v1/groups/team/members/carol", token=alice).status, 403,
             "members are set by administrators")
    for bad, status in (({"name": "Bad Name"}, 400), ({}, 400), ({"name": 5}, 400),
                        ({"name": "x", "extra": 1}, 400), ({"name": "team"}, 409)):
        r = n.request("POST", "/api/v1/groups", bad, token=a)
        check_eq(r.status, status, f"bad group {bad}")
        r.error_code()
    r = n.request("POST", "/api/v1/groups", {"name": "temp"}, token=a)
    check_eq(r.status, 201, "create")
    check_eq(n.request("PUT", "/api/v1/groups/temp/members/carol", token=a).status, 204, "add")
    check_eq(n.request("PUT", "/api/v1/groups/temp/members/carol", token=a).status, 409, "twice")
    check_eq(n.request("PUT", "/api/v1/groups/temp/members/nobody", token=a).status, 404,
             "unknown user")
    check_eq(n.request("DELETE", "/api/v1/groups/temp/members/carol", token=a).status, 204,
             "remove")
    check_eq(n.request("DELETE", "/api/v1/groups/temp", token=a).status, 204, "delete")
    check_eq(n.request("GET", "/api/v1/groups/temp", token=a).status, 404, "gone")


@test
def test_own_sessions():
    n = node()
    t1 = n.login("carol", "password-carol")
    t2 = n.login("carol", "password-carol")
    r = n.request("GET", "/api/v1/sessions", token=t1)
    check_eq(r.status, 200, "list")
    current = [s for s in r.json["sessions"] if s["current"]]
    others = [s for s in r.json["sessions"] if not s["current"]]
    check_eq(len(current), 1, "one current session")
    check(len(others) >= 1, "the other login")
    alice_sessions = n.request("GET", "/api/v1/sessions", token=tok("alice")).json["sessions"]
    r = n.request("DELETE", f"/api/v1/sessions/{alice_sessions[0]['id']}", token=t1)
    check_eq(r.status, 404, "another user's session is not found")
    # revoke every other session of carol's, then t2 is dead and t1 alive
    for s in others:
        check_eq(n.request("DELETE", f"/api/v1/sessions/{s['id']}", token=t1).status, 204,
                 "revoke")
    check_eq(n.request("GET", "/api/v1/whoami", token=t2).status, 401, "revoked")
    for bad in ("abc", "0", "-1", "99999999999999999999"):
        check_eq(n.request("DELETE", f"/api/v1/sessions/{bad}", token=t1).status, 404,
                 f"session id {bad!r}")
    check_eq(n.request("GET", "/api/v1/whoami", token=t1).status, 200, "still in")
    _tokens["carol"] = t1


@test
def test_audit_log():
    n = node()
    a = tok("admin")
    n.request("POST", "/api/v1/login", {"user": "alice", "password": "not-her-password"})
    n.request("PATCH", "/api/v1/users/alice", {"rights": "administrator"}, token=tok("alice"))
    check_eq(n.request("GET", "/api/v1/audit", token=tok("alice")).status, 403,
             "the audit log is an administrator's")
    for bad in ("after=x", "after=-1", "limit=0", "limit=1001"):
        r = n.request("GET", "/api/v1/audit?" + bad, token=a)
        check_eq(r.status, 400, bad)
        r.error_code()
    records, after = [], 0
    while True:
        r = n.request("GET", f"/api/v1/audit?after={after}&limit=50", token=a)
        check_eq(r.status, 200, "audit page")
        records += r.json["records"]
        if not r.json["next_after"]:
            break
        after = r.json["next_after"]
    events = [x["event"] for x in records]
    for e in ("login", "login_failed", "user_create", "group_create", "group_member_add",
              "acl_change", "denied"):
        check(e in events, f"{e} audited: {sorted(set(events))}")
    failed = [x for x in records if x["event"] == "login_failed" and x["object"] == "alice"]
    check(failed and failed[-1]["peer"] == "127.0.0.1" and failed[-1]["actor"] is None,
          f"who and from where: {failed[-1:]}")
    check_eq([x["id"] for x in records], sorted(x["id"] for x in records), "in order")
    denied = [x for x in records if x["event"] == "denied" and x["actor"] == "alice"]
    check(denied, "alice's refused rights change is there")


if __name__ == "__main__":
    try:
        run_all()
    finally:
        if _node:
            _node.close()
