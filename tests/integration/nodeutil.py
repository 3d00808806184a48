"""A real `warren node` for tests: started on a free loopback port with its own state directory,
talked to over HTTP with Python's standard library."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import TestFailure, WARREN

WARREN_NODE = os.environ.get("WARREN_NODE") or os.path.join(os.path.dirname(WARREN), "warren-node")


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def error_code(self):
        if not isinstance(self.json, dict) or set(self.json) != {"error"}:
            raise TestFailure(f"not an error body: {self.status} {self.body[:300]!r}")
        err = self.json["error"]
        if set(err) != {"code", "message"} or not err["message"] or "\n" in err["message"]:
            raise TestFailure(f"malformed error body: {self.body[:300]!r}")
        return err["code"]

    def __repr__(self):
        return f"Reply({self.status}, {self.body[:400]!r})"


class Node:
    """One node process. state: reuse a state directory (a restart)."""

    def __init__(self, *extra, state=None, workers=2, prefix=(), env=None):
        self.own_state = state is None
        self.state = state or tempfile.mkdtemp(prefix="warren-node-")
        self.prefix = list(prefix)
        self.env = env
        self.extra = list(extra)
        self.workers = workers
        self.proc = None
        self.log = None
        self.port = None
        self.stderr_path = os.path.join(self.state, "node.stderr")
        self.start()

    def start(self):
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(self.stderr_path, "ab")
        self.log_offset = self.log.tell()
        self.proc = self.spawn(self.prefix + self.command() + self.extra,
                               stdout=subprocess.DEVNULL, stderr=self.log, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise TestFailure(f"node exited {self.proc.returncode}: {self.stderr()!r}")
            if time.monotonic() > deadline:
                raise TestFailure(f"node did not start: {self.stderr()!r}")
            time.sleep(0.01)
        if os.path.exists(self.admin_password_path()):
            with open(self.admin_password_path()) as f:
                self.admin_password = f.read().strip()

    def command(self):
        """The node's argv before the extra arguments (a subclass may start another kind)."""
        return [WARREN, "node", "--state", self.state, "--listen", "127.0.0.1:0",
                "--workers", str(self.workers)]

    def spawn(self, argv, **kwargs):
        """Starts the node process (a subclass may start it elsewhere, e.g. in a namespace)."""
        return subprocess.Popen(argv, **kwargs)

    def connection(self, timeout=60):
        """An HTTP connection to the node (not yet connected)."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def admin_password_path(self):
        return os.path.join(self.state, "admin.password")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read()

    def request(self, method, path, body=None, token=None, headers=None, raw=None, timeout=60):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        c = self.connection(timeout)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Reply(r.status, dict(r.getheaders()), r.read())
        finally:
            c.close()

    def login(self, user="admin", password=None):
        r = self.request("POST", "/api/v1/login",
                         {"user": user, "password": password or self.admin_password})
        if r.status != 200:
            raise TestFailure(f"login {user}: {r}")
        return r.json["token"]

    def add_user(self, admin_token, name, password="password-" + "x" * 8, rights=None):
        body = {"name": name, "password": password}
        if rights:
            body["rights"] = rights
        r = self.request("POST", "/api/v1/users", body, token=admin_token)
        if r.status != 201:
            raise TestFailure(f"add user {name}: {r}")
        return self.login(name, password)

    def submit(self, token, body, wait=True, timeout=60):
        path = "/api/v1/jobs" + (f"?wait=true&timeout={timeout}" if wait else "")
        r = self.request("POST", path, body, token=token, timeout=timeout + 30)
        if r.status != 201:
            raise TestFailure(f"submit: {r}")
        return r.json

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def close(self):
        """Stops the node gracefully; it must exit 0 (under ASan, a leak at exit is a failure)."""
        code = self.stop()
        self.log.close()
        self.log = None
        if self.own_state:
            if code != 0:
                err = self.stderr()[-3000:]
            shutil.rmtree(self.state, ignore_errors=True)
        if code != 0:
            raise TestFailure(f"node exited {code} on SIGTERM: {err if self.own_state else ''!r}")
