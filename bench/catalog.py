#!/usr/bin/env python3
"""Import throughput and memory of `shop serve` on a generated catalog.

Usage: catalog.py BIN WORKDIR COUNT RUNS

Generates COUNT products as NDJSON with fixtures/generate.py (the sample
catalog's vocabulary, unique SKUs), then, RUNS times, starts a fresh server
on a fresh database and POSTs the file to /api/products/import as one
streamed body (read from disk in 256 KiB blocks, never held whole), timing
from the first byte sent to the summary received: end to end, parsing,
validation and batched upserts included.

Memory: the server's RssAnon (its heap: what streaming must keep flat; the
file-backed pages of SQLite's memory map are the OS page cache and are not
counted) is sampled every 20 ms during the import. To show it flat, one more
run imports only the first third of the file: a server that held the
upload, or anything per row, would peak three times lower there.

Prints per run: "import RUN ROWS SECONDS ROWS_PER_S ANON_BEFORE_KIB ANON_PEAK_KIB FILE_BYTES",
the last line for the third of the file.
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_anon_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def start(binary: str, run_dir: str):
    os.makedirs(run_dir, exist_ok=True)
    err_path = os.path.join(run_dir, "stderr.log")
    env = dict(os.environ, SHOP_RATE_LIMIT_IP="0", SHOP_RATE_LIMIT_TOKEN="0", SHOP_LOG="warn")
    err = open(err_path, "w", encoding="utf-8")
    proc = subprocess.Popen(
        [binary, "serve", "--addr", "127.0.0.1:0", "--db", os.path.join(run_dir, "shop.db")],
        stdout=subprocess.DEVNULL, stderr=err, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(err_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("shop: listening on http://"):
                    host, port = line.strip().rsplit("/", 1)[1].split(":")
                    return proc, host, int(port)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"catalog.py: the server did not start; see {err_path}")


def request(host, port, method, path, body=None, token=None, headers=None):
    conn = http.client.HTTPConnection(host, port, timeout=600, blocksize=256 * 1024)
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        all_headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        sys.exit(f"catalog.py: {method} {path} answered {response.status}: {data[:300]!r}")
    return json.loads(data) if data else None


def main() -> None:
    binary, work, count, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "products.ndjson")
    with open(data, "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, os.path.join(ROOT, "fixtures", "generate.py"), "--ndjson", str(count)],
                       stdout=out, check=True)
    third = os.path.join(work, "third.ndjson")
    with open(data, "rb") as full, open(third, "wb") as out:
        for _ in range(count // 3):
            out.write(full.readline())
    plan = [(run, data, count) for run in range(1, runs + 1)] + [(runs + 1, third, count // 3)]
    for run, data, count in plan:
        size = os.path.getsize(data)
        proc, host, port = start(binary, os.path.join(work, f"run-{run}"))
        try:
            login = request(host, port, "POST", "/api/users/login",
                            {"email": os.environ["SHOP_ADMIN_EMAIL"], "password": os.environ["SHOP_ADMIN_PASSWORD"]})
            token = login["access_token"]
            time.sleep(0.5)
            before = rss_anon_kib(proc.pid)
            peak = [before]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], rss_anon_kib(proc.pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.monotonic()
            with open(data, "rb") as body:
                summary = request(host, port, "POST", "/api/products/import?format=ndjson", body, token,
                                  {"Content-Type": "application/x-ndjson", "Content-Length": str(size)})
            elapsed = time.monotonic() - started
            done.set()
            sampler.join()
            if summary["failed"] or summary["created"] != count:
                sys.exit(f"catalog.py: the import did not create every product: {summary}")
            print(f"import {run} {count} {elapsed:.3f} {count / elapsed:.0f} {before} {peak[0]} {size}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
