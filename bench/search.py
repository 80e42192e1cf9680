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

Prints:
  searchable MS PRODUCTS
  wrk NAME RPS P99_MS NON2XX     (one line per run, in order)
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


def wrk(name, host, port, duration, threads, connections, script=None, path="/"):
    args = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    if script:
        args += ["-s", script]
    args.append(f"http://{host}:{port}{path}")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
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
        wrk("search", host, port, duration, threads, connections, script)
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
