#!/usr/bin/env python3
"""Notification figures of `shop serve`: queue drain rate and enqueue cost.

Usage: notifications.py BIN WORKDIR RUNS COUNT

drain (RUNS runs, each on a fresh server and database)
    COUNT email notifications (template welcome, local sink) are queued through
    `POST /api/notifications` over 64 keep-alive connections, all scheduled
    for one instant T a few seconds ahead, so none is sent while the others
    are being queued: the enqueue is timed on its own and the drain starts
    from a full queue. The server runs with SHOP_NOTIFY_POLL_MS=600000, so the
    dispatcher does not find the rows by itself when T passes; just after T
    one more notification, due at once, is queued and its enqueue wakes the
    dispatcher (the clock starts before that request is sent). The queue is
    drained when all COUNT + 1 are `sent`, which is observed by counting
    `sent` rows in the database every 5 ms through a read-only SQLite
    connection (a WAL reader: it never blocks the server's writer).
    Two figures: `wall` = (COUNT + 1) / (clock start -> all sent seen), the
    one checked against the target; `first-last` = (COUNT - 1) / (first
    `sent_at` -> last `sent_at` as recorded by the server), for information.

enqueue (one server, default settings)
    Over one keep-alive connection, one request at a time: 300 warm-up pairs,
    then 2,000 pairs of `GET /api/version` (the baseline) and `POST
    /api/notifications` (a due notification: validation, template lookup and
    the one write transaction inserting the row and its `notification.queued`
    event), interleaved so noise hits both alike. The difference of their
    median (and p99) latencies is what queueing costs a request when it does
    it inline: an upper bound of what an event's reaction could cost the
    request that caused the event, which pays nothing of it in fact, since
    the reactor queues from the event log in the background.
    Then 20 registrations one at a time (`POST /api/users/register`, whose
    `user.registered` event makes the welcome email): their latency (mostly
    the argon2 hash) and, from the database, how long after the event was
    logged its welcome notification was queued.

The environment is inherited (run.sh clears SHOP_*); rate limits are turned
off here. Prints `key value...` lines on stdout for run.sh:
    drain RUN ENQUEUE_S ENQUEUE_PER_S WALL_S WALL_PER_S FIRST_LAST_PER_S BATCH
    enqueue BASE_P50_MS BASE_P99_MS POST_P50_MS POST_P99_MS
    register P50_MS P99_MS LAG_P50_MS LAG_MAX_MS
Exits non-zero if a server does not start, a request fails, a notification
is not sent, or the enqueue did not finish before T (raise BENCH_NOTIFY_LEAD).
"""

import asyncio
import datetime
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

ADMIN_EMAIL = os.environ.get("SHOP_ADMIN_EMAIL", "admin@example.com")
ADMIN_PASSWORD = os.environ.get("SHOP_ADMIN_PASSWORD", "")
CONNECTIONS = 64
# Seconds from the start of the enqueue to T; the enqueue must end before T.
LEAD_S = float(os.environ.get("BENCH_NOTIFY_LEAD", "8"))
DRAIN_TIMEOUT_S = 300.0
ENQUEUE_PAIRS = 2000
ENQUEUE_WARMUP = 300
REGISTRATIONS = 20


def fail(message: str) -> None:
    sys.exit(f"notifications.py: {message}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `shop serve` on a fresh database under `run_dir`."""

    def __init__(self, binary: str, run_dir: str, extra_env: dict):
        os.makedirs(run_dir, exist_ok=True)
        self.db = os.path.join(run_dir, "shop.db")
        self.port = free_port()
        self.err_path = os.path.join(run_dir, "stderr.log")
        env = dict(
            os.environ,
            SHOP_LOG="warn",
            SHOP_RATE_LIMIT_IP="0",
            SHOP_RATE_LIMIT_TOKEN="0",
            SHOP_RATE_LIMIT_LOGIN="0",
            SHOP_RATE_LIMIT_REGISTER="0",
            # The drains queue thousands of welcome emails, which the hourly
            # cap on mail to unconfirmed addresses would count.
            SHOP_NOTIFY_UNVERIFIED_PER_HOUR="0",
            SHOP_ACCESS_TOKEN_TTL="3600",
            **extra_env,
        )
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [binary, "serve", "--addr", f"127.0.0.1:{self.port}", "--db", self.db],
                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-2000:]


class Conn:
    """One keep-alive HTTP/1.1 connection; just enough of the protocol for shop."""

    def __init__(self, port: int, token: str = ""):
        self.port, self.token = port, token
        self.reader = self.writer = None

    async def open(self) -> "Conn":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body=None):
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        if body is not None:
            head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(payload)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError(f"{method} {path}: connection closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def ready(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            fail(f"server exited with {server.proc.returncode}:\n{server.tail()}")
        try:
            conn = await Conn(server.port).open()
            try:
                status, _ = await conn.request("GET", "/health")
                if status == 200:
                    return
            finally:
                conn.close()
        except (ConnectionError, OSError):
            pass
        await asyncio.sleep(0.02)
    fail(f"server not healthy within 30 s:\n{server.tail()}")


async def login(port: int) -> str:
    conn = await Conn(port).open()
    try:
        status, data = await conn.request(
            "POST", "/api/users/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    finally:
        conn.close()
    if status != 200:
        fail(f"admin login answered {status}: {data[:300]!r}")
    return json.loads(data)["access_token"]


def rfc3339(epoch_s: float) -> str:
    at = datetime.datetime.fromtimestamp(epoch_s, tz=datetime.timezone.utc)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def welcome(i: int, send_at=None) -> dict:
    body = {"channel": "email", "to": f"user{i}@example.com", "template": "welcome",
            "vars": {"name": f"User {i}"}}
    if send_at is not None:
        body["send_at"] = send_at
    return body


async def enqueue_all(port: int, token: str, count: int, send_at: str) -> None:
    """Queues `count` notifications over CONNECTIONS connections."""
    next_index = iter(range(count))

    async def worker() -> None:
        conn = await Conn(port, token).open()
        try:
            for i in next_index:
                status, data = await conn.request("POST", "/api/notifications", welcome(i, send_at))
                if status != 201:
                    fail(f"POST /api/notifications answered {status}: {data[:300]!r}")
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))


