#!/usr/bin/env python3
"""Webhook delivery throughput of `shop serve` to a local receiver.

Usage: webhooks.py BIN WORKDIR RUNS COUNT

Each run: a fresh server and database, allowed to deliver over http to a
receiver on 127.0.0.1 (a separate process: asyncio, HTTP/1.1 keep-alive,
answers 204 at once and counts distinct `webhook-id`s). One endpoint
subscribes to `product.created`; COUNT products are imported as one NDJSON
upload, so COUNT events are logged within about a second and the feeder
queues COUNT deliveries from the log. The figure is COUNT / (first delivery
received -> COUNT-th distinct delivery received), as the receiver's clock
sees it; it includes the feeder and the writer's work of recording every
outcome, and the tail of the import overlaps its start (so it is a lower
bound). Afterwards the database must hold COUNT `succeeded` deliveries.

Then, on one more server, what a subscribed endpoint adds to a checkout:
CHECKOUTS paid orders (`POST /api/orders`, one item, the 4242 card) one at a
time over one keep-alive connection, in blocks of 50 that alternate between
the endpoint (`order.*`, the same receiver) active and disabled; the
difference of the two medians (and p99s). Delivery runs off the event log,
so it should be nothing measurable.

Prints `run N COUNT SECONDS PER_S` lines and one
`checkout WITH_P50 WITHOUT_P50 WITH_P99 WITHOUT_P99 DELIVERED` line (ms) on stdout for run.sh.
"""

import asyncio
import json
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

ADMIN_EMAIL = os.environ.get("SHOP_ADMIN_EMAIL", "admin@example.com")
ADMIN_PASSWORD = os.environ.get("SHOP_ADMIN_PASSWORD", "")
TIMEOUT_S = 300.0


