#!/usr/bin/env python3
"""Checkout on PostgreSQL, one node and two behind nginx, beside SQLite (issue 15).

Run by bench/run.sh (BENCH_ONLY=postgres for this section alone); by hand:
    python3 bench/postgres.py target/release/shop

Starts a throwaway PostgreSQL cluster (initdb on a temp dir, a free port, as
the `postgres` user when run as root, with pg_stat_statements), then three
shops, each on a fresh database with one product of 10,000,000 units:
    sqlite  one node on an SQLite file (what the other figures are compared to)
    pg1     one node on PostgreSQL
    pg2     two nodes on one PostgreSQL database behind nginx (round robin)
and drives POST /api/orders (one unit, paid with the simulated card) with wrk
at BENCH_CONNECTIONS connections for BENCH_DURATION seconds, the three
interleaved round by round (BENCH_RUNS rounds) so that machine noise hits them
alike; each figure is the median of its rounds. Everything shares the
machine's cores (wrk, nginx, PostgreSQL and the nodes), so the ratios are
what the targets are about:
    pg1 >= 0.5x sqlite, and pg2 >= 1.0x pg1.
For PostgreSQL, pg_stat_statements counts what the checkouts sent: top-level
statements per checkout (BEGIN and COMMIT included: each is a round trip;
statements run by triggers and foreign-key checks are not) and transactions
per checkout, from the counters around one extra run on pg1. Both include the
work each checkout sets off in the background (the notification reactor, the
webhook feeder, co-purchase counting), as a real shop pays it.

BENCH_PG_SKUS=N spreads the checkouts over N products instead of one, to
tell the one stock row's lock from the rest of the cost.

Prints a summary line per figure: `rate NAME RPS P99_MS`, `ratio ...` and
`statements ...` for bench/run.sh to read, after human-readable lines.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SHOP = sys.argv[1] if len(sys.argv) > 1 else "target/release/shop"
DURATION = int(os.environ.get("BENCH_DURATION", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SECRET = "bench-shared-jwt-secret-0123456789abcdef"
ADMIN = ("admin@bench.local", "bench-Admin-passphrase-2026")
CARD = {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035}


def log(message):
    print(f"postgres: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin():
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    versions = sorted(
        (int(v), v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit()
    )
    return f"/usr/lib/postgresql/{versions[-1][1]}/bin"


class Cluster:
    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, user="postgres")
        self.run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "shop", "--no-sync")
        # Durable commits (fsync on) as a real server has them, like SQLite's
        # `process` durability is not: the comparison favours SQLite here.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_preload_libraries=pg_stat_statements "
            "-c pg_stat_statements.track=top -c synchronous_commit=on"
        )
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-o", options, "-l", f"{self.dir}/log", "-w", "start")
        self.admin_url = f"postgres://shop@127.0.0.1:{self.port}/postgres"
        self.sql("CREATE EXTENSION pg_stat_statements")

    def run(self, tool, *args):
        command = [os.path.join(pg_bin(), tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{tool} failed: {done.stderr.strip()}")

    def sql(self, statement, database="postgres"):
        url = f"postgres://shop@127.0.0.1:{self.port}/{database}"
        out = subprocess.run(
            ["psql", url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", statement],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def database(self, name):
        self.sql(f"CREATE DATABASE {name}")
        return f"postgres://shop@127.0.0.1:{self.port}/{name}"

    def stop(self):
        try:
            self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass


def spawn(env, work, name):
    port = free_port()
    full = {
        k: v for k, v in os.environ.items() if not k.startswith("SHOP_")
    }
    full.update({
        "XDG_CONFIG_HOME": os.path.join(work, f"{name}-config"),
        "SHOP_ADMIN_EMAIL": ADMIN[0],
        "SHOP_ADMIN_PASSWORD": ADMIN[1],
        "SHOP_LOG": "warn",
        "SHOP_RATE_LIMIT_IP": "0",
        "SHOP_RATE_LIMIT_TOKEN": "0",
        "SHOP_RATE_LIMIT_REGISTER": "0",
        "SHOP_MAX_UNPAID_ORDERS": "0",
        "SHOP_ADDR": f"127.0.0.1:{port}",
    })
    full.update(env)
    log_file = open(os.path.join(work, f"{name}.log"), "w")
    process = subprocess.Popen([SHOP, "serve"], env=full, stdout=log_file, stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{name} did not start; see {log_file.name}")
        time.sleep(0.05)


def call(url, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def prepare(url):
    """The admin's token and the products, with stock for every run."""
    token = call(url, "POST", "/api/users/login", {"email": ADMIN[0], "password": ADMIN[1]})["access_token"]
    for sku in skus():
        call(url, "POST", "/api/products",
             {"sku": sku, "name": f"Bench item {sku}", "price_cents": 999, "stock": 10_000_000,
              "requires_shipping": False}, token)
    return token


def skus():
    """BENCH-BUY, or BENCH_PG_SKUS of them to spread the checkouts over (by
    hand, to tell the one stock row's lock from the rest of the cost)."""
    count = int(os.environ.get("BENCH_PG_SKUS", "1"))
    return ["BENCH-BUY"] if count == 1 else [f"BENCH-BUY-{i}" for i in range(count)]


