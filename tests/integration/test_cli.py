"""The client commands end to end: login, submit, jobs, apps and users through the real binaries,
against a real `warren node` on loopback with its own state, and HOME in a temporary directory."""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request

import harness
from harness import Skip, TestFailure, check, check_eq, test, wait_for

WARREN = harness.WARREN
SCRATCH = tempfile.mkdtemp(prefix="warren-cli-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def clean_env(home, **extra):
    """The environment of a user whose HOME is home: no WARREN_* and no proxy from ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WARREN_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env.update(extra)
    return env


def new_home(name):
    home = os.path.join(SCRATCH, name)
    os.makedirs(home, mode=0o700)
    return home


def config_path(home):
    return os.path.join(home, ".config", "warren", "config.json")


def warren(args, home, input=None, timeout=120, text=True, **env):
    return subprocess.run([WARREN] + list(args), capture_output=True, timeout=timeout,
                          input=input, text=text, env=clean_env(home, **env))


def check_ok(p, what):
    check_eq(p.returncode, 0, f"{what} exit code (stderr {p.stderr!r})")


def check_one_line_error(p, code, needle, what):
    """Exit code, exactly one line on stderr naming needle, nothing on stdout."""
    check_eq(p.returncode, code, f"{what}: exit code (stderr {p.stderr!r})")
    lines = p.stderr.strip().splitlines()
    check_eq(len(lines), 1, f"{what}: one line on stderr: {p.stderr!r}")
    check(lines[0].startswith("warren: "), f"{what}: {lines[0]!r}")
    check(needle in lines[0], f"{what}: {needle!r} not in {lines[0]!r}")
    check_eq(p.stdout, "", f"{what}: stdout")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(name, content, mode="w"):
    path = os.path.join(SCRATCH, name)
    with open(path, mode) as f:
        f.write(content)
    return path


# ---- the node ----

class Node:
    def __init__(self):
        # Its own directory under /tmp: sandboxes reach their work directories beneath it.
        self.state = tempfile.mkdtemp(prefix="warren-cli-node-")
        atexit.register(shutil.rmtree, self.state, ignore_errors=True)
        self.stderr_path = os.path.join(SCRATCH, "node.stderr")
        self.log = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [WARREN, "node", "--state", self.state, "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=self.log, env=clean_env(SCRATCH))
        atexit.register(self.stop)
        m = wait_for(self.listening, timeout=30, what="the node's 'listening on' line")
        self.url = m.group(1).decode()
        wait_for(self.healthy, timeout=30, what="the node's /healthz")
        with open(os.path.join(self.state, "admin.password")) as f:
            self.admin_password = f.read().strip()

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read()

    def listening(self):
        if self.proc.poll() is not None:
            raise TestFailure(f"the node exited {self.proc.returncode}: {self.stderr()!r}")
        return re.search(rb"listening on (http://127\.0\.0\.1:\d+)", self.stderr())

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            if self.proc.poll() is not None:
                raise TestFailure(f"the node exited {self.proc.returncode}: {self.stderr()!r}")
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


_node = None
_node_missing = None


def node():
    """The one node of this file, started on first use; Skip if `warren node` does not exist."""
    global _node, _node_missing
    if _node_missing:
        raise Skip(_node_missing)
    if _node is None:
        p = subprocess.run([WARREN, "node", "--help"], capture_output=True, text=True,
                           timeout=30, env=clean_env(SCRATCH))
        if p.returncode != 0:
            _node_missing = f"'warren node' is not available (exit {p.returncode})"
            raise Skip(_node_missing)
        _node = Node()
    return _node


_homes = {}


def login_home(user, password):
    """A HOME in which user is logged in to the node (once per user)."""
    if user not in _homes:
        home = new_home(f"home-{user}-{len(_homes)}")
        p = warren(["login", node().url, "--user", user, "--password-stdin"], home,
                   input=password + "\n")
        check_ok(p, f"login {user}")
        _homes[user] = home
    return _homes[user]


def admin_home():
    return login_home("admin", node().admin_password)


def saved_token(home):
    with open(config_path(home)) as f:
        return json.load(f)["token"]


def submit_wait(home, name, source, *args, mode="w", text=True, input=None):
    path = write(name, source, mode)
    return warren(["submit", path, "--wait"] + list(args), home, input=input, text=text)


# ---- without a node: options, help, configuration ----

COMMANDS = ["login", "logout", "submit", "jobs", "status", "logs", "result", "cancel", "app",
            "user"]


@test
def help_on_every_command():
    home = new_home("help")
    for cmd in COMMANDS:
        p = warren([cmd, "--help"], home)
        check_ok(p, f"{cmd} --help")
        check(p.stdout.startswith(f"Usage: warren {cmd}"), f"{cmd} --help: {p.stdout[:80]!r}")
    for args in (["app", "ls", "--help"], ["user", "add", "--help"], ["submit", "x.py", "-h"]):
        p = warren(args, home)
        check_ok(p, " ".join(args))
        check("Usage: warren" in p.stdout, p.stdout)
    p = warren(["submit", "--help"], home)
    for opt in ("--app", "--stdin", "--arg", "--output", "--memory", "--wall-time", "--cpu-time",
                "--pids", "--priority", "--wait", "--json"):
        check(opt in p.stdout, f"submit --help documents {opt}")


BAD_OPTIONS = [
    (["submit", "--no-such-option", "x.py"], "--no-such-option"),
    (["submit"], "no file"),
    (["submit", "x.py", "--memory", "12X"], "--memory"),
    (["submit", "x.py", "--memory", "0"], "--memory"),
    (["submit", "x.py", "--wall-time", "-1"], "--wall-time"),
    (["submit", "x.py", "--cpu-time", "abc"], "--cpu-time"),
    (["submit", "x.py", "--pids", "0"], "--pids"),
    (["submit", "x.py", "--priority", "101"], "--priority"),
    (["submit", "x.py", "--wall-time"], "--wall-time"),
    (["submit", "no-extension"], "--app"),
    (["jobs", "--limit", "0"], "--limit"),
    (["jobs", "--state"], "--state"),
    (["jobs", "extra"], "'extra'"),
    (["status"], "no job ID"),
    (["status", "a", "b"], "'b'"),
    (["logs", "--json", "x"], "--json"),
    (["result"], "no job ID"),
    (["cancel", "-x", "id"], "-x"),
    (["login", "http://a", "http://b"], "http://b"),
    (["login", "--user"], "--user"),
    (["logout", "extra"], "'extra'"),
    (["app"], "no command"),
    (["app", "frobnicate"], "frobnicate"),
    (["app", "show"], "no app name"),
    (["app", "add"], "no file"),
    (["app", "ls", "--replace"], "--replace"),
    (["user"], "no command"),
    (["user", "add"], "no user name"),
    (["user", "ls", "--admin"], "--admin"),
    (["user", "rm", "a", "b"], "'b'"),
]


@test
def bad_options_exit_2_with_one_line():
    home = new_home("bad-options")
    for args, needle in BAD_OPTIONS:
        check_one_line_error(warren(args, home), 2, needle, " ".join(args))


@test
def missing_token_is_one_line_exit_1():
    home = new_home("no-token")
    src = write("missing-token.py", "print(1)\n")
    for args in (["jobs"], ["status", "0" * 32], ["submit", src], ["app", "ls"], ["user", "ls"],
                 ["logout"]):
        p = warren(args + ["--url", "http://127.0.0.1:9"], home)
        check_one_line_error(p, 1, "not logged in", " ".join(args))
        check("warren login" in p.stderr, p.stderr)


@test
def unreachable_node_is_one_line_exit_1():
    home = new_home("unreachable")
    url = f"http://127.0.0.1:{free_port()}"
    p = warren(["jobs"], home, WARREN_URL=url, WARREN_TOKEN="wrn_" + "A" * 43)
    check_one_line_error(p, 1, f"cannot reach {url}", "jobs on a closed port")
    p = warren(["login", url, "--user", "admin", "--password-stdin"], home, input="password\n")
    check_one_line_error(p, 1, f"cannot reach {url}", "login on a closed port")
    check(not os.path.exists(config_path(home)), "nothing saved")


@test
def config_readable_by_others_is_refused():
    home = new_home("config-mode")
    path = config_path(home)
    os.makedirs(os.path.dirname(path), mode=0o700)
    token = "wrn_" + "B" * 43
    with open(path, "w") as f:
        json.dump({"url": "http://127.0.0.1:9", "token": token}, f)
    os.chmod(path, 0o644)
    p = warren(["jobs"], home)
    check_one_line_error(p, 1, "refusing to read", "a 0644 config")
    check(path in p.stderr and "chmod 600" in p.stderr, p.stderr)
    check(token not in p.stderr, "the token is not printed")
    os.chmod(path, 0o600)
    p = warren(["jobs"], home)
    check_one_line_error(p, 1, "cannot reach http://127.0.0.1:9", "a 0600 config is read")
    if harness.is_root():
        os.chown(path, 65534, 65534)
        p = warren(["jobs"], home)
        check_one_line_error(p, 1, "refusing to read", "a config of another user")
        check("uid 65534" in p.stderr, p.stderr)
        os.chown(path, 0, 0)


@test
def invalid_url_is_refused():
    home = new_home("bad-url")
    for url in ("ftp://example.org", "http://user:secret@example.org", "example.org"):
        p = warren(["jobs", "--url", url], home, WARREN_TOKEN="wrn_" + "C" * 43)
        check_one_line_error(p, 1, "invalid URL", url)
        check("secret" not in p.stderr, "credentials are not echoed")


# ---- with a node ----

@test
def login_with_a_wrong_password_fails():
    n = node()
    home = new_home("wrong-password")
    p = warren(["login", n.url, "--user", "admin", "--password-stdin"], home,
               input="not-the-password\n")
    check_one_line_error(p, 1, "(unauthorized)", "wrong password")
    check(not os.path.exists(config_path(home)), "nothing saved")
    p = warren(["login", n.url, "--user", "admin"], home, input="x\n")
    check_eq(p.returncode, 1, f"no terminal and no --password-stdin ({p.stderr!r})")
    check("--password-stdin" in p.stderr, p.stderr)


@test
def login_saves_the_token_0600():
    n = node()
    home = new_home("login")
    p = warren(["login", n.url, "--user", "admin", "--password-stdin"], home,
               input=n.admin_password + "\n")
    check_ok(p, "login")
    check("admin" in p.stdout, p.stdout)
    path = config_path(home)
    st = os.stat(path)
    check_eq(stat.S_IMODE(st.st_mode), 0o600, "config.json mode")
    check_eq(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700, "config dir mode")
    with open(path) as f:
        cfg = json.load(f)
    check_eq(cfg["url"], n.url, "saved url")
    token = cfg["token"]
    check(token.startswith("wrn_"), "saved token")
    check(token not in p.stdout + p.stderr, "the token is not printed")
    p = warren(["jobs"], home)
    check_ok(p, "jobs with the saved token")
    check(token not in p.stdout + p.stderr, "the token is not printed")
    leftovers = [e for e in os.listdir(os.path.dirname(path)) if e != "config.json"]
    check_eq(leftovers, [], "no temporary files left")


@test
def env_url_and_token():
    n = node()
    token = saved_token(admin_home())
    home = new_home("env")
    p = warren(["jobs", "--json"], home, WARREN_URL=n.url, WARREN_TOKEN=token)
    check_ok(p, "jobs with WARREN_URL and WARREN_TOKEN")
    check("jobs" in json.loads(p.stdout), p.stdout)
    p = warren(["app", "ls"], home, WARREN_TOKEN=token, WARREN_URL=n.url + "/")
    check_ok(p, "a trailing '/' on the URL")
    p = warren(["jobs"], home, WARREN_URL=n.url, WARREN_TOKEN="wrn_" + "D" * 43)
    check_one_line_error(p, 1, "(unauthorized)", "an unknown token")
    # A saved token goes only to the URL it was saved for.
    other = n.url.replace("127.0.0.1", "localhost")
    p = warren(["jobs", "--url", other], admin_home())
    check_one_line_error(p, 1, "not logged in", "the saved token with another URL")


@test
def submit_python_wait_propagates_the_exit_code():
    home = admin_home()
    p = submit_wait(home, "exit3.py",
                    "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n"
                    "sys.exit(3)\n")
    check_eq(p.returncode, 3, f"exit code ({p.stderr!r})")
    check_eq(p.stdout, "to stdout\n", "stdout")
    check("to stderr\n" in p.stderr, p.stderr)
    p = submit_wait(home, "ok.py", "print('fine')\n")
    check_eq((p.returncode, p.stdout), (0, "fine\n"), f"exit 0 ({p.stderr!r})")


@test
def submit_sh_and_c():
    home = admin_home()
    p = submit_wait(home, "hello.sh", "echo hello from sh; exit 4\n")
    check_eq((p.returncode, p.stdout), (4, "hello from sh\n"), f"sh ({p.stderr!r})")
    p = submit_wait(home, "hello.c",
                    '#include <stdio.h>\nint main(void) { puts("hello from c"); return 5; }\n')
    check_eq((p.returncode, p.stdout), (5, "hello from c\n"), f"c ({p.stderr!r})")
    p = submit_wait(home, "broken.c", "int main(void) { return undeclared; }\n")
    check(p.returncode != 0, f"a failed build fails ({p.returncode})")
    check("undeclared" in p.stderr, f"the compiler's message is on stderr: {p.stderr!r}")
    check("build" in p.stderr, p.stderr)
    check_eq(p.stdout, "", "no output of a run that did not happen")


@test
def submit_wait_output_is_live():
    home = admin_home()
    path = write("live.py", "import time\nprint('first', flush=True)\ntime.sleep(4)\n"
                            "print('second', flush=True)\n")
    proc = subprocess.Popen([WARREN, "submit", path, "--wait"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(home))
    try:
        first = proc.stdout.readline()
        check_eq(first, "first\n", "first line")
        check(proc.poll() is None, "the first line arrived while the job was still running")
        rest = proc.stdout.read()
        check_eq(rest, "second\n", "the rest")
        check_eq(proc.wait(timeout=60), 0, "exit code")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@test
def submit_stdin_args_and_several_files():
    home = admin_home()
    src = "import sys\nprint(sys.argv[1:])\nprint(sys.stdin.read().upper(), end='')\n"
    inp = write("input.txt", "from a file\n")
    p = submit_wait(home, "echo.py", src, "--stdin", inp, "--arg", "a b", "--", "c", "--d")
    check_ok(p, "stdin file and args")
    check_eq(p.stdout, "['a b', 'c', '--d']\nFROM A FILE\n", "stdout")
    p = submit_wait(home, "echo2.py", src, "--stdin", "-", input="piped\n")
    check_ok(p, "stdin -")
    check_eq(p.stdout, "[]\nPIPED\n", "stdout")
    main = write("main.py", "import helper\nhelper.hello()\n")
    helper = write("helper.py", "def hello():\n    print('hello from helper')\n")
    p = warren(["submit", "--app", "python3", main, helper, "--wait"], home)
    check_ok(p, "two files")
    check_eq(p.stdout, "hello from helper\n", "stdout")


@test
def submit_binary_content_and_output():
    home = admin_home()
    src = b"# caf\xe9 in Latin-1: not UTF-8\nprintf 'raw\\351\\n'\n"
    p = submit_wait(home, "latin1.sh", src, mode="wb", text=False)
    check_eq(p.returncode, 0, f"exit code ({p.stderr!r})")
    check_eq(p.stdout, b"raw\xe9\n", "non-UTF-8 output arrives as bytes")


@test
def submit_outputs_and_json():
    home = admin_home()
    p = submit_wait(home, "writer.py", "open('result.txt', 'w').write('data 42')\n",
                    "--output", "result.txt", "--json")
    check_ok(p, "submit --wait --json")
    job = json.loads(p.stdout)
    check_eq(job["state"], "finished", "state")
    check_eq(job["result"]["exit_code"], 0, "exit code")
    check_eq(job["result"]["outputs"]["result.txt"]["text"], "data 42", "the output file")
    p = warren(["submit", write("later.py", "print(1)\n"), "--json"], home)
    check_ok(p, "submit --json")
    check(JOB_ID.match(json.loads(p.stdout)["id"]), p.stdout)


@test
def limit_is_named_and_exit_code_propagated():
    home = admin_home()
    p = submit_wait(home, "spin.py", "while True:\n    pass\n", "--wall-time", "1")
    check(p.returncode >= 128, f"killed at the limit: exit {p.returncode} ({p.stderr!r})")
    check("job stopped: wall_time_limit" in p.stderr, p.stderr)
    p = submit_wait(home, "too-long.py", "print(1)\n", "--wall-time", "100000")
    check_one_line_error(p, 1, "(limit_exceeded)", "a limit above the app's maximum")


@test
def jobs_status_result_logs():
    home = admin_home()
    src = write("logs.py", "import sys\nprint('out line')\nprint('err line', file=sys.stderr)\n"
                           "sys.exit(2)\n")
    p = warren(["submit", src], home)
    check_ok(p, "submit")
    job_id = p.stdout.strip()
    check(JOB_ID.match(job_id), f"submit prints the job id: {p.stdout!r}")

    p = warren(["logs", "-f", job_id], home)
    check_ok(p, "logs -f")
    check_eq(p.stdout, "out line\n", "logs -f stdout")
    check("err line\n" in p.stderr, p.stderr)

    p = warren(["logs", job_id], home)
    check_ok(p, "logs")
    check_eq(p.stdout, "out line\n", "logs stdout")
    check_eq(p.stderr, "err line\n", "logs stderr")

    p = warren(["status", job_id], home)
    check_ok(p, "status")
    check(re.search(r"^state\s+finished$", p.stdout, re.M), p.stdout)
    check(re.search(r"^exit code\s+2$", p.stdout, re.M), p.stdout)
    p = warren(["status", "--json", job_id], home)
    check_ok(p, "status --json")
    check_eq(json.loads(p.stdout)["id"], job_id, "status --json")

    p = warren(["result", job_id], home)
    check_ok(p, "result")
    job = json.loads(p.stdout)
    check_eq(job["result"]["exit_code"], 2, "result exit code")
    check_eq(job["result"]["run"]["stdout"]["text"], "out line\n", "result stdout")
    check(p.stdout.startswith("{\n"), "pretty-printed")

    p = warren(["jobs"], home)
    check_ok(p, "jobs")
    lines = p.stdout.splitlines()
    check_eq(lines[0].split(), ["ID", "APP", "STATE", "EXIT", "CREATED"], "table header")
    row = next((line for line in lines if line.startswith(job_id)), None)
    check(row is not None, f"{job_id} listed: {p.stdout!r}")
    check_eq(row.split()[1:3], ["python3", "finished"], "row")
    p = warren(["jobs", "--json", "--state", "finished", "--limit", "1"], home)
    check_ok(p, "jobs --json")
    listed = json.loads(p.stdout)
    check_eq(len(listed["jobs"]), 1, "--limit 1")
    check_eq(listed["jobs"][0]["state"], "finished", "--state finished")
    p = warren(["jobs", "--all", "--limit", "2", "--json"], home)
    check_ok(p, "jobs --all")
    everything = json.loads(p.stdout)["jobs"]
    check(len(everything) > 2, f"--all follows the pages ({len(everything)} jobs)")
    ids = [j["id"] for j in everything]
    check_eq(len(ids), len(set(ids)), "no job twice")

    p = warren(["status", "0" * 32], home)
    check_one_line_error(p, 1, "(not_found)", "an unknown job")


@test
def logs_of_a_large_output_come_from_its_blob():
    home = admin_home()
    src = write("big.py", "import sys\nsys.stdout.write('x' * 199999 + '\\n')\n")
    p = warren(["submit", src], home)
    check_ok(p, "submit")
    job_id = p.stdout.strip()
    check_ok(warren(["logs", "-f", job_id], home), "logs -f")
    job = json.loads(warren(["result", job_id], home).stdout)
    blob = job["result"]["run"]["stdout"]
    check_eq(blob["size"], 200000, "blob size")
    check("url" in blob, f"a 200 kB output is a url blob: {list(blob)}")
    p = warren(["logs", job_id], home)
    check_ok(p, "logs")
    check_eq(p.stdout, "x" * 199999 + "\n", "the whole output")


def newest_job(home):
    p = warren(["jobs", "--json", "--limit", "1"], home)
    check_ok(p, "jobs")
    jobs = json.loads(p.stdout)["jobs"]
    return jobs[0]["id"] if jobs else None


@test
def cancel_a_job():
    home = admin_home()
    before = newest_job(home)
    path = write("sleeper.py", "import time\nprint('started', flush=True)\ntime.sleep(8)\n")
    proc = subprocess.Popen([WARREN, "submit", path, "--wait"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(home))
    try:
        check_eq(proc.stdout.readline(), "started\n", "the job runs")
        job_id = newest_job(home)
        check(job_id and job_id != before, "the job is listed")
        p = warren(["cancel", job_id], home)
        check_ok(p, "cancel")
        out, err = proc.communicate(timeout=60)
        check_eq(proc.returncode, 125, f"--wait on a cancelled job ({err!r})")
        check("job cancelled" in err, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    p = warren(["status", "--json", job_id], home)
    check_eq(json.loads(p.stdout)["state"], "cancelled", "state")
    p = warren(["cancel", job_id], home)
    check_one_line_error(p, 1, "(conflict)", "cancelling an ended job")


@test
def app_ls_show_add_rm():
    home = admin_home()
    p = warren(["app", "ls"], home)
    check_ok(p, "app ls")
    names = [line.split()[0] for line in p.stdout.splitlines()[1:]]
    for name in ("sh", "python3", "c", "cpp", "node"):
        check(name in names, f"{name} listed: {names}")
    p = warren(["app", "ls", "--json"], home)
    check_ok(p, "app ls --json")
    check("python3" in [a["name"] for a in json.loads(p.stdout)["apps"]], p.stdout)
    p = warren(["app", "show", "python3"], home)
    check_ok(p, "app show")
    spec = json.loads(p.stdout)
    check_eq(spec["name"], "python3", "app show name")

    spec["name"] = "py-test"
    spec["description"] = "first"
    path = write("py-test.json", json.dumps(spec))
    check_ok(warren(["app", "add", path], home), "app add")
    check_one_line_error(warren(["app", "add", path], home), 1, "(conflict)", "app add twice")
    spec["description"] = "second"
    write("py-test.json", json.dumps(spec))
    check_ok(warren(["app", "add", "--replace", path], home), "app add --replace")
    p = warren(["app", "show", "py-test"], home)
    check_eq(json.loads(p.stdout)["description"], "second", "replaced")
    p = warren(["submit", "--app", "py-test", write("via-app.txt", "print('custom app')\n"),
                "--wait"], home)
    check_eq((p.returncode, p.stdout), (0, "custom app\n"), f"a job of the new app ({p.stderr!r})")
    check_ok(warren(["app", "rm", "py-test"], home), "app rm")
    check_one_line_error(warren(["app", "show", "py-test"], home), 1, "(not_found)",
                         "a removed app")
    p = warren(["app", "add", write("not-json.json", "{nope")], home)
    check_one_line_error(p, 1, "not-json.json", "app add of a file that is not JSON")


@test
def users_add_ls_passwd_rm():
    admin = admin_home()
    n = node()
    p = warren(["user", "add", "bob", "--password-stdin"], admin, input="bob-password-1\n")
    check_ok(p, "user add")
    check_one_line_error(warren(["user", "add", "bob", "--password-stdin"], admin,
                                input="bob-password-1\n"), 1, "(conflict)", "user add twice")
    p = warren(["user", "add", "carol", "--admin", "--password-stdin"], admin,
               input="carol-password-1\n")
    check_ok(p, "user add --admin")
    p = warren(["user", "ls"], admin)
    check_ok(p, "user ls")
    rows = {line.split()[0]: line.split()[1] for line in p.stdout.splitlines()[1:]}
    check_eq(rows.get("bob"), "standard_user", f"bob listed: {p.stdout!r}")
    check_eq(rows.get("carol"), "administrator", f"carol listed: {p.stdout!r}")
    p = warren(["user", "ls", "--json"], admin)
    check_ok(p, "user ls --json")
    users = json.loads(p.stdout)["users"]
    check({"admin", "bob", "carol"} <= {u["name"] for u in users}, p.stdout)
    check("password" not in p.stdout, "no password in the list")

    bob = login_home("bob", "bob-password-1")
    check_one_line_error(warren(["user", "ls"], bob), 1, "(forbidden)", "a non-admin's user ls")
    check_one_line_error(warren(["user", "add", "eve", "--password-stdin"], bob,
                                input="eve-password-1\n"), 1, "(forbidden)",
                         "a non-admin's user add")
    check_one_line_error(warren(["user", "rm", "bob"], bob), 1, "(forbidden)",
                         "a non-admin's user rm of oneself")
    # Another user is invisible to a non-administrator: not_found, or forbidden.
    p = warren(["user", "rm", "carol"], bob)
    check_one_line_error(p, 1, "(", "a non-admin's user rm of another")
    check(re.search(r"\((not_found|forbidden)\)$", p.stderr.strip()), p.stderr)
    check_ok(warren(["user", "passwd", "--password-stdin"], bob, input="bob-password-2\n"),
             "user passwd of oneself")
    home = new_home("bob-relogin")
    p = warren(["login", n.url, "--user", "bob", "--password-stdin"], home,
               input="bob-password-1\n")
    check_one_line_error(p, 1, "(unauthorized)", "the old password")
    p = warren(["login", n.url, "--user", "bob", "--password-stdin"], home,
               input="bob-password-2\n")
    check_ok(p, "the new password")
    check_ok(warren(["user", "passwd", "bob", "--password-stdin"], admin,
                    input="bob-password-3\n"), "user passwd by an administrator")
    check_one_line_error(warren(["user", "add", "dave", "--password-stdin"], admin,
                                input="short\n"), 1, "(invalid)", "a short password")

    check_ok(warren(["user", "rm", "bob"], admin), "user rm")
    check_ok(warren(["user", "rm", "carol"], admin), "user rm")
    p = warren(["user", "ls", "--json"], admin)
    check("bob" not in {u["name"] for u in json.loads(p.stdout)["users"]}, "bob removed")
    p = warren(["login", n.url, "--user", "bob", "--password-stdin"], new_home("bob-gone"),
               input="bob-password-3\n")
    check_one_line_error(p, 1, "(unauthorized)", "a removed user's login")


@test
def a_user_sees_only_their_jobs():
    admin = admin_home()
    check_ok(warren(["user", "add", "frank", "--password-stdin"], admin,
                    input="frank-password\n"), "user add")
    frank = login_home("frank", "frank-password")
    admin_job = newest_job(admin)
    check(admin_job, "the administrator has jobs")
    check_one_line_error(warren(["status", admin_job], frank), 1, "(not_found)",
                         "another user's job")
    p = warren(["jobs", "--json"], frank)
    check_ok(p, "jobs")
    check_eq(json.loads(p.stdout)["jobs"], [], "frank has no jobs")


@test
def logout_revokes_and_forgets():
    n = node()
    home = new_home("logout")
    check_ok(warren(["login", n.url, "--user", "admin", "--password-stdin"], home,
                    input=n.admin_password + "\n"), "login")
    token = saved_token(home)
    check_ok(warren(["logout"], home), "logout")
    with open(config_path(home)) as f:
        cfg = json.load(f)
    check("token" not in cfg, f"the token is forgotten: {cfg.keys()}")
    check_eq(cfg.get("url"), n.url, "the URL is kept")
    check_eq(stat.S_IMODE(os.stat(config_path(home)).st_mode), 0o600, "mode after logout")
    check_one_line_error(warren(["jobs"], home), 1, "not logged in", "jobs after logout")
    p = warren(["jobs"], home, WARREN_TOKEN=token)
    check_one_line_error(p, 1, "(unauthorized)", "the revoked token")


harness.run_all()
