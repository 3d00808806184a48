#!/usr/bin/env python3
"""`warren node` end to end: the real node on loopback, the real store, real sandboxes."""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import threading
import time

from harness import check, check_eq, run_all, test, wait_for, TestFailure
from nodeutil import Node

_node = None


def node():
    global _node
    if _node is None:
        _node = Node()
    return _node


def admin():
    return node().login()


_users = {}


def user(name):
    if name not in _users:
        _users[name] = node().add_user(admin(), name)
    return _users[name]


def job_count(token):
    r = node().request("GET", "/api/v1/jobs?limit=1000", token=token)
    check_eq(r.status, 200, "list status")
    return len(r.json["jobs"])


# ---- start-up, health, login ----

@test
def test_first_start_admin_password():
    n = node()
    st = os.stat(n.admin_password_path())
    check_eq(stat.S_IMODE(st.st_mode), 0o600, "admin.password mode")
    check(len(n.admin_password) >= 20, "a long random password")
    check(n.admin_password.encode() in n.stderr(), "the password is printed once")
    r = n.request("GET", "/healthz")
    check_eq(r.status, 200, "healthz")
    check_eq(r.json["status"], "ok", "healthz body")


@test
def test_login_and_whoami():
    n = node()
    r = n.request("POST", "/api/v1/login", {"user": "admin", "password": n.admin_password})
    check_eq(r.status, 200, "login")
    tok = r.json["token"]
    check(tok.startswith("wrn_") and len(tok) == 47, f"token format {tok!r}")
    check(r.json["expires_at"].endswith("Z"), "expires_at is RFC 3339 UTC")
    r = n.request("GET", "/api/v1/whoami", token=tok)
    check_eq(r.status, 200, "whoami")
    check_eq((r.json["name"], r.json["rights"]), ("admin", "administrator"), "whoami body")
    check("password" not in r.body.decode() and "argon2" not in r.body.decode(), "no hash")


@test
def test_login_refusals():
    n = node()
    for body in ({"user": "admin", "password": "wrong-password"},
                 {"user": "nobody-here", "password": "whatever-it-is"}):
        r = n.request("POST", "/api/v1/login", body)
        check_eq(r.status, 401, f"login {body['user']}")
        check_eq(r.error_code(), "unauthorized", "code")


@test
def test_missing_and_bad_tokens():
    n = node()
    for tok in (None, "wrn_" + "A" * 43, "nonsense", "wrn_" + "A" * 42 + "\u00e9"):
        h = {"Authorization": "Bearer " + tok} if tok else {}
        for method, path in (("GET", "/api/v1/jobs"), ("GET", "/api/v1/apps"),
                             ("POST", "/api/v1/jobs"), ("GET", "/api/v1/whoami")):
            r = n.request(method, path, headers=h, raw=b"{}" if method == "POST" else None)
            check_eq(r.status, 401, f"{method} {path} with {tok!r}")
            check_eq(r.error_code(), "unauthorized", "code")
    r = n.request("GET", "/api/v1/jobs", headers={"Authorization": "Basic YTpi"})
    check_eq(r.status, 401, "basic auth")


@test
def test_logout_revokes_the_token():
    n = node()
    tok = n.login()
    check_eq(n.request("POST", "/api/v1/logout", token=tok).status, 204, "logout")
    check_eq(n.request("GET", "/api/v1/whoami", token=tok).status, 401, "revoked token")


@test
def test_keygen():
    import subprocess
    import stat
    import tempfile
    from harness import WARREN
    d = tempfile.mkdtemp(prefix="warren-keygen-")
    try:
        path = os.path.join(d, "k")
        p = subprocess.run([WARREN, "keygen", path], capture_output=True, text=True, timeout=30)
        check_eq(p.returncode, 0, f"keygen: {p.stderr!r}")
        with open(path) as f:
            public = f.read()
        check_eq(public, p.stdout, "the public file holds the printed key")
        check_eq(len(public.strip()), 40, "a Z85 key")
        check_eq(stat.S_IMODE(os.stat(path + ".secret").st_mode), 0o600, "the secret is 0600")
        with open(path + ".secret") as f:
            secret = f.read()
        check(secret.startswith("public " + public.strip() + "\nsecret "), "the pair")
        # never overwritten; bad usage
        for args, code, needle in (([path], 1, "never overwritten"),
                                   ([], 2, "Usage"),
                                   ([path, "extra"], 2, "Usage"),
                                   ([os.path.join(d, "missing", "k")], 1, "Failed")):
            p = subprocess.run([WARREN, "keygen"] + args, capture_output=True, text=True,
                               timeout=30)
            check_eq(p.returncode, code, f"keygen {args}: exit code")
            check(needle in p.stderr, f"keygen {args}: {p.stderr!r}")
        with open(path + ".secret") as f:
            check_eq(f.read(), secret, "the secret is unchanged")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@test
