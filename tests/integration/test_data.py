#!/usr/bin/env python3
"""Data objects end to end on a real node: raw uploads and verified downloads, lists, deletion,
the size bound, a byte flipped on disk (reported, never served, and a job using it fails),
confidential certificates and keys (private for good, never a job's input), job inputs in /work
and who may use them, and the CLI."""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import tempfile
import urllib.parse

from harness import WARREN, check, check_eq, run_all, test
from nodeutil import Node

DATA_MAX = 8 << 20

_node = None
_tokens = {}


def node():
    global _node
    if _node is None:
        _node = Node("--data-max", str(DATA_MAX), workers=2)
    return _node


def tok(who):
    """admin; alice and bob (group team); carol."""
    n = node()
    if not _tokens:
        _tokens["admin"] = n.login()
        for name in ("alice", "bob", "carol"):
            _tokens[name] = n.add_user(_tokens["admin"], name, "password-" + name)
        r = n.request("POST", "/api/v1/groups", {"name": "team"}, token=_tokens["admin"])
        check_eq(r.status, 201, f"group: {r}")
        for m in ("alice", "bob"):
            r = n.request("PUT", f"/api/v1/groups/team/members/{m}", token=_tokens["admin"])
            check_eq(r.status, 204, f"member {m}")
        # group membership is read at login
        for m in ("alice", "bob"):
            _tokens[m] = n.login(m, "password-" + m)
    return _tokens[who]