def count_sent(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM notifications WHERE status = 'sent'").fetchone()[0]


async def drain_run(binary: str, run_dir: str, run: int, count: int) -> str:
    batch = os.environ.get("SHOP_NOTIFY_BATCH_SIZE", "default")
    server = Server(binary, run_dir, {"SHOP_NOTIFY_POLL_MS": "600000"})
    try:
        await ready(server)
        token = await login(server.port)
        started = time.time()
        due = started + LEAD_S
        await enqueue_all(server.port, token, count, rfc3339(due))
        enqueued = time.time()
        if enqueued >= due - 0.2:
            fail(f"queueing {count} took {enqueued - started:.1f} s, not less than the "
                 f"{LEAD_S:.0f} s lead: raise BENCH_NOTIFY_LEAD")
        db = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
        # The bootstrap admin's welcome email is sent already; nothing of ours may be.
        early = db.execute("SELECT count(*) FROM notifications WHERE status = 'sent' "
                           "AND send_at >= ?", (int(due * 1000) - 1,)).fetchone()[0]
        if early:
            fail(f"{early} notifications were sent before they were due")
        done = count_sent(db) + count + 1
        await asyncio.sleep(due - time.time() + 0.05)
        conn = await Conn(server.port, token).open()
        try:
            clock_start = time.perf_counter()
            status, data = await conn.request("POST", "/api/notifications", welcome(count))
        finally:
            conn.close()
        if status != 201:
            fail(f"the wake-up POST answered {status}: {data[:300]!r}")
        while count_sent(db) < done:
            if time.perf_counter() - clock_start > DRAIN_TIMEOUT_S:
                fail(f"{done - count_sent(db)} of {count + 1} not sent after {DRAIN_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.005)
        wall = time.perf_counter() - clock_start
        first, last, undelivered = db.execute(
            "SELECT min(sent_at), max(sent_at), "
            "(SELECT count(*) FROM notifications WHERE status != 'sent') "
            "FROM notifications WHERE status = 'sent' AND send_at >= ?",
            (int(due * 1000) - 1,)).fetchone()
        db.close()
        if undelivered:
            fail(f"{undelivered} notifications not sent")
    finally:
        server.stop()
    first_last = (count - 1) / max((last - first) / 1000.0, 1e-3)
    enqueue_s = enqueued - started
    return (f"drain {run} {enqueue_s:.3f} {count / enqueue_s:.0f} {wall:.3f} "
            f"{(count + 1) / wall:.0f} {first_last:.0f} {batch}")


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def enqueue_cost(binary: str, run_dir: str) -> list:
    server = Server(binary, run_dir, {})
    try:
        await ready(server)
        token = await login(server.port)
        conn = await Conn(server.port, token).open()
        base, post = [], []
        try:
            for i in range(ENQUEUE_WARMUP + ENQUEUE_PAIRS):
                t0 = time.perf_counter()
                status, _ = await conn.request("GET", "/api/version")
                t1 = time.perf_counter()
                status2, data = await conn.request("POST", "/api/notifications", welcome(i))
                t2 = time.perf_counter()
                if status != 200 or status2 != 201:
                    fail(f"version answered {status}, enqueue {status2}: {data[:300]!r}")
                if i >= ENQUEUE_WARMUP:
                    base.append((t1 - t0) * 1000)
                    post.append((t2 - t1) * 1000)
            registrations = []
            for i in range(REGISTRATIONS):
                body = {"email": f"new{i}@example.com", "password": f"Bench-pass-{i}-long!",
                        "name": f"New {i}"}
                t0 = time.perf_counter()
                status, data = await conn.request("POST", "/api/users/register", body)
                registrations.append((time.perf_counter() - t0) * 1000)
                if status != 201:
                    fail(f"register answered {status}: {data[:300]!r}")
        finally:
            conn.close()
        # The reactor runs behind the requests: wait for every welcome email.
        db = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
        query = ("SELECT n.created_at - e.occurred_at FROM events e JOIN notifications n "
                 "ON n.event_id = e.id WHERE e.type = 'user.registered'")
        deadline = time.monotonic() + 30
        while len(lags := [row[0] for row in db.execute(query)]) < REGISTRATIONS:
            if time.monotonic() > deadline:
                fail(f"only {len(lags)} of {REGISTRATIONS} welcome emails were queued")
            await asyncio.sleep(0.05)
        db.close()
    finally:
        server.stop()
    return [
        "enqueue " + " ".join(f"{v:.3f}" for v in (
            statistics.median(base), percentile(base, 0.99),
            statistics.median(post), percentile(post, 0.99))),
        "register " + " ".join(f"{v:.1f}" for v in (
            statistics.median(registrations), percentile(registrations, 0.99),
            statistics.median(lags), max(lags))),
    ]


async def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    binary, workdir, runs, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for run in range(1, runs + 1):
        print(await drain_run(binary, os.path.join(workdir, f"drain-{run}"), run, count), flush=True)
    for line in await enqueue_cost(binary, os.path.join(workdir, "enqueue")):
        print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