def test_node_options_and_config_file():
    import subprocess
    import tempfile
    from harness import WARREN
    d = tempfile.mkdtemp(prefix="warren-node-opts-")
    try:
        for args, needle in ((["--workers", "0"], "--workers"),
                             (["--listen", "localhost:80"], "--listen"),
                             (["--bogus"], "unknown option"),
                             (["--max-body", "1T"], "--max-body"),
                             (["extra"], "unexpected argument"),
                             (["--role", "boss"], "--role"),
                             (["--role", "worker"], "--master"),
                             (["--role", "worker", "--master", "10.0.0.1:7781",
                               "--master-key", "x" * 40], "--master"),
                             (["--role", "worker", "--master", "tcp://127.0.0.1:7781",
                               "--master-key", "not-a-key"], "--master-key"),
                             (["--master", "tcp://127.0.0.1:7781"], "--role worker"),
                             (["--worker-listen", "tcp://0.0.0.0:7781"], "--role master"),
                             (["--role", "master", "--heartbeat-ms", "1000",
                               "--lease-ms", "1500"], "--lease-ms"),
                             (["--max-attempts", "0"], "--max-attempts"),
                             (["--role", "worker", "--master", "tcp://127.0.0.1:7781",
                               "--master-key", "x" * 40, "--name", "-bad"], "--name")):
            p = subprocess.run([WARREN, "node", "--state", d] + args, capture_output=True,
                               text=True, timeout=30)
            check_eq(p.returncode, 2, f"{args}: exit code")
            lines = p.stderr.strip().splitlines()
            check(len(lines) == 1 and needle in lines[0], f"{args}: one line: {p.stderr!r}")
        cfg = os.path.join(d, "node.json")
        with open(cfg, "w") as f:
            json.dump({"workers": 1, "login-max-per-user": 2, "bogus": 1}, f)
        p = subprocess.run([WARREN, "node", "--state", d, "--config", cfg], capture_output=True,
                           text=True, timeout=30)
        check_eq(p.returncode, 2, "unknown key in the config file")
        check("bogus" in p.stderr, f"named: {p.stderr!r}")
        with open(cfg, "w") as f:
            json.dump({"workers": 1, "login-max-per-user": 2}, f)
        n = Node("--config", cfg, workers=1)
        try:
            n.add_user(n.login(), "cfg-user", "right-password")
            for _ in range(2):
                n.request("POST", "/api/v1/login", {"user": "cfg-user", "password": "wrong-pass"})
            r = n.request("POST", "/api/v1/login", {"user": "cfg-user", "password": "right-password"})
            check_eq(r.status, 429, "the config file's login-max-per-user is in force")
        finally:
            n.close()
        p = subprocess.run([WARREN, "node", "--help"], capture_output=True, text=True, timeout=30)
        check_eq(p.returncode, 0, "--help")
        for opt in ("--state", "--listen", "--workers", "--config", "--token-ttl", "--timeout"):
            check(opt in p.stdout, f"--help documents {opt}")
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


# ---- users ----

@test
def test_users_admin_only():
    n = node()
    a = admin()
    alice = user("alice")
    r = n.request("POST", "/api/v1/users", {"name": "mallory", "password": "12345678x"},
                  token=alice)
    check_eq(r.status, 403, "standard user creates a user")
    check_eq(n.request("GET", "/api/v1/users", token=alice).status, 403, "standard user lists")
    r = n.request("GET", "/api/v1/users", token=a)
    check_eq(r.status, 200, "admin lists")
    check({"admin", "alice"} <= {u["name"] for u in r.json["users"]}, "users listed")
    check_eq(n.request("GET", "/api/v1/users/alice", token=alice).status, 200, "self")
    check_eq(n.request("GET", "/api/v1/users/admin", token=alice).status, 404,
             "another user is invisible")
    r = n.request("POST", "/api/v1/users", {"name": "alice", "password": "12345678x"}, token=a)
    check_eq((r.status, r.error_code()), (409, "conflict"), "duplicate user")
    for bad in ({"name": "Bad Name", "password": "12345678x"},
                {"name": "shorty", "password": "short"},
                {"name": "rightsy", "password": "12345678x", "rights": "root"},
                {"name": "extra", "password": "12345678x", "admin": True}):
        r = n.request("POST", "/api/v1/users", bad, token=a)
        check_eq(r.status, 400, f"bad user {bad}")
        r.error_code()