def upload(token, name, data, query="", content_type="application/octet-stream",
           chunked=False):
    n = node()
    path = "/api/v1/data?name=" + urllib.parse.quote(name, safe="") + query
    h = {"Content-Type": content_type}
    if token:
        h["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=120)
    try:
        if chunked:
            pieces = (data[i:i + 65536] for i in range(0, len(data), 65536))
            c.request("POST", path, body=pieces, headers=h, encode_chunked=True)
        else:
            c.request("POST", path, body=data, headers=h)
        r = c.getresponse()
        from nodeutil import Reply
        return Reply(r.status, dict(r.getheaders()), r.read())
    finally:
        c.close()


def put(token, name, data, query=""):
    r = upload(token, name, data, query)
    check_eq(r.status, 201, f"upload {name}: {r}")
    return r.json


def content(token, did):
    return node().request("GET", f"/api/v1/data/{did}/content", token=token)


def blob_file(sha):
    return os.path.join(node().state, "blobs", sha[:2], sha)


def audit_events(event):
    n, out, after = node(), [], 0
    while True:
        r = n.request("GET", f"/api/v1/audit?after={after}&limit=1000", token=tok("admin"))
        check_eq(r.status, 200, "audit")
        out += [x for x in r.json["records"] if x["event"] == event]
        if not r.json["next_after"]:
            return out
        after = r.json["next_after"]


def submit(token, body, wait=True):
    path = "/api/v1/jobs" + ("?wait=true&timeout=120" if wait else "")
    return node().request("POST", path, body, token=token, timeout=200)


@test
def test_round_trip():
    alice = tok("alice")
    cases = [("bin", bytes(range(256)) * 3 + b"\0\0\0"), ("empty", b""),
             ("big", os.urandom(3 << 20) + b"\0end")]
    for name, data in cases:
        d = put(alice, name, data)
        check_eq(set(d), {"id", "name", "size", "sha256", "owner", "group", "mode",
                          "confidential", "created_at"}, "fields")
        check_eq((d["name"], d["size"], d["sha256"], d["owner"], d["group"], d["mode"],
                  d["confidential"]),
                 (name, len(data), hashlib.sha256(data).hexdigest(), "alice", None, "0700",
                  False), f"{name} metadata")
        check(len(d["id"]) == 32 and all(c in "0123456789abcdef" for c in d["id"]), "id")
        r = content(alice, d["id"])
        check_eq(r.status, 200, f"{name} content")
        check(r.body == data, f"{name}: the bytes come back")
        check_eq(r.headers.get("Content-Type"), "application/octet-stream", "type")
        check_eq(r.headers.get("X-Warren-SHA256"), d["sha256"], "digest header")
        r = node().request("GET", f"/api/v1/data/{d['id']}", token=alice)
        check_eq((r.status, r.json), (200, d), "metadata")
    # chunked uploads work as well
    data = os.urandom(200000)
    r = upload(alice, "chunked", data, chunked=True)
    check_eq((r.status, r.json["size"]), (201, len(data)), f"chunked: {r}")
    check(content(alice, r.json["id"]).body == data, "chunked content")
    # names: any file name, escaped in the query
    d = put(alice, "été 2024 (v2).csv", b"x")
    check_eq(d["name"], "été 2024 (v2).csv", "UTF-8 name")


@test
def test_bad_uploads():
    alice = tok("alice")
    for bad in ("", ".", "..", "a/b", "a\nb", "x" * 256, "\x7f"):
        r = upload(alice, bad, b"data")
        check_eq(r.status, 400, f"name {bad!r}: {r}")
        r.error_code()
    r = node().request("POST", "/api/v1/data", raw=b"abc", token=alice,
                       headers={"Content-Type": "application/octet-stream"})
    check_eq(r.status, 400, "no name")
    for mode in ("0800", "abc", "07777"):
        check_eq(upload(alice, "m", b"x", "&mode=" + mode).status, 400, f"mode {mode}")
    r = upload(alice, "m", b"x", "&mode=0755")
    check_eq((r.status, r.error_code()), (403, "forbidden"), "a standard user cannot widen")
    check_eq(upload(alice, "m", b"x", "&group=nosuch").status, 404, "no such group")
    check_eq(upload(tok("carol"), "m", b"x", "&group=team").status, 403, "not a member")
    d = put(alice, "m", b"x", "&group=team&mode=0700")
    check_eq(d["group"], "team", "a member may name its group")
    r = upload(alice, "j", b"{}", content_type="application/json")
    check_eq((r.status, r.error_code()), (415, "unsupported_media_type"), "JSON is not data")
    r = upload(None, "anon", b"x")
    check_eq(r.status, 401, "anonymous")
    # JSON routes still refuse other types
    r = node().request("POST", "/api/v1/jobs", raw=b"{}", token=alice,
                       headers={"Content-Type": "application/octet-stream"})
    check_eq(r.status, 415, "jobs take JSON only")


@test
def test_size_limit():
    alice = tok("alice")
    before = len(audit_events("data_upload"))
    r = upload(alice, "exact", b"\1" * DATA_MAX)
    check_eq(r.status, 201, "exactly the limit")
    # announced: refused before the body is read
    c = http.client.HTTPConnection("127.0.0.1", node().port, timeout=60)
    c.putrequest("POST", "/api/v1/data?name=big")
    c.putheader("Authorization", "Bearer " + alice)
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Length", str(DATA_MAX + 1))
    c.endheaders()
    resp = c.getresponse()
    body = json.loads(resp.read())
    c.close()
    check_eq((resp.status, body["error"]["code"]), (413, "too_large"), "announced")
    # chunked: answered when it ends
    r = upload(alice, "big", b"\2" * (DATA_MAX + 1), chunked=True)
    check_eq((r.status, r.error_code()), (413, "too_large"), "chunked")
    check_eq(len(audit_events("data_upload")), before + 1, "only the one upload stored")
    tmp = [f for f in os.listdir(os.path.join(node().state, "blobs")) if f.startswith(".tmp")]
    check_eq(tmp, [], "no temporary file left behind")


@test
def test_list_and_pages():
    carol, alice = tok("carol"), tok("alice")
    ids = {put(carol, f"page{i}", f"content {i}".encode())["id"] for i in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        q = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        r = node().request("GET", "/api/v1/data" + q, token=carol)
        check_eq(r.status, 200, "list")
        seen += [d["id"] for d in r.json["data"]]
        pages += 1
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    check_eq(sorted(seen), sorted(ids), "each of carol's, once, and nothing else")
    check(pages >= 3, "paged")
    others = {d["id"] for d in node().request("GET", "/api/v1/data?limit=1000",
                                              token=alice).json["data"]}
    check(not (others & ids), "alice does not see carol's private data")
    admin = {d["id"] for d in node().request("GET", "/api/v1/data?limit=1000",
                                             token=tok("admin")).json["data"]}
    check(ids <= admin, "the administrator sees everything")
    for bad in ("limit=0", "limit=1001", "cursor=x", "cursor=1.nothex"):
        check_eq(node().request("GET", "/api/v1/data?" + bad, token=carol).status, 400, bad)


@test
def test_delete():
    alice, carol = tok("alice"), tok("carol")
    data = os.urandom(5000)
    d1, d2 = put(alice, "one", data), put(alice, "two", data)
    check_eq(d1["sha256"], d2["sha256"], "same content")
    path = blob_file(d1["sha256"])
    check(os.path.exists(path), "the blob is on disk")
    check_eq(node().request("DELETE", f"/api/v1/data/{d1['id']}", token=carol).status, 404,
             "another user's data is not found")
    check_eq(node().request("DELETE", f"/api/v1/data/{d1['id']}", token=alice).status, 204,
             "delete")
    check_eq(content(alice, d1["id"]).status, 404, "content gone")
    check_eq(node().request("GET", f"/api/v1/data/{d1['id']}", token=alice).status, 404, "gone")
    check(os.path.exists(path), "the blob stays while another object has it")
    check(content(alice, d2["id"]).body == data, "the other is intact")
    check_eq(node().request("DELETE", f"/api/v1/data/{d2['id']}", token=alice).status, 204,
             "delete the other")
    check(not os.path.exists(path), "the blob is removed with the last one")
    check_eq(node().request("DELETE", f"/api/v1/data/{d2['id']}", token=alice).status, 404,
             "twice")
    ev = [x for x in audit_events("data_delete") if x["object"] == f"data:{d2['id']}"]
    check_eq(len(ev), 1, "audited")


def flip_byte(sha, offset):
    path = blob_file(sha)
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


@test
def test_corrupt():
    alice = tok("alice")
    data = b"precious " * 10000
    d = put(alice, "precious.txt", data)
    flip_byte(d["sha256"], 4321)
    r = content(alice, d["id"])
    check_eq((r.status, r.error_code()), (500, "data_corrupt"), "reported")
    check(b"precious" not in r.body, "no byte of it served")
    ev = [x for x in audit_events("data_corrupt") if x["object"] == f"data:{d['id']}"]
    check(len(ev) >= 1, "audited")
    # a job that uses it is accepted (its metadata is fine) and fails, Warren's fault
    r = submit(alice, {"app": "sh", "source": "cat data.txt",
                       "inputs": [{"data": d["id"], "path": "data.txt"}]})
    check_eq(r.status, 201, f"submit: {r}")
    job = r.json
    check_eq(job["state"], "failed", f"the job fails: {job}")
    check(job["error"].startswith("input_corrupt"), f"input_corrupt: {job['error']}")
    check(job["result"] is None, "nothing of the job ran")
    # a missing blob is the same
    d2 = put(alice, "gone.txt", b"will vanish")
    os.unlink(blob_file(d2["sha256"]))
    r = content(alice, d2["id"])
    check_eq((r.status, r.error_code()), (500, "data_corrupt"), "missing blob")


def make_certs():
    d = tempfile.mkdtemp(prefix="warren-data-certs-")
    p = subprocess.run([WARREN, "cert", "init", d], capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, f"cert init: {p.stderr}")
    with open(os.path.join(d, "server.pem"), "rb") as f:
        cert = f.read()
    with open(os.path.join(d, "server.key"), "rb") as f:
        key = f.read()
    return cert, key


@test
def test_confidential():
    admin, alice, bob = tok("admin"), tok("alice"), tok("bob")
    cert, key = make_certs()
    pem_body = b"".join(cert.split(b"-----")[2].split())
    der = base64.b64decode(pem_body)
    embedded = b"notes\n" * 100 + key + b"more notes\n"
    for who, name, data, query in (("admin", "cert.pem", cert, "&mode=0755&group=team"),
                                   ("admin", "cert.der", der, "&mode=0755"),
                                   ("alice", "server.key", key, ""),
                                   ("alice", "notes.txt", embedded, "&group=team")):
        d = put(tok(who), name, data, query)
        check_eq((d["confidential"], d["mode"], d["group"]), (True, "0700", None),
                 f"{name} forced private")
        did = d["id"]
        # never a job's input, for anyone
        r = submit(tok(who), {"app": "sh", "source": "cat x",
                              "inputs": [{"data": did, "path": "x"}]}, wait=False)
        check_eq((r.status, r.error_code()), (422, "confidential_data"), f"{name} as input")
        # no widening, even by an administrator
        for change in ({"mode": "0755"}, {"mode": "0740"}, {"mode": "0701"},
                       {"group": "team"}):
            r = node().request("PATCH", f"/api/v1/data/{did}/acl", change, token=admin)
            check_eq((r.status, r.error_code()), (403, "confidential"), f"{name} {change}")
        r = node().request("GET", f"/api/v1/data/{did}", token=tok(who))
        check_eq((r.json["mode"], r.json["group"]), ("0700", None), "unchanged")
        # lowering is fine; chown is an administrator's
        r = node().request("PATCH", f"/api/v1/data/{did}/acl", {"mode": "0600"}, token=tok(who))
        check_eq(r.status, 200, "lower")
        if who == "alice":
            check_eq(node().request("PATCH", f"/api/v1/data/{did}/acl", {"owner": "bob"},
                                    token=alice).status, 403, "chown by the owner")
        # invisible to others
        check_eq(node().request("GET", f"/api/v1/data/{did}", token=bob).status, 404, "bob")
        listed = {x["id"] for x in node().request("GET", "/api/v1/data?limit=1000",
                                                  token=bob).json["data"]}
        check(did not in listed, "not listed to others")
        # its owner may still read it
        r = content(tok(who), did)
        check(r.status == 200 and r.body == data, f"{name} readable by its owner")
    # plain data that only mentions keys is not confidential
    d = put(alice, "prose.txt", b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")
    check_eq(d["confidential"], False, "a public key is not secret")


@test
def test_job_inputs():
    alice, bob, carol, admin = tok("alice"), tok("bob"), tok("carol"), tok("admin")
    a1 = put(alice, "a1", b"first input\n")
    a2 = put(alice, "a2", b"\0binary\xff")
    r = submit(alice, {"app": "sh", "source": "cat in1.txt; od -An -c in2.bin; ls -l in1.txt",
                       "inputs": [{"data": a1["id"], "path": "in1.txt"},
                                  {"data": a2["id"], "path": "in2.bin"}]})
    check_eq(r.status, 201, f"submit: {r}")
    job = r.json
    check_eq(job["state"], "finished", f"ran: {job}")
    out = job["result"]["run"]["stdout"]["text"]
    check(out.startswith("first input\n"), f"the input is in /work: {out!r}")
    check("\\0   b   i   n" in out, f"binary input intact: {out!r}")
    check("-rw-r--r--" in out, f"readable, not writable by the job: {out!r}")

    # another user's data: not found, naming it
    c1 = put(carol, "c1", b"carol's")
    r = submit(alice, {"app": "sh", "source": "cat x", "inputs": [{"data": c1["id"], "path": "x"}]},
               wait=False)
    check_eq((r.status, r.error_code()), (404, "not_found"), "someone else's data")
    check(c1["id"] in r.json["error"]["message"], "the message names the input")
    r = submit(alice, {"app": "sh", "source": "cat x",
                       "inputs": [{"data": "0" * 32, "path": "x"}]}, wait=False)
    check_eq(r.status, 404, "no such data")
    # readable but not executable (0704 by the administrator): forbidden
    r = upload(admin, "shared", b"shared data", "&mode=0704")
    check_eq(r.status, 201, "admin's 0704 data")
    shared = r.json["id"]
    check_eq(content(alice, shared).status, 200, "alice may read it")
    r = submit(alice, {"app": "sh", "source": "cat x", "inputs": [{"data": shared, "path": "x"}]},
               wait=False)
    check_eq((r.status, r.error_code()), (403, "forbidden"), "no execute bit")
    r = node().request("PATCH", f"/api/v1/data/{shared}/acl", {"mode": "0705"}, token=admin)
    check_eq(r.status, 200, "admin adds other execute")
    r = submit(alice, {"app": "sh", "source": "cat x", "inputs": [{"data": shared, "path": "x"}]})
    check_eq((r.status, r.json["state"]), (201, "finished"), f"now usable: {r}")
    check_eq(r.json["result"]["run"]["stdout"]["text"], "shared data", "its content")
    # group: 0750 for team members (bob), not carol
    r = node().request("PATCH", f"/api/v1/data/{a1['id']}/acl", {"group": "team",
                                                                 "mode": "0750"}, token=admin)
    check_eq(r.status, 200, "chgrp")
    r = submit(bob, {"app": "sh", "source": "cat x", "inputs": [{"data": a1["id"], "path": "x"}]})
    check_eq((r.status, r.json["state"]), (201, "finished"), f"bob, in team: {r}")
    r = submit(carol, {"app": "sh", "source": "cat x",
                       "inputs": [{"data": a1["id"], "path": "x"}]}, wait=False)
    check_eq(r.status, 404, "carol, not in team")
    # paths: file-name rules, no clash with files or the source
    for inputs, what in (([{"data": a1["id"], "path": "../x"}], "parent"),
                         ([{"data": a1["id"], "path": "a/b"}], "slash"),
                         ([{"data": a1["id"], "path": "x"}, {"data": a2["id"], "path": "x"}],
                          "twice"),
                         ([{"data": a1["id"], "path": "main.sh"}], "the source file")):
        r = submit(alice, {"app": "sh", "source": "true", "inputs": inputs}, wait=False)
        check_eq(r.status, 400, f"{what}: {r}")
    r = submit(alice, {"app": "sh", "files": {"x": "1", "main.sh": "true"},
                       "inputs": [{"data": a1["id"], "path": "x"}]}, wait=False)
    check_eq(r.status, 400, "clash with files")


def cli(args, home, token, **kw):
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "WARREN_URL": f"http://127.0.0.1:{node().port}", "WARREN_TOKEN": token}
    return subprocess.run([WARREN] + list(args), capture_output=True, timeout=120, env=env,
                          **kw)


@test
def test_cli():
    alice = tok("alice")
    home = tempfile.mkdtemp(prefix="warren-data-home-")
    src = os.path.join(home, "input.bin")
    data = os.urandom(300000) + b"\0tail"
    with open(src, "wb") as f:
        f.write(data)
    p = cli(["data", "put", src], home, alice)
    check_eq(p.returncode, 0, f"put: {p.stderr}")
    did = p.stdout.decode().strip()
    check_eq(len(did), 32, "prints the id")
    p = cli(["data", "put", "-", "--name", "piped.txt", "--json"], home, alice,
            input=b"from a pipe\n")
    check_eq(p.returncode, 0, f"put stdin: {p.stderr}")
    piped = json.loads(p.stdout)
    check_eq((piped["name"], piped["size"]), ("piped.txt", 12), "piped")
    p = cli(["data", "ls"], home, alice)
    check_eq(p.returncode, 0, "ls")
    check(did in p.stdout.decode() and "input.bin" in p.stdout.decode(), "listed")
    p = cli(["data", "ls", "--json"], home, alice)
    check(did in {d["id"] for d in json.loads(p.stdout)["data"]}, "ls --json")
    p = cli(["data", "show", did], home, alice)
    check_eq(json.loads(p.stdout)["sha256"], hashlib.sha256(data).hexdigest(), "show")
    p = cli(["data", "get", did], home, alice)
    check(p.returncode == 0 and p.stdout == data, "get to stdout")
    out = os.path.join(home, "out.bin")
    p = cli(["data", "get", did, "-o", out], home, alice)
    check_eq(p.returncode, 0, f"get -o: {p.stderr}")
    with open(out, "rb") as f:
        check(f.read() == data, "get -o writes the content")
    # submit --input
    script = os.path.join(home, "job.sh")
    with open(script, "w") as f:
        f.write("wc -c < in.bin; cat msg\n")
    p = cli(["submit", "--wait", "--input", f"{did}:in.bin", "--input", f"{piped['id']}:msg",
             script], home, alice)
    check_eq(p.returncode, 0, f"submit --input: {p.stderr}")
    check_eq(p.stdout.decode().split(), [str(len(data)), "from", "a", "pipe"], "the job saw them")
    p = cli(["submit", "--input", "nocolon", script], home, alice)
    check_eq(p.returncode, 2, "bad --input")
    # a corrupted object: get refuses, writes nothing
    bad = put(alice, "bad.bin", b"z" * 1000)
    flip_byte(bad["sha256"], 10)
    out2 = os.path.join(home, "bad.out")
    p = cli(["data", "get", bad["id"], "-o", out2], home, alice)
    check_eq(p.returncode, 1, "get of corrupt data fails")
    check("data_corrupt" in p.stderr.decode(), f"says why: {p.stderr}")
    check(not os.path.exists(out2), "nothing written")
    check_eq([f for f in os.listdir(home) if ".warren-" in f], [], "no temporary file left")
    # rm
    p = cli(["data", "rm", did], home, alice)
    check_eq(p.returncode, 0, f"rm: {p.stderr}")
    p = cli(["data", "show", did], home, alice)
    check_eq(p.returncode, 1, "gone")


@test
def test_audit():
    for e in ("data_upload", "data_delete", "data_corrupt"):
        check(audit_events(e), f"{e} audited")
    up = audit_events("data_upload")[-1]
    check(up["actor"] and up["object"].startswith("data:"), f"who and what: {up}")


if __name__ == "__main__":
    try:
        run_all()
    finally:
        if _node:
            _node.close()
