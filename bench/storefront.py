#!/usr/bin/env python3
"""Server-side render time of the storefront's product and category pages.

Usage: storefront.py BIN WORKDIR COUNT ROUNDS

Starts a fresh server (rate limits off) on a fresh database, imports COUNT
generated products (fixtures/generate.py), then picks 200 products spread
over the catalog and every category page (first page, newest first and by
price). One pass over them fills the caches that exist (the product cache,
category list pages, the storefront's category tree and recommendations);
then ROUNDS rounds ask for every page again, one request at a time on one
keep-alive connection with one session cookie, as a browser would.

The figure is the server's own time for each page, from its `Server-Timing:
app;dur=...` header: the session, the in-process API calls and the template,
without the network or the client. Then the same pages from 4 clients at
once (the server's time then includes waiting for a core), for information.

Prints lines "page KIND CLIENTS N P50_MS P99_MS WALL_P50_MS" for KIND in
product and category, "cold KIND N P50_MS P99_MS" for the filling pass (what
a first view costs), and "recommended N TOTAL" (how many of the product
pages showed recommendations, so a page without them does not pass for fast).
"""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCTS = 200
TIMING = re.compile(r"app;dur=([0-9.]+)")


def start(binary, run_dir):
    os.makedirs(run_dir, exist_ok=True)
    err_path = os.path.join(run_dir, "stderr.log")
    env = dict(os.environ, SHOP_RATE_LIMIT_IP="0", SHOP_RATE_LIMIT_TOKEN="0",
               SHOP_RATE_LIMIT_LOGIN="0", SHOP_LOG="warn")
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
    sys.exit(f"storefront.py: the server did not start; see {err_path}")


def api(host, port, method, path, body=None, token=None, content_type="application/json"):
    conn = http.client.HTTPConnection(host, port, timeout=600)
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        sys.exit(f"storefront.py: {method} {path} answered {response.status}: {data[:300]!r}")
    return json.loads(data) if data else None


class Browser:
    """One keep-alive connection with the session cookie the first page set."""

    def __init__(self, host, port):
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.cookie = None

    def page(self, path):
        headers = {"Accept": "text/html"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        started = time.perf_counter()
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        html = response.read()
        wall = (time.perf_counter() - started) * 1000
        if response.status != 200:
            sys.exit(f"storefront.py: GET {path} answered {response.status}: {html[:300]!r}")
        cookie = response.getheader("Set-Cookie")
        if cookie and cookie.startswith("shop_session="):
            self.cookie = cookie.split(";", 1)[0]
        timing = TIMING.search(response.getheader("Server-Timing") or "")
        if not timing:
            sys.exit(f"storefront.py: GET {path} has no Server-Timing header")
        return float(timing.group(1)), wall, html


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    binary, work, count, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(work, exist_ok=True)
    ndjson = os.path.join(work, "products.ndjson")
    with open(ndjson, "wb") as out:
        subprocess.run([sys.executable, os.path.join(ROOT, "fixtures", "generate.py"), "--ndjson", str(count)],
                       stdout=out, check=True)
    proc, host, port = start(binary, os.path.join(work, "server"))
    try:
        login = api(host, port, "POST", "/api/users/login",
                    {"email": os.environ["SHOP_ADMIN_EMAIL"], "password": os.environ["SHOP_ADMIN_PASSWORD"]})
        with open(ndjson, "rb") as body:
            api(host, port, "POST", "/api/products/import?format=ndjson", body.read(),
                login["access_token"], "application/x-ndjson")
        step = max(1, count // PRODUCTS)
        skus = [api(host, port, "GET", f"/api/products?limit=1&offset={offset}")["items"][0]["sku"]
                for offset in range(0, count, step)][:PRODUCTS]
        categories = [c["path"] for c in api(host, port, "GET", "/api/products/categories")["items"]]
        pages = {
            "product": [f"/p/{sku}" for sku in skus],
            "category": [f"/c/{path}" for path in categories] + [f"/c/{path}?sort=price" for path in categories],
        }

        browser = Browser(host, port)
        recommended = 0
        for kind, paths in pages.items():
            cold = []
            for path in paths:
                server, _, html = browser.page(path)
                cold.append(server)
                if kind == "product" and b'id="recs"' in html:
                    recommended += 1
            # For information: the first view, before the storefront kept anything for it.
            print(f"cold {kind} {len(cold)} {percentile(cold, 50):.3f} {percentile(cold, 99):.3f}")
        print(f"recommended {recommended} {len(pages['product'])}")

        # One at a time, the kinds interleaved so machine noise hits both alike.
        timings = {kind: ([], []) for kind in pages}
        order = [(kind, path) for kind, paths in pages.items() for path in paths]
        rng = random.Random(7)
        for _ in range(rounds):
            rng.shuffle(order)
            for kind, path in order:
                server, wall, _ = browser.page(path)
                timings[kind][0].append(server)
                timings[kind][1].append(wall)
        for kind, (server, wall) in timings.items():
            print(f"page {kind} 1 {len(server)} {percentile(server, 50):.3f} {percentile(server, 99):.3f} "
                  f"{percentile(wall, 50):.3f}")

        # For information: 4 clients at once.
        loaded = {kind: ([], []) for kind in pages}
        lock = threading.Lock()

        def client(seed):
            mine = Browser(host, port)
            shuffled = list(order)
            random.Random(seed).shuffle(shuffled)
            for kind, path in shuffled:
                server, wall, _ = mine.page(path)
                with lock:
                    loaded[kind][0].append(server)
                    loaded[kind][1].append(wall)

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for kind, (server, wall) in loaded.items():
            print(f"page {kind} 4 {len(server)} {percentile(server, 50):.3f} {percentile(server, 99):.3f} "
                  f"{percentile(wall, 50):.3f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