@test
def test_password_change_and_delete():
    n = node()
    a = admin()
    tok = n.add_user(a, "bob", "first-password")
    r = n.request("PATCH", "/api/v1/users/bob", {"password": "second-password"}, token=tok)
    check_eq(r.status, 200, "own password change")
    check_eq(n.request("GET", "/api/v1/whoami", token=tok).status, 401,
             "old sessions revoked by the new password")
    tok = n.login("bob", "second-password")
    r = n.request("PATCH", "/api/v1/users/bob", {"rights": "administrator"}, token=tok)
    check_eq(r.status, 403, "self promotion")
    check_eq(n.request("DELETE", "/api/v1/users/bob", token=tok).status, 403, "self delete")
    check_eq(n.request("DELETE", "/api/v1/users/bob", token=a).status, 204, "admin deletes")
    check_eq(n.request("GET", "/api/v1/whoami", token=tok).status, 401, "deleted user's token")


# ---- apps ----

@test
def test_ready_made_apps():
    n = node()
    r = n.request("GET", "/api/v1/apps", token=user("alice"))
    check_eq(r.status, 200, "apps list")
    names = {a["name"] for a in r.json["apps"]}
    check({"sh", "python3", "c", "cpp", "node"} <= names, f"ready-made apps: {names}")
    r = n.request("GET", "/api/v1/apps/c", token=user("alice"))
    check_eq(r.status, 200, "get app")
    check_eq((r.json["owner"], r.json["mode"]), ("admin", "0755"), "public app")
    check(r.json["build"]["argv"][0] == "gcc", "c builds with gcc")


@test
def test_private_app_of_a_user():
    n = node()
    alice, carol = user("alice"), user("carol")
    spec = {"name": "alice-sh", "description": "mine", "source_file": "run.sh",
            "run": {"argv": ["/bin/sh", "{source}", "{args}"]}}
    r = n.request("POST", "/api/v1/apps", spec, token=alice)
    check_eq(r.status, 201, f"private app: {r}")
    check_eq((r.json["mode"], r.json["owner"]), ("0700", "alice"), "private by default")
    check_eq(n.request("GET", "/api/v1/apps/alice-sh", token=carol).status, 404,
             "invisible to others")
    r = n.request("POST", "/api/v1/jobs", {"app": "alice-sh", "source": "echo hi"}, token=carol)
    check_eq(r.status, 404, "others cannot run it")
    job = n.submit(alice, {"app": "alice-sh", "source": "echo hi $1", "args": ["there"]})
    check_eq(job["result"]["run"]["stdout"]["text"], "hi there\n", "own app runs")
    check_eq(n.request("DELETE", "/api/v1/apps/sh", token=alice).status, 403,
             "a public app is read-only to its readers")
    spec["description"] = "changed"
    r = n.request("PUT", "/api/v1/apps/alice-sh", spec, token=alice)
    check_eq((r.status, r.json.get("description")), (200, "changed"), "replace")
    check_eq(n.request("DELETE", "/api/v1/apps/alice-sh", token=alice).status, 204, "delete")


@test
def test_bad_app_specs():
    n = node()
    a = admin()
    for bad in ({"name": "x"},
                {"name": "x", "run": {"argv": []}, "source_file": "a"},
                {"name": "x", "run": {"argv": ["sh"]}, "source_file": "../a"},
                {"name": "x", "run": {"argv": ["sh"]}, "source_file": "a", "rootfs": "rel"},
                {"name": "x", "run": {"argv": ["sh"]}, "source_file": "a", "bogus": 1}):
        r = n.request("POST", "/api/v1/apps", bad, token=a)
        check(r.status in (400, 422), f"bad app {bad}: {r}")
        r.error_code()


# ---- jobs ----