def start_nginx(work, upstreams):
    port = free_port()
    directory = os.path.join(work, "nginx")
    os.makedirs(directory)
    user = "user root;" if os.geteuid() == 0 else ""
    servers = "".join(f"        server {u.removeprefix('http://')};\n" for u in upstreams)
    config = f"""{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    upstream shop {{
{servers}        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    path = os.path.join(directory, "nginx.conf")
    with open(path, "w") as f:
        f.write(config)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([nginx, "-p", directory, "-e", f"{directory}/error.log", "-c", path])
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if time.time() > deadline:
                raise SystemExit("nginx did not start")
            time.sleep(0.02)


def wrk(url, token, work, duration):
    script = os.path.join(work, "checkout.lua")
    bodies = [json.dumps({"items": [{"sku": sku, "quantity": 1}], "payment": CARD}) for sku in skus()]
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"local bodies = {{{', '.join(json.dumps(b) for b in bodies)}}}\n"
                "request = function()\n"
                "    return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])\n"
                "end\n")
    out = subprocess.run(
        ["wrk", "--latency", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{duration}s",
         "-s", script, "-H", f"Authorization: Bearer {token}", f"{url}/api/orders"],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = p99 = None
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["Requests/sec:"]:
            rps = float(words[1])
        if words[:1] == ["99%"]:
            p99 = milliseconds(words[1])
        if "Non-2xx" in line:
            raise SystemExit(f"wrk got non-2xx answers from {url}:\n{out}")
    return rps, p99, out


def milliseconds(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(text)


def counters(cluster, database):
    """Statements (with BEGIN and COMMIT) and commits in `database` so far."""
    statements = cluster.sql(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
        f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{database}'")
    commits = cluster.sql(f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{database}'")
    return int(statements), int(commits)


def paid(url, token):
    return call(url, "GET", "/api/orders?status=paid&limit=1", token=token)["total"]


def main():
    work = tempfile.mkdtemp(prefix="shop-bench-pg-")
    # The cluster runs as `postgres` when this runs as root: it must reach its dir.
    os.chmod(work, 0o755)
    processes = []
    cluster = Cluster(work)
    try:
        sqlite, sqlite_url = spawn({"SHOP_DB": os.path.join(work, "shop.db")}, work, "sqlite")
        processes.append(sqlite)
        pg1_database = cluster.database("pg1")
        pg1, pg1_url = spawn({"SHOP_DATABASE_URL": pg1_database, "SHOP_JWT_SECRET": SECRET}, work, "pg1")
        processes.append(pg1)
        pg2_database = cluster.database("pg2")
        nodes = []
        for i in range(2):
            node, node_url = spawn({"SHOP_DATABASE_URL": pg2_database, "SHOP_JWT_SECRET": SECRET},
                                   work, f"pg2-node{i}")
            processes.append(node)
            nodes.append(node_url)
        nginx, pg2_url = start_nginx(work, nodes)
        processes.append(nginx)
        targets = {"sqlite": sqlite_url, "pg1": pg1_url, "pg2": pg2_url}
        tokens = {name: prepare(url) for name, url in targets.items()}
        log(f"{RUNS} rounds of {DURATION} s at {CONNECTIONS} connections, interleaved")
        for name, url in targets.items():
            wrk(url, tokens[name], work, 2)  # warm-up
        figures = {name: [] for name in targets}
        for round_ in range(RUNS):
            for name, url in targets.items():
                rps, p99, _ = wrk(url, tokens[name], work, DURATION)
                figures[name].append((rps, p99))
                log(f"round {round_ + 1}: {name:6} {rps:8.0f} checkouts/s, p99 {p99:.1f} ms")
        medians = {
            name: (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs))
            for name, runs in figures.items()
        }
        for name, (rps, p99) in medians.items():
            print(f"rate {name} {rps:.0f} {p99:.2f}")
        print(f"ratio pg1/sqlite {medians['pg1'][0] / medians['sqlite'][0]:.2f}")
        print(f"ratio pg2/pg1 {medians['pg2'][0] / medians['pg1'][0]:.2f}")
        # What one checkout costs PostgreSQL, counted around one more run on pg1.
        cluster.sql("SELECT pg_stat_statements_reset()")
        before_paid = paid(pg1_url, tokens["pg1"])
        statements, commits = counters(cluster, "pg1")
        wrk(pg1_url, tokens["pg1"], work, DURATION)
        after_statements, after_commits = counters(cluster, "pg1")
        checkouts = paid(pg1_url, tokens["pg1"]) - before_paid
        print(f"statements {(after_statements - statements) / checkouts:.1f} "
              f"{(after_commits - commits) / checkouts:.2f} {checkouts}")
        top = cluster.sql(
            "SELECT round(calls::numeric / greatest(1, (SELECT max(calls) FROM pg_stat_statements)), 2) "
            "|| ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'pg1' ORDER BY calls DESC LIMIT 12")
        for line in top.splitlines():
            log(f"  {line}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
