#!/usr/bin/env python3
"""Time `shop serve` from spawn to the first 200 from GET /health.

Usage: startup.py BIN WORKDIR RUNS [--reuse-db]

Each run picks a free port, starts the clock, spawns
`BIN serve --addr 127.0.0.1:PORT --db WORKDIR/run-N/shop.db` and polls
GET /health in a tight loop (no sleep) until it answers 200, then stops the
server. Without --reuse-db every run gets a fresh, empty database (so the
bootstrap admin's argon2 hash is part of the time); with --reuse-db the
database of a first, untimed start is reused (a restart of an existing shop).

The environment (SHOP_ADMIN_*, rate limits, ...) is inherited from the caller;
SHOP_LOG=info and SHOP_LOG_FORMAT=json are forced so the server's own
`startup_ms` log field can be read back from stdout.

Prints one line per run on stdout: "<wall_ms> <server_reported_startup_ms or ->".
Exits non-zero if a server fails to start or to become healthy within 30 s.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

HEALTH_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_startup_ms(log_path: str):
    """The `startup_ms` field of the server's "listening" log line, if any."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if "startup_ms" not in line:
                    continue
                try:
                    value = json.loads(line).get("startup_ms")
                except ValueError:
                    continue
                if value is not None:
                    return value
    except OSError:
        pass
    return None


def fail(message: str, err_path: str) -> None:
    try:
        with open(err_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-2000:]
    except OSError:
        tail = ""
    sys.exit(f"startup.py: {message}\n{tail}")


def one_run(binary: str, run_dir: str, db: str) -> str:
    port = free_port()
    env = dict(os.environ, SHOP_LOG="info", SHOP_LOG_FORMAT="json")
    out_path = os.path.join(run_dir, "stdout.log")
    err_path = os.path.join(run_dir, "stderr.log")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [binary, "serve", "--addr", f"127.0.0.1:{port}", "--db", db],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
        )
        try:
            while True:
                if proc.poll() is not None:
                    fail(f"server exited with {proc.returncode}; its stderr:", err_path)
                if time.perf_counter() - start > HEALTH_TIMEOUT_S:
                    fail(f"no 200 from /health within {HEALTH_TIMEOUT_S:.0f} s; server stderr:", err_path)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT_S)
                try:
                    conn.request("GET", "/health")
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        elapsed_ms = (time.perf_counter() - start) * 1000.0
                        break
                except (ConnectionError, http.client.HTTPException, socket.timeout):
                    pass  # not listening yet: try again at once
                finally:
                    conn.close()
        finally:
            stop(proc)
    # Guard against the (unlikely) race of someone else grabbing the port.
    with open(err_path, encoding="utf-8", errors="replace") as f:
        if f"listening on http://127.0.0.1:{port}" not in f.read():
            fail(f"the 200 did not come from our server (port {port}); server stderr:", err_path)
    reported = server_startup_ms(out_path)
    return f"{elapsed_ms:.1f} {reported if reported is not None else '-'}"


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    reuse = "--reuse-db" in sys.argv[1:]
    if len(args) != 3:
        sys.exit(__doc__)
    binary, workdir, runs = args[0], args[1], int(args[2])
    shared_db = os.path.join(workdir, "reused", "shop.db")
    if reuse:
        os.makedirs(os.path.dirname(shared_db), exist_ok=True)
        one_run(binary, os.path.dirname(shared_db), shared_db)  # create it; not timed
    for i in range(1, runs + 1):
        run_dir = os.path.join(workdir, f"{'reuse' if reuse else 'fresh'}-{i}")
        os.makedirs(run_dir, exist_ok=True)
        db = shared_db if reuse else os.path.join(run_dir, "shop.db")
        print(one_run(binary, run_dir, db), flush=True)


if __name__ == "__main__":
    main()