@test
def test_sh_job_with_wait():
    job = node().submit(user("alice"), {"app": "sh", "source": "echo 1; echo err >&2; exit 3"})
    check_eq(job["state"], "finished", "state")
    res = job["result"]
    check_eq(res["exit_code"], 3, "exit code")
    check_eq(res["run"]["report"]["status"], "exited", "status")
    check_eq(res["run"]["stdout"]["text"], "1\n", "stdout")
    check_eq(res["run"]["stderr"]["text"], "err\n", "stderr")
    check_eq(res["run"]["stdout"]["sha256"], hashlib.sha256(b"1\n").hexdigest(), "digest")
    check_eq(job["owner"], "alice", "owner")
    check_eq(job["mode"], "0700", "jobs are private")
    check_eq(job["attempts"], 1, "attempts")
    check_eq(job["exit_code"], 3, "the job's exit code")
    listed = [j for j in node().request("GET", "/api/v1/jobs?state=finished",
                                        token=user("alice")).json["jobs"] if j["id"] == job["id"]]
    check_eq(listed[0]["exit_code"], 3, "exit code in the list")
    check("result" not in listed[0], "lists carry no results")


@test
def test_python_stdin_args_and_files():
    job = node().submit(user("alice"), {
        "app": "python3",
        "files": {"main.py": "import sys, helper\nprint(helper.f(sys.argv[1:], sys.stdin.read()))",
                  "helper.py": "def f(a, s): return '|'.join(a) + ':' + s.strip()"},
        "args": ["a", "b c"], "stdin": "from stdin\n"})
    check_eq(job["result"]["run"]["stdout"]["text"], "a|b c:from stdin\n", "python output")


@test
def test_c_and_cpp_build_then_run():
    alice = user("alice")
    job = node().submit(alice, {"app": "c", "source":
                                "#include <stdio.h>\nint main(void){puts(\"c ok\");return 0;}"})
    res = job["result"]
    check_eq(res["build"]["report"]["status"], "exited", f"build: {res['build']}")
    check_eq(res["run"]["stdout"]["text"], "c ok\n", "c output")
    job = node().submit(alice, {"app": "cpp", "source":
                                "#include <iostream>\nint main(){std::cout<<\"cpp ok\\n\";}"})
    check_eq(job["result"]["run"]["stdout"]["text"], "cpp ok\n", "cpp output")
    job = node().submit(alice, {"app": "c", "source": "int main(void) { syntax error }"})
    res = job["result"]
    check_eq(job["state"], "finished", "a compile error is the program's, not Warren's")
    check(res["build"]["report"]["exit_code"] != 0, "build failed")
    check("error" in res["build"]["stderr"]["text"], "compiler message")
    check("run" not in res, "no run after a failed build")


@test
def test_node_app():
    job = node().submit(user("alice"), {"app": "node", "source": "console.log(6 * 7)"})
    check_eq(job["result"]["run"]["stdout"]["text"], "42\n", f"node output: {job['result']}")


@test
def test_binary_output_and_large_output_blob():
    n = node()
    alice = user("alice")
    job = n.submit(alice, {"app": "python3", "source":
                           "import sys; sys.stdout.buffer.write(bytes(range(256)))"})
    out = job["result"]["run"]["stdout"]
    check_eq(base64.b64decode(out["base64"]), bytes(range(256)), "binary stdout as base64")
    job = n.submit(alice, {"app": "python3", "source": "print('x' * 200000)"})
    out = job["result"]["run"]["stdout"]
    check_eq(out["size"], 200001, "size")
    check("url" in out and "text" not in out, "large output is a blob")
    r = n.request("GET", out["url"], token=alice)
    check_eq(r.status, 200, "blob fetch")
    check_eq(r.body, b"x" * 200000 + b"\n", "blob content")
    check_eq(hashlib.sha256(r.body).hexdigest(), out["sha256"], "blob digest")
    check_eq(n.request("GET", out["url"], token=user("carol")).status, 404,
             "another user's blob is invisible")
    other = out["url"].rsplit("/", 1)[0] + "/" + "0" * 64
    check_eq(n.request("GET", other, token=alice).status, 404, "unknown blob")


@test
def test_corrupt_blob_is_never_served():
    n = node()
    alice = user("alice")
    job = n.submit(alice, {"app": "python3", "source": "print('y' * 100000)"})
    out = job["result"]["run"]["stdout"]
    path = os.path.join(n.state, "blobs", out["sha256"][:2], out["sha256"])
    with open(path, "r+b") as f:
        f.seek(5000)
        f.write(b"z")
    r = n.request("GET", out["url"], token=alice)
    check(r.status >= 500, f"corrupt blob: {r.status}")
    check(b"yyyyz" not in r.body, "no corrupt byte served")


