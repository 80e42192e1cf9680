#!/usr/bin/env python3
"""Search through HTTP on a generated catalog: start-up, throughput against J.

Usage: search.py BIN WORKDIR NDJSON QUERIES DURATION THREADS CONNECTIONS

Imports NDJSON (fixtures/generate.py products) into a fresh server, stops
it, and starts it again on that database: "searchable" is the time from
spawning the process to the first 200 from GET /api/search?q=chair (the
index is rebuilt from the database at every start). Then, on that server,
wrk runs J (GET /api/version) and a mixed list of QUERIES search URLs (one
word, two words, a typo, a prefix, filters, category browsing, drawn from
the same products), cycled through by a Lua script, interleaved
J, search, J, search. A second server on the same database with the result
cache turned off ([search] cache_capacity = 0) gives the uncached figure.

Between the two, the result cache's hit ratio on that repeated workload
(from /metrics: hits and misses over the run) quietly, in each search round,
and then under checkout load (issue 22): three more rounds of the same
searches while a second wrk places paid orders at about ORDER_RATE a second
(500 unless BENCH_ORDER_RATE says otherwise), each for one unit of a
well-stocked catalog product, and one in fifty for all the units of a
product low on stock, so that it sells out. Every stock change reaches the
index and, with it, the cache.

Prints:
  searchable MS PRODUCTS
  wrk NAME RPS P99_MS NON2XX     (one line per run, in order)
  cache quiet HITS MISSES        (after each search round)
  cache checkout HITS MISSES ORDERS_PER_S SEARCHES_PER_S
"""

import http.client
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "bench-Admin-pass-2026!"
ORDER_RATE = int(os.environ.get("BENCH_ORDER_RATE", "500"))
# Connections placing orders, paced to ORDER_RATE together.
ORDER_CONNECTIONS = 32
CARD = {"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2035}


def start(binary, run_dir, db, config=None):
    os.makedirs(run_dir, exist_ok=True)
    err_path = os.path.join(run_dir, f"stderr-{time.monotonic_ns()}.log")
    env = dict(os.environ, SHOP_RATE_LIMIT_IP="0", SHOP_RATE_LIMIT_TOKEN="0", SHOP_LOG="warn",
               SHOP_ADMIN_EMAIL=ADMIN_EMAIL, SHOP_ADMIN_PASSWORD=ADMIN_PASSWORD)
    args = [binary, "serve", "--addr", "127.0.0.1:0", "--db", db]
    if config:
        args += ["--config", config]
    err = open(err_path, "w", encoding="utf-8")
    spawned = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
    deadline = spawned + 60
    while time.monotonic() < deadline:
        with open(err_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("shop: listening on http://"):
                    host, port = line.strip().rsplit("/", 1)[1].split(":")
                    return proc, host, int(port), spawned
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    proc.kill()
    sys.exit(f"search.py: the server did not start; see {err_path}")


def request(host, port, method, path, body=None, token=None, headers=None, timeout=600):
    conn = http.client.HTTPConnection(host, port, timeout=timeout, blocksize=256 * 1024)
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        body = json.dumps(body)
        all_headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def queries(ndjson, count):
    """Search URLs in the storefront's mix, drawn from the products."""
    rng = random.Random(5)
    products = []
    with open(ndjson, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            products.append(p)
    urls = []
    while len(urls) < count:
        p = rng.choice(products)
        words = [w for w in p["name"].lower().replace("&", " ").split() if w.isalpha()] or ["chair"]
        kind = rng.randrange(8)
        params = {}
        if kind in (0, 1):
            q = rng.choice(words)
        elif kind == 2:
            q = " ".join(words[-2:])
        elif kind == 3:
            w = max(words, key=len)
            i = rng.randrange(1, max(2, len(w) - 1))
            q = w[:i - 1] + w[i] + w[i - 1] + w[i + 1:] if len(w) >= 5 else w
        elif kind == 4:
            q = rng.choice(words)[:4]
        elif kind == 5:
            q = rng.choice(words)
            params["category"] = p["category"]
        elif kind == 6:
            q = rng.choice(words)
            params["max_price"] = str(p["price_cents"] * 2)
            params["in_stock"] = "true"
        else:
            q = ""
            params["category"] = p["category"].split("/")[0]
        params["q"] = q
        urls.append("/api/search?" + urllib.parse.urlencode(params))
    return urls


def wrk_args(host, port, duration, threads, connections, script=None, path="/", script_args=()):
    args = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    if script:
        args += ["-s", script]
    args.append(f"http://{host}:{port}{path}")
    if script_args:
        args += ["--", *map(str, script_args)]
    return args


def wrk(name, host, port, duration, threads, connections, script=None, path="/"):
    args = wrk_args(host, port, duration, threads, connections, script, path)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return report(name, out)


def report(name, out):
    """Prints a wrk run's line and returns its requests per second."""
    rps = p99 = None
    bad = 0
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif parts[:1] == ["99%"]:
            v = parts[1]
            p99 = float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-2]) if v.endswith("ms") else float(v[:-1]) * 1000
        elif "Non-2xx" in line:
            bad = int(parts[-1])
    if rps is None:
        sys.exit(f"search.py: cannot read wrk's output for {name}:\n{out}")
    print(f"wrk {name} {rps:.0f} {p99:.2f} {bad}", flush=True)
    return rps


def cache_counts(host, port, token):
    """The result cache's hits and misses so far, from /metrics."""
    _, data = request(host, port, "GET", "/metrics", token=token)
    counts = {"hit": 0, "miss": 0}
    for line in data.decode().splitlines():
        for result in counts:
            prefix = f'shop_search_cache_requests_total{{result="{result}"}} '
            if line.startswith(prefix):
                counts[result] = int(float(line[len(prefix):]))
    return counts["hit"], counts["miss"]


def orders(ndjson, count):
    """(SKU, quantity) of `count` orders: one unit of a product with plenty
    of stock (it never runs out), and every fiftieth all the units of a
    product low on stock, each of those once (it sells out: a stock flip)."""
    rng = random.Random(7)
    plenty, low = [], []
    with open(ndjson, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            if p["stock"] >= 100:
                plenty.append(p["sku"])
            elif 0 < p["stock"] <= p["low_stock_threshold"]:
                low.append((p["sku"], p["stock"]))
    rng.shuffle(low)
    out = []
    for n in range(count):
        if n % 50 == 49 and low:
            out.append(low.pop())
        else:
            out.append((rng.choice(plenty), 1))
    return out


def order_script(path, ndjson, token, count):
    """A wrk script placing the orders of `orders` in turn: each thread takes
    every THREADS-th from OFFSET (so no order is placed twice), the k-th due
    k / RATE seconds after its start (the wall clock, through LuaJIT's FFI),
    so that slow answers are caught up while the connections allow.
    Arguments: THREADS OFFSET RATE (per thread)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("local bodies = {\n")
        for sku, quantity in orders(ndjson, count):
            body = {"items": [{"sku": sku, "quantity": quantity}], "payment": CARD}
            f.write(f"  {json.dumps(json.dumps(body))},\n")
        f.write("}\n")
        f.write(f"local headers = {{[\"Content-Type\"] = \"application/json\", "
                f"[\"Authorization\"] = \"Bearer {token}\"}}\n")
        f.write("""local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clock, timespec *now);
]]
local clock = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local step, i, interval, started, placed
function init(args)
  step = tonumber(args[1])
  i = tonumber(args[2]) + id
  interval = 1000 / tonumber(args[3])
  placed = 0