def fail(message: str) -> None:
    sys.exit(f"webhooks.py: {message}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receiver(port: int, count: int, results) -> None:
    """Answers 204 to every POST; reports (first, last) receive times once `count` distinct ids came."""
    seen = set()
    first = [None]

    class Handler(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1").split("\r\n")
                length, wid = 0, None
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "webhook-id":
                        wid = value.strip()
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length:]
                now = time.time()
                if first[0] is None:
                    first[0] = now
                if wid is not None and wid not in seen:
                    seen.add(wid)
                    if len(seen) == count:
                        results.send((first[0], now))
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Handler, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def request(port: int, method: str, path: str, body: bytes, token: str = "",
            content_type: str = "application/json"):
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
                f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        payload = out
    return status, payload


def run_once(binary: str, run_dir: str, count: int, run: int) -> None:
    os.makedirs(run_dir, exist_ok=True)
    hook_port, port = free_port(), free_port()
    parent, child = multiprocessing.Pipe()
    recv = multiprocessing.Process(target=receiver, args=(hook_port, count, child), daemon=True)
    recv.start()
    db = os.path.join(run_dir, "shop.db")
    env = dict(os.environ, SHOP_LOG="warn", SHOP_RATE_LIMIT_IP="0", SHOP_RATE_LIMIT_TOKEN="0",
               SHOP_RATE_LIMIT_LOGIN="0", SHOP_ACCESS_TOKEN_TTL="3600")
    err_path = os.path.join(run_dir, "stderr.log")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [binary, "serve", "--addr", f"127.0.0.1:{port}", "--db", db,
             "--webhook-allow-host", f"127.0.0.1:{hook_port}"],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "GET", "/health", b"")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                fail("the server did not start:\n" + open(err_path).read()[-2000:])
            time.sleep(0.02)
        status, data = request(port, "POST", "/api/users/login",
                               json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode())
        if status != 200:
            fail(f"login answered {status}: {data[:300]!r}")
        token = json.loads(data)["access_token"]
        hook = {"url": f"http://127.0.0.1:{hook_port}/hooks", "events": ["product.created"]}
        status, data = request(port, "POST", "/api/webhooks", json.dumps(hook).encode(), token)
        if status != 201:
            fail(f"creating the endpoint answered {status}: {data[:300]!r}")
        lines = "".join(
            json.dumps({"sku": f"HOOK-{run}-{i:07d}", "name": f"Bench product {i}", "price_cents": 100 + i % 900})
            + "\n" for i in range(count)).encode()
        status, data = request(port, "POST", "/api/products/import?format=ndjson", lines, token,
                               "application/x-ndjson")
        if status != 200:
            fail(f"the import answered {status}: {data[:300]!r}")
        if not parent.poll(TIMEOUT_S):
            fail(f"not all {count} deliveries arrived within {TIMEOUT_S:.0f} s")
        first, last = parent.recv()
        # Every delivery is recorded as succeeded (the outcome commits after the answer).
        deadline = time.monotonic() + 60
        while True:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                done = conn.execute(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'").fetchone()[0]
            if done == count:
                break
            if time.monotonic() > deadline:
                fail(f"{done} of {count} deliveries recorded as succeeded")
            time.sleep(0.1)
        seconds = last - first
        print(f"run {run} {count} {seconds:.3f} {count / seconds:.0f}", flush=True)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        recv.kill()


class Conn:
    """One keep-alive HTTP/1.1 connection, for latency figures."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")

    def request(self, method: str, path: str, body) -> tuple:
        payload = json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                f"Authorization: Bearer {self.token}", "Content-Type: application/json",
                f"Content-Length: {len(payload)}"]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status = int(self.file.readline().split()[1])
        length = 0
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, self.file.read(length)


def checkout_cost(binary: str, run_dir: str, count: int) -> None:
    os.makedirs(run_dir, exist_ok=True)
    hook_port, port = free_port(), free_port()
    parent, child = multiprocessing.Pipe()
    # The receiver reports when it has seen `count` deliveries; only the active blocks send any.
    recv = multiprocessing.Process(target=receiver, args=(hook_port, 10**9, child), daemon=True)
    recv.start()
    db = os.path.join(run_dir, "shop.db")
    env = dict(os.environ, SHOP_LOG="warn", SHOP_RATE_LIMIT_IP="0", SHOP_RATE_LIMIT_TOKEN="0",
               SHOP_RATE_LIMIT_LOGIN="0", SHOP_ACCESS_TOKEN_TTL="3600", SHOP_MAX_UNPAID_ORDERS="0")
    err_path = os.path.join(run_dir, "stderr.log")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [binary, "serve", "--addr", f"127.0.0.1:{port}", "--db", db,
             "--webhook-allow-host", f"127.0.0.1:{hook_port}"],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "GET", "/health", b"")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                fail("the server did not start:\n" + open(err_path).read()[-2000:])
            time.sleep(0.02)
        status, data = request(port, "POST", "/api/users/login",
                               json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode())
        token = json.loads(data)["access_token"]
        product = {"sku": "HOOK-BUY", "name": "Checkout bench", "price_cents": 1000, "stock": 10000000}
        status, data = request(port, "POST", "/api/products", json.dumps(product).encode(), token)
        if status != 201:
            fail(f"creating the product answered {status}: {data[:300]!r}")
        hook = {"url": f"http://127.0.0.1:{hook_port}/hooks", "events": ["order.*"]}
        status, data = request(port, "POST", "/api/webhooks", json.dumps(hook).encode(), token)
        if status != 201:
            fail(f"creating the endpoint answered {status}: {data[:300]!r}")
        hook_id = json.loads(data)["id"]
        conn = Conn(port, token)
        order = {"items": [{"sku": "HOOK-BUY", "quantity": 1}], "customer_email": "bench@example.com",
                 "payment": {"method": "card", "card_number": "4242424242424242",
                             "exp_month": 12, "exp_year": 2035}}
        samples = {"active": [], "disabled": []}
        for i in range(30):
            conn.request("POST", "/api/orders", order)  # warm-up
        block, state = 50, "active"
        for start in range(0, 2 * count, block):
            for _ in range(block):
                t0 = time.perf_counter()
                status, data = conn.request("POST", "/api/orders", order)
                samples[state].append((time.perf_counter() - t0) * 1000)
                if status != 201:
                    fail(f"a checkout answered {status}: {data[:300]!r}")
            state = "disabled" if state == "active" else "active"
            status, data = conn.request("PATCH", f"/api/webhooks/{hook_id}", {"status": state})
            if status != 200:
                fail(f"switching the endpoint answered {status}: {data[:300]!r}")
        def pct(values, p):
            values = sorted(values)
            return values[min(len(values) - 1, int(len(values) * p))]
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn_db:
            delivered = conn_db.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0]
        print(f"checkout {pct(samples['active'], 0.5):.3f} {pct(samples['disabled'], 0.5):.3f} "
              f"{pct(samples['active'], 0.99):.3f} {pct(samples['disabled'], 0.99):.3f} {delivered}", flush=True)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        recv.kill()


def main() -> None:
    if len(sys.argv) != 5:
        fail("usage: webhooks.py BIN WORKDIR RUNS COUNT")
    binary, work, runs, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for run in range(1, runs + 1):
        run_once(binary, os.path.join(work, f"run{run}"), count, run)
    checkout_cost(binary, os.path.join(work, "checkout"), int(os.environ.get("BENCH_WEBHOOK_CHECKOUTS", "1000")))


if __name__ == "__main__":
    main()