@test
def test_declared_output_files():
    job = node().submit(user("alice"), {
        "app": "sh", "outputs": ["result.txt", "missing.txt", "link"],
        "source": "echo computed > result.txt; ln -s /etc/passwd link"})
    outs = job["result"]["outputs"]
    check_eq(outs["result.txt"]["text"], "computed\n", "output file")
    check("error" in outs["missing.txt"], "a missing file is said")
    check("error" in outs["link"] and "text" not in outs["link"], "a symlink is not followed")


@test
def test_limits_and_their_statuses():
    n = node()
    alice = user("alice")
    job = n.submit(alice, {"app": "sh", "source": "sleep 5", "limits": {"wall_time": 0.5}})
    check_eq(job["result"]["run"]["report"]["status"], "wall_time_limit", "wall time")
    job = n.submit(alice, {"app": "python3", "limits": {"memory": "32M"},
                           "source": "x = bytearray(256 << 20)"})
    check_eq(job["result"]["run"]["report"]["status"], "memory_limit", "memory")
    r = n.request("POST", "/api/v1/jobs", {"app": "sh", "source": "true",
                                           "limits": {"memory": "64G"}}, token=alice)
    check_eq((r.status, r.error_code()), (422, "limit_exceeded"), "above the app's maximum")


@test
def test_job_visibility():
    n = node()
    alice, carol = user("alice"), user("carol")
    job = n.submit(alice, {"app": "sh", "source": "true"})
    path = "/api/v1/jobs/" + job["id"]
    check_eq(n.request("GET", path, token=carol).status, 404, "another user's job: 404")
    check_eq(n.request("DELETE", path, token=carol).status, 404, "cancel: 404 too")
    check_eq(n.request("GET", path + "/events", token=carol).status, 404, "events: 404")
    ids = {j["id"] for j in n.request("GET", "/api/v1/jobs", token=carol).json["jobs"]}
    check(job["id"] not in ids, "not listed to others")
    ids = {j["id"] for j in n.request("GET", "/api/v1/jobs", token=admin()).json["jobs"]}
    check(job["id"] in ids, "listed to an administrator")
    check_eq(n.request("GET", "/api/v1/jobs/" + "f" * 32, token=alice).status, 404, "unknown")
    check_eq(n.request("GET", "/api/v1/jobs/nothex", token=alice).status, 404, "malformed id")