end
function delay()
  started = started or now_ms()
  local due = started + placed * interval
  placed = placed + 1
  return math.max(0, math.floor(due - now_ms()))
end
function request()
  local body = bodies[(i % #bodies) + 1]
  i = i + step
  return wrk.format("POST", "/api/orders", headers, body)
end
""")


def under_checkout(host, port, token, ndjson, search_script, work, duration, threads, connections):
    """Rounds of the repeated searches while orders are placed, with the
    cache's hit ratio of each."""
    duration = int(duration)
    per_round = ORDER_RATE * (duration + 2)
    script = os.path.join(work, "orders.lua")
    order_script(script, ndjson, token, per_round * 3)
    for round_ in range(3):
        before = cache_counts(host, port, token)
        # The orders run a second longer on each side, so every search meets them.
        placing = subprocess.Popen(
            wrk_args(host, port, duration + 2, 1, ORDER_CONNECTIONS, script,
                     script_args=(1, round_ * per_round, ORDER_RATE)),
            stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        searches = wrk("search_checkout", host, port, duration, threads, connections, search_script)
        after = cache_counts(host, port, token)
        out, _ = placing.communicate()
        ordered = report("checkout", out)
        hits, misses = after[0] - before[0], after[1] - before[1]
        print(f"cache checkout {hits} {misses} {ordered:.0f} {searches:.0f}", flush=True)


def main():
    binary, work, ndjson, count, duration, threads, connections = sys.argv[1:8]
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "search.db")
    proc, host, port, _ = start(binary, work, db)
    status, data = request(host, port, "POST", "/api/users/login",
                           {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    token = json.loads(data)["access_token"]
    with open(ndjson, "rb") as f:
        status, data = request(host, port, "POST", "/api/products/import?format=ndjson", body=f,
                               token=token, headers={"Content-Type": "application/x-ndjson"})
    if status != 200:
        sys.exit(f"search.py: the import answered {status}: {data[:300]!r}")
    products = json.loads(data)["created"]
    stop(proc)

    # Searchable after a start: spawn to the first 200 of a search.
    proc, host, port, spawned = start(binary, work, db)
    while True:
        try:
            status, _ = request(host, port, "GET", "/api/search?q=chair", timeout=30)
        except OSError:
            status = 0
        if status == 200:
            break
        if time.monotonic() - spawned > 60:
            sys.exit("search.py: no search answered within 60 s of the start")
        time.sleep(0.002)
    print(f"searchable {(time.monotonic() - spawned) * 1000:.0f} {products}", flush=True)
    status, data = request(host, port, "POST", "/api/users/login",
                           {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    token = json.loads(data)["access_token"]

    urls = queries(ndjson, int(count))
    script = os.path.join(work, "search.lua")
    with open(script, "w", encoding="utf-8") as f:
        f.write("local paths = {\n")
        for url in urls:
            f.write(f"  {json.dumps(url)},\n")
        f.write("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n"
                "  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")
    # Warm-up: every query once through the cache, and the product cache filled.
    wrk("warmup", host, port, 3, threads, connections, script)
    for _ in range(3):
        wrk("J", host, port, duration, threads, connections, path="/api/version")
        before = cache_counts(host, port, token)
        wrk("search", host, port, duration, threads, connections, script)
        after = cache_counts(host, port, token)
        print(f"cache quiet {after[0] - before[0]} {after[1] - before[1]}", flush=True)
    under_checkout(host, port, token, ndjson, script, work, duration, threads, connections)
    stop(proc)

    config = os.path.join(work, "nocache.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write("[search]\ncache_capacity = 0\n")
    proc, host, port, _ = start(binary, work, db, config)
    wrk("warmup", host, port, 2, threads, connections, script)
    for _ in range(3):
        wrk("J", host, port, duration, threads, connections, path="/api/version")
        wrk("uncached", host, port, duration, threads, connections, script)
    stop(proc)


if __name__ == "__main__":
    main()
