#!/usr/bin/env python3
"""CPU use of `shop dashboard`, idle and under a stream of events.

Usage: dashboard.py BIN WORKDIR

A `shop serve` on a fresh database (rate limits off), the CLI logged in to
it as the admin in an isolated config dir, and `shop dashboard` running in a
160x48 tmux pane (its own tmux server and socket). The dashboard's process
is the pane's (started with `exec`), and its CPU time is read from
/proc/PID/stat (utime + stime) at the start and end of each window:

idle    BENCH_DASH_IDLE seconds (10) with nothing happening on the server
        but the dashboard's own polling (health and metrics every second,
        the slower lists every 5 s). Target < 1% of a core.
load    BENCH_DASH_RATE notifications per second (50) queued through
        `POST /api/notifications` on one keep-alive connection, paced; each
        makes two events (`notification.queued`, then `notification.sent`
        from the local sink), so ~100 events/s reach the dashboard through
        its event stream. After 2 s of warm-up, BENCH_DASH_LOAD seconds (10)
        are measured; the event rate actually achieved is measured too, from
        the event log's total before and after the window.

Prints one line for run.sh:
    dashboard IDLE_CPU_PCT LOAD_CPU_PCT EVENTS_PER_S RSS_KIB
Exits non-zero if the server or the dashboard does not start.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ADMIN_EMAIL = os.environ.get("SHOP_ADMIN_EMAIL", "admin@example.com")
ADMIN_PASSWORD = os.environ.get("SHOP_ADMIN_PASSWORD", "")
IDLE_S = float(os.environ.get("BENCH_DASH_IDLE", "10"))
LOAD_S = float(os.environ.get("BENCH_DASH_LOAD", "10"))
RATE = float(os.environ.get("BENCH_DASH_RATE", "50"))
TICKS = os.sysconf("SC_CLK_TCK")


def fail(message: str) -> None:
    sys.exit(f"dashboard.py: {message}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Api:
    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.token = ""

    def request(self, method: str, path: str, body=None):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server closes a keep-alive connection idle for longer than
            # its header read timeout (10 s), and this one waits out the idle
            # measurement: open a new one, as any HTTP client would.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
        return response.status, response.read()

    def events_total(self) -> int:
        status, data = self.request("GET", "/api/events/log?limit=1")
        if status != 200:
            fail(f"event log answered {status}: {data[:200]!r}")
        return json.loads(data)["total"]


def main() -> None:
    binary, work = sys.argv[1], sys.argv[2]
    if shutil.which("tmux") is None:
        fail("tmux is required")
    os.makedirs(work, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SHOP_LOG="warn", SHOP_RATE_LIMIT_IP="0", SHOP_RATE_LIMIT_TOKEN="0",
               SHOP_RATE_LIMIT_LOGIN="0", SHOP_ACCESS_TOKEN_TTL="3600")
    with open(os.path.join(work, "server.log"), "wb") as err:
        server = subprocess.Popen(
            [binary, "serve", "--addr", f"127.0.0.1:{port}", "--db", os.path.join(work, "shop.db")],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env)
    socket_name = f"shop-bench-{os.getpid()}"
    tmux = ["tmux", "-L", socket_name, "-f", "/dev/null"]
    try:
        api = Api(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                if api.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                api = Api(port)
            if time.monotonic() > deadline or server.poll() is not None:
                fail("the server did not start")
            time.sleep(0.05)
        status, data = api.request("POST", "/api/users/login",
                                   {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        if status != 200:
            fail(f"admin login answered {status}")
        api.token = json.loads(data)["access_token"]

        cli_env = {
            "XDG_CONFIG_HOME": os.path.join(work, "cli-config"),
            "HOME": os.path.join(work, "home"),
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        }
        os.makedirs(cli_env["HOME"], exist_ok=True)
        login = subprocess.run(
            [binary, "--url", url, "login", "--email", ADMIN_EMAIL, "--password-stdin"],
            input=ADMIN_PASSWORD + "\n", capture_output=True, text=True,
            env=dict(os.environ, **cli_env))
        if login.returncode != 0:
            fail(f"shop login failed: {login.stderr}")
        assignments = " ".join(f"{k}='{v}'" for k, v in cli_env.items())
        command = f"exec env {assignments} SHOP_URL={url} '{binary}' dashboard"
        subprocess.run(tmux + ["new-session", "-d", "-s", "dash", "-x", "160", "-y", "48", command],
                       check=True)
        pid = int(subprocess.run(tmux + ["display-message", "-p", "-t", "dash", "#{pane_pid}"],
                                 capture_output=True, text=True, check=True).stdout)
        deadline = time.monotonic() + 30
        while True:
            screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "dash"],
                                    capture_output=True, text=True).stdout
            if "live" in screen:
                break
            if time.monotonic() > deadline:
                fail(f"the dashboard did not come up:\n{screen}")
            time.sleep(0.1)
        time.sleep(3)  # past the start: backfill, first slow polls

        before = cpu_seconds(pid)
        time.sleep(IDLE_S)
        idle = (cpu_seconds(pid) - before) / IDLE_S * 100

        stop = threading.Event()
        errors = []

        def pace() -> None:
            load = Api(port)
            load.token = api.token
            interval = 1.0 / RATE
            due = time.monotonic()
            i = 0
            while not stop.is_set():
                body = {"channel": "email", "to": f"bench{i}@example.com", "template": "welcome",
                        "vars": {"name": f"Bench {i}"}}
                status, data = load.request("POST", "/api/notifications", body)
                if status >= 300:
                    errors.append(f"{status} {data[:200]!r}")
                    return
                i += 1
                due += interval
                time.sleep(max(0.0, due - time.monotonic()))

        pacer = threading.Thread(target=pace)
        pacer.start()
        time.sleep(2)
        events_before = api.events_total()
        before = cpu_seconds(pid)
        time.sleep(LOAD_S)
        loaded = (cpu_seconds(pid) - before) / LOAD_S * 100
        events = (api.events_total() - events_before) / LOAD_S
        stop.set()
        pacer.join()
        if errors:
            fail(f"queueing a notification failed: {errors[0]}")
        print(f"dashboard {idle:.2f} {loaded:.2f} {events:.0f} {rss_kib(pid)}")
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