@test
def test_list_pagination_and_filter():
    n = node()
    tok = n.add_user(admin(), "pager")
    ids = [n.submit(tok, {"app": "sh", "source": f"echo {i}"}, wait=False)["id"]
           for i in range(7)]
    seen, cursor = [], None
    while True:
        path = "/api/v1/jobs?limit=3" + (f"&cursor={cursor}" if cursor else "")
        r = n.request("GET", path, token=tok)
        check_eq(r.status, 200, "page")
        seen += [j["id"] for j in r.json["jobs"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    check_eq(sorted(seen), sorted(ids), "every job on exactly one page")
    check_eq(len(seen), len(set(seen)), "no repeats")
    for bad in ("limit=0", "limit=x", "state=bogus", "cursor=zzz"):
        r = n.request("GET", "/api/v1/jobs?" + bad, token=tok)
        check_eq(r.status, 400, bad)


def wait_state(n, tok, jid, states, timeout=30):
    def f():
        r = n.request("GET", "/api/v1/jobs/" + jid, token=tok)
        return r.json if r.json["state"] in states else None
    return wait_for(f, timeout, f"job {jid} in {states}")


@test
def test_cancel_running_and_queued():
    n = node()
    alice = user("alice")
    jid = n.submit(alice, {"app": "sh", "source": "echo started; sleep 60"}, wait=False)["id"]
    wait_state(n, alice, jid, {"running"})
    t0 = time.monotonic()
    r = n.request("DELETE", "/api/v1/jobs/" + jid, token=alice)
    check_eq(r.status, 200, f"cancel: {r}")
    check_eq(r.json["state"], "cancelled", "cancelled")
    r = n.request("GET", f"/api/v1/jobs/{jid}?wait=true&timeout=20", token=alice)
    check_eq(r.json["state"], "cancelled", "stays cancelled")
    check(time.monotonic() - t0 < 15, "killed, not waited for")
    r = n.request("DELETE", "/api/v1/jobs/" + jid, token=alice)
    check_eq((r.status, r.error_code()), (409, "conflict"), "cancel twice")
    done = n.submit(alice, {"app": "sh", "source": "true"})
    r = n.request("DELETE", "/api/v1/jobs/" + done["id"], token=alice)
    check_eq(r.status, 409, "cancel a finished job")


def read_events(n, tok, jid, timeout=60, last_id=None, ids=None):
    """The SSE stream as a list of (event, data) until it closes; ids gets each event's id."""
    c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=timeout)
    h = {"Authorization": "Bearer " + tok}
    if last_id is not None:
        h["Last-Event-ID"] = str(last_id)
    c.request("GET", f"/api/v1/jobs/{jid}/events", headers=h)
    r = c.getresponse()
    check_eq(r.status, 200, "events status")
    check(r.getheader("Content-Type").startswith("text/event-stream"), "content type")
    events, ev = [], {}
    for raw in r:
        line = raw.decode().rstrip("\n")
        if line == "":
            if "event" in ev:
                events.append((ev["event"], json.loads(ev["data"])))
                if ids is not None:
                    ids.append(int(ev["id"]))
            ev = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(": ")
            ev[k] = v
    c.close()
    return events


@test
def test_event_stream_live_and_late():
    n = node()
    alice = user("alice")
    jid = n.submit(alice, {"app": "python3", "source":
                           "import sys, time\nfor i in range(3):\n"
                           "    print('line', i, flush=True); time.sleep(0.2)\n"
                           "print('oops', file=sys.stderr)"}, wait=False)["id"]
    events = read_events(n, alice, jid)
    names = [e for e, _ in events]
    check("state" in names, f"state event: {names}")
    check_eq(names[-1], "end", "ends with end")
    out = "".join(d.get("text", "") for e, d in events
                  if e == "output" and d["stream"] == "stdout")
    check_eq(out, "line 0\nline 1\nline 2\n", "live stdout")
    check(any(e == "output" and d["stream"] == "stderr" for e, d in events), "stderr event")
    check_eq(events[-1][1]["state"], "finished", "end carries the job")
    ids = []
    late = read_events(n, alice, jid, ids=ids)
    check_eq(late, events, "a late follower gets the same events")
    check_eq(ids, sorted(set(ids)), "ids increase")
    resumed = read_events(n, alice, jid, last_id=ids[-3])
    check_eq(resumed, events[-2:], "Last-Event-ID resumes after that event")


# ---- bad input: every refusal has its status and code, and changes nothing ----

@test
def test_bad_job_bodies():
    n = node()
    tok = n.add_user(admin(), "fuzzy")
    deep = "[" * 40 + "]" * 40
    cases = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "not_an_object"),
        (b'{"app": "sh", "source": "x", "bogus": 1}', 400, "unknown_field"),
        (b'{"app": 5, "source": "x"}', 400, "wrong_type"),
        (b'{"app": "sh", "source": "\xff\xfe"}', 400, "invalid_utf8"),
        (b'{"app": "sh", "app": "sh", "source": "x"}', 400, "duplicate_key"),
        (('{"app": "sh", "source": "x", "args": ' + deep + "}").encode(), 400, "too_deep"),
        (b'{"app": "sh", "source": "x", "priority": 1' + b"0" * 40 + b"}", 400,
         "number_too_large"),
        (b'{"app": "sh", "source": "x", "limits": {"wall_time": 100000}}', 422,
         "limit_exceeded"),
        (b'{"app": "sh", "files": {"a/b": "x"}}', 400, "invalid_value"),
        (b'{"app": "sh", "files": {"..": "x"}}', 400, "invalid_value"),
        (('{"app": "sh", "files": {"' + "n" * 256 + '": "x"}}').encode(), 400, "invalid_value"),
        (json.dumps({"app": "sh", "files": {f"f{i}": "x" for i in range(100)}}).encode(), 413,
         "too_many"),
        (b'{"app": "sh"}', 400, "missing_field"),
        (b'{"app": "nope", "source": "x"}', 404, "not_found"),
    ]
    for body, status, code in cases:
        r = n.request("POST", "/api/v1/jobs", raw=body, token=tok)
        check_eq((r.status, r.error_code()), (status, code), f"body {body[:60]!r}")
    r = n.request("POST", "/api/v1/jobs", raw=b'{"app":"sh","source":"x"}', token=tok,
                  headers={"Content-Type": "text/plain"})
    check_eq(r.status, 415, "content type")
    # An oversized body is refused from its Content-Length, before it is read.
    s = socket.create_connection(("127.0.0.1", n.port), timeout=30)
    s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + tok.encode() + b"\r\n"
              b"Content-Length: " + str(17 << 20).encode() + b"\r\n\r\n" + b'{"app": "sh"')
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    check(reply.startswith(b"HTTP/1.1 413"), f"oversized body: {reply[:100]!r}")
    check_eq(job_count(tok), 0, "no refused job was stored")
    check_eq(n.request("GET", "/healthz").status, 200, "the node is fine")


@test
def test_unknown_routes_and_methods():
    n = node()
    r = n.request("GET", "/api/v1/nothing", token=admin())
    check_eq(r.status, 404, "unknown route")
    r.error_code()
    r = n.request("PATCH", "/api/v1/jobs", token=admin(), raw=b"{}")
    check_eq(r.status, 405, "method")
    check("Allow" in r.headers, "Allow header")


@test
def test_login_brute_force_throttled():
    n = Node("--login-max-per-user", "3", "--login-max-per-address", "6", workers=1)
    try:
        n.add_user(n.login(), "victim", "the-right-password")
        for _ in range(3):
            r = n.request("POST", "/api/v1/login", {"user": "victim", "password": "guess-1234"})
            check_eq(r.status, 401, "wrong password")
        r = n.request("POST", "/api/v1/login", {"user": "victim", "password": "the-right-password"})
        check_eq((r.status, r.error_code()), (429, "rate_limited"), "account throttled")
        check(int(r.headers["Retry-After"]) > 0, "Retry-After")
        for i in range(3):
            r = n.request("POST", "/api/v1/login", {"user": f"ghost{i}", "password": "guess-1234"})
            check_eq(r.status, 401, "other accounts")
        r = n.request("POST", "/api/v1/login", {"user": "admin", "password": n.admin_password})
        check_eq(r.status, 429, "the address is throttled too")
    finally:
        n.close()


@test
def test_slow_client_is_cut_off():
    n = Node("--timeout", "2", workers=1)
    try:
        s = socket.create_connection(("127.0.0.1", n.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        s.settimeout(20)
        t0 = time.monotonic()
        data = s.recv(4096)
        while data:
            data = s.recv(4096)
        check(time.monotonic() - t0 < 15, "closed by the server's timeout")
        s.close()
        check_eq(n.request("GET", "/healthz").status, 200, "still serving")
    finally:
        n.close()


# ---- concurrency, metrics, crashes and restarts ----

@test
def test_fifty_concurrent_submitters():
    n = node()
    tok = n.add_user(admin(), "crowd")
    results, errors = {}, []

    def one(i):
        try:
            job = n.submit(tok, {"app": "sh", "source": f"echo job {i}"}, timeout=120)
            results[i] = job
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    check_eq(errors, [], "errors")
    check_eq(len(results), 50, "every job answered")
    for i, job in results.items():
        check_eq(job["state"], "finished", f"job {i}")
        check_eq(job["result"]["run"]["stdout"]["text"], f"job {i}\n", f"job {i} output")
    check_eq(len({j["id"] for j in results.values()}), 50, "distinct ids")


@test
def test_metrics():
    n = node()
    r = n.request("GET", "/metrics")
    check_eq(r.status, 200, "metrics")
    text = r.body.decode()
    for needle in ('warren_jobs{state="finished"}', "warren_queue_length",
                   "warren_spawn_seconds_bucket", "warren_job_duration_seconds_count",
                   'warren_http_requests_total{route="jobs_create",status="201"}'):
        check(needle in text, f"{needle} in metrics")


def spawners(n):
    """The node's child processes (of any of its threads)."""
    pids = []
    for task in os.listdir(f"/proc/{n.proc.pid}/task"):
        try:
            with open(f"/proc/{n.proc.pid}/task/{task}/children") as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out.append(pid)
        except OSError:
            pass
    return sorted(out)


@test
def test_dead_spawners_are_replaced():
    n = Node(workers=2)
    try:
        tok = n.login()
        before = spawners(n)
        check_eq(len(before), 2, f"two spawners: {before}")
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        for i in range(4):
            job = n.submit(tok, {"app": "sh", "source": f"echo {i}"})
            check_eq((job["state"], job["result"]["run"]["stdout"]["text"]),
                     ("finished", f"{i}\n"), f"job {i} after the spawners died: {job}")
        after = wait_for(lambda: len(spawners(n)) == 2 and spawners(n), 10, "two spawners")
        check(not set(after) & set(before), f"new processes: {before} -> {after}")
        check(b"event=spawner_dead" in n.stderr(), "logged")
        # A spawner that dies under a job: that job fails (Warren's fault), the next ones run.
        jid = n.submit(tok, {"app": "sh", "source": "echo started; sleep 30"}, wait=False)["id"]
        wait_state(n, tok, jid, {"running"})
        for pid in spawners(n):
            os.kill(pid, signal.SIGKILL)
        r = n.request("GET", f"/api/v1/jobs/{jid}?wait=true&timeout=30", token=tok)
        check_eq(r.json["state"], "failed", f"the job under the dead spawner: {r.json}")
        check(r.json["error"], "it says why")
        for i in range(3):
            job = n.submit(tok, {"app": "sh", "source": "echo again"})
            check_eq(job["state"], "finished", f"after: {job}")
    finally:
        n.close()


@test
def test_unprivileged_node():
    """A node run by an ordinary user: no cgroups, so apps with cgroup limits fail clearly, and
    apps without them run."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="warren-node-nobody-")
    os.chmod(d, 0o755)
    state = os.path.join(d, "state")
    os.makedirs(state)
    os.chown(state, 65534, 65534)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": state}
    n = Node(state=state, workers=1, env=env,
             prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    try:
        check(b"event=limits_unenforceable" in n.stderr(), f"warned: {n.stderr()!r}")
        tok = n.login()
        job = n.submit(tok, {"app": "sh", "source": "echo hi"})
        check_eq(job["state"], "failed", "memory limits cannot be enforced")
        check("cannot enforce" in job["error"], f"a clear error: {job['error']!r}")
        r = n.request("POST", "/api/v1/apps", {
            "name": "plain-sh", "source_file": "main.sh", "run": {"argv": ["/bin/sh", "{source}"]},
            "limits": {"wall_time": 10}}, token=tok)
        check_eq(r.status, 201, f"app: {r}")
        job = n.submit(tok, {"app": "plain-sh", "outputs": ["f"],
                             "source": "echo hi; echo x > f; id -u"})
        check_eq(job["state"], "finished", f"runs: {job}")
        check_eq(job["result"]["run"]["stdout"]["text"], "hi\n1000\n", "output")
        check_eq(job["result"]["outputs"]["f"]["text"], "x\n", "its /work")
    finally:
        n.close()
        shutil.rmtree(d, ignore_errors=True)


@test
def test_kill_9_loses_no_job_and_reruns_once():
    n = Node(workers=1)
    try:
        tok = n.login()
        a = n.submit(tok, {"app": "sh", "source": "echo a-start; sleep 3; echo a-done"},
                     wait=False)["id"]
        wait_state(n, tok, a, {"running"})
        b = n.submit(tok, {"app": "sh", "source": "echo b"}, wait=False)["id"]
        check_eq(n.request("GET", "/api/v1/jobs/" + b, token=tok).json["state"], "queued",
                 "b waits behind a")
        n.kill()
        n.start()
        tok = n.login()
        ja = n.request("GET", f"/api/v1/jobs/{a}?wait=true&timeout=60", token=tok).json
        jb = n.request("GET", f"/api/v1/jobs/{b}?wait=true&timeout=60", token=tok).json
        check_eq(ja["state"], "finished", "a re-run")
        check_eq(ja["attempts"], 2, "a ran twice in all")
        check_eq(ja["result"]["run"]["stdout"]["text"], "a-start\na-done\n", "a's output")
        check_eq((jb["state"], jb["attempts"]), ("finished", 1), "b ran once")
        check_eq(jb["result"]["run"]["stdout"]["text"], "b\n", "b's output")
    finally:
        n.close()


@test
def test_graceful_stop_and_restart_keep_results():
    n = Node(workers=1)
    try:
        tok = n.login()
        done = n.submit(tok, {"app": "sh", "source": "echo kept"})
        running = n.submit(tok, {"app": "sh", "source": "sleep 1; echo finished-late"},
                           wait=False)["id"]
        wait_state(n, tok, running, {"running"})
        check_eq(n.stop(signal.SIGTERM), 0, "clean exit")
        n.start()
        tok = n.login()
        r = n.request("GET", "/api/v1/jobs/" + done["id"], token=tok)
        check_eq(r.json["result"], done["result"], "result intact after restart")
        r = n.request("GET", "/api/v1/jobs/" + running, token=tok)
        check_eq((r.json["state"], r.json["attempts"]), ("finished", 1),
                 "the running job finished before the node stopped")
        check_eq(r.json["result"]["run"]["stdout"]["text"], "finished-late\n", "its output")
    finally:
        n.close()


if __name__ == "__main__":
    try:
        run_all()
    finally:
        if _node:
            _node.close()
