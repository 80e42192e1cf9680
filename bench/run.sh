#!/usr/bin/env bash
# bench/run.sh: performance figures of `shop serve`, checked against the targets.
#
# What it measures
#   1. startup: spawn `shop serve` on a fresh, empty SQLite file and time until
#      GET /health first answers 200 (tight polling, see bench/startup.py).
#      Includes creating the bootstrap admin, i.e. one argon2 hash with OWASP
#      parameters. BENCH_STARTUP_RUNS runs (5), median/min/max. Target < 300 ms.
#      A restart on an existing database is also shown, for information.
#   2. throughput: one server (fresh DB, rate limits off, SHOP_LOG=warn), wrk
#      with BENCH_THREADS threads (2) and BENCH_CONNECTIONS connections (64)
#      for BENCH_DURATION seconds (5), BENCH_RUNS rounds (3). The routes are
#      interleaved round by round (J, me, J, me, ...) so machine noise hits all
#      of them alike; each figure is the median of its runs, as is its p99.
#        J  = GET /api/version, the trivial JSON route: the baseline.
#        me = GET /api/users/me with a bearer token. Target >= 0.7 J.
#      wrk shares the CPUs with the server, so absolute numbers are
#      machine-bound; the ratios measured in the same run are what matter.
#   3. idle RSS (VmRSS) of that server: freshly started (before any request
#      but the readiness probe), and ~2 s after the load. Target < 40 MiB.
#   5. catalog (issue 4), on the load server seeded with BENCH_CATALOG_SEED
#      (20,000) generated products (fixtures/generate.py vocabulary):
#        product  = GET /api/products/{id}. Target >= 0.5 J.
#        category = GET /api/products?category=<largest top-level>&limit=20,
#                   a category page over several subcategories. Target >= 0.3 J.
#        adjust   = POST /api/inventory/{sku}/adjustments {"delta":1}, all 64
#                   connections on ONE hot SKU (the worst case: every request
#                   contends for the same row). Target >= 5,000/s, and
#                   afterwards POST /api/inventory/reconcile must find no drift
#                   and on_hand must equal the adjustments wrk saw succeed.
#        checkout = POST /api/orders, one item of BENCH-BUY (10,000,000 in
#                   stock) paid with the simulated provider's 4242 card: hold,
#                   charge, commit and mark paid. Target >= 2,500/s with p99
#                   < 50 ms; afterwards every unit is on hand or in a paid
#                   order, none is held, no order is pending, and there are at
#                   least as many paid orders as checkouts wrk saw done.
#        checkout8 = the same at 8 connections. Target p99 < 10 ms.
#        checkout_priced = POST /api/orders of BENCH-SHIP with a shipping
#                   address, a flat shipping method, one tax rate (California
#                   7.25 %) and one discount code, paid: the checkout a real shop
#                   makes. Target >= 0.8x the plain checkout (whose product,
#                   BENCH-BUY, is marked requires_shipping false, since the
#                   shop now has a zone).
#        quote    = POST /api/orders/quote of the same order. Target >= 0.5 J.
#                   For both, what the store's one writer did, from /metrics
#                   around each run: statements per checkout, changes per
#                   transaction (group commit), busy share, mean transaction.
#        cart_add = POST /api/cart/{id}/items, one unit into ONE cart (every
#                   request changes the same cart row, line and reservation).
#                   Target >= 5,000/s.
#      import (bench/catalog.py): BENCH_IMPORT_COUNT (100,000) generated
#      products as one streamed NDJSON upload into a fresh server, end to end,
#      BENCH_IMPORT_RUNS runs (3). Target >= 20,000/s, with the server's heap
#      (RssAnon) peak printed against the file size to show it stays flat.
#   4. notifications (bench/notifications.py, fresh servers and databases):
#      drain: BENCH_NOTIFY_COUNT (10,000) notifications to the local sink
#      queued through POST /api/notifications over 64 connections, all due
#      at one instant after the enqueue ended, then timed from the wake-up to
#      all `sent`. BENCH_NOTIFY_RUNS runs (3), median/min/max. Target >= 5,000/s.
#      enqueue: median latency of POST /api/notifications minus that of
#      GET /api/version, one request at a time (what queueing adds to a
#      request that does it inline; a reaction to an event does not even do
#      that, the reactor queues from the event log). Target < 1 ms. And, for
#      information, how long after a registration its welcome email is queued.
#   5. dashboard: the frame time of the full `shop dashboard` with 1,000
#      orders and 500 SKUs in state, at 80x24 and 160x48, grid and zoomed
#      (tui/examples/frame_bench.rs: widgets, buffer diff and escape codes
#      into memory; median and p99 of 2,000 frames, each after one new
#      event). Target < 2 ms median. Then its CPU use in a real terminal (a
#      tmux pane, bench/dashboard.py): idle for 10 s (target < 1% of a
#      core), and while ~100 events/s stream in (50 notifications/s queued,
#      each making two events), for information.
#   7. search (issue 5, bench/search.py and server/examples/search_bench.rs), on
#      BENCH_SEARCH_COUNT (100,000) generated products:
#        in-process: the index's build time and memory, then p50/p99 of
#        BENCH_SEARCH_QUERIES (4,000) mixed queries (one, two and three words,
#        typos, prefixes, filters, category browsing; first page of 20 with the
#        total and facets). Targets p50 < 1 ms, p99 < 5 ms. Suggest p99
#        < 0.5 ms. The same queries through SQLite FTS5 (bm25 with the same
#        field weights, plus a count(*) for the total) and the ratio of its
#        latencies to the index's: the goal is >= 1 (the index no slower).
#        HTTP: a server on those products restarted, and the time from spawning
#        it to the first 200 of a search (target < 2 s); then J and 2,000 mixed
#        search URLs cycled by wrk, interleaved, 3 rounds: target >= 0.3 J,
#        with the result cache as configured and (for information) turned off.
#        The cache's hit ratio on those repeated URLs (hits and misses from
#        /metrics over each run): quiet, for information, and under checkout
#        load (issue 22): 3 more rounds of them while a second wrk places paid
#        orders at about BENCH_ORDER_RATE (500) a second, one unit of a
#        well-stocked catalog product each, and every fiftieth all the units of
#        one low on stock (a sell-out). Target >= 90% at 500 orders/s.
#      Standalone: BENCH_ONLY=search bench/run.sh runs just this section.
#   8. storefront (issue 19, bench/storefront.py): a fresh server with
#      BENCH_CATALOG_SEED (20,000) generated products; 200 product pages and
#      every category page (newest first and by price), one pass to fill the
#      caches, then BENCH_STOREFRONT_ROUNDS (5) rounds one request at a time,
#      as a browser with its session cookie. The figure is the server's own
#      time per page from its `Server-Timing: app;dur=` header (session, the
#      in-process API calls and the template; no network). Target p50 < 2 ms
#      for product and category pages. The same from 4 clients at once, for
#      information. Standalone: BENCH_ONLY=storefront bench/run.sh.
#   9. webhooks (bench/webhooks.py): BENCH_WEBHOOK_RUNS (3) runs, each on a
#      fresh server whose one endpoint (product.created) is a local receiver
#      (asyncio, keep-alive, 204 at once); BENCH_WEBHOOK_COUNT (20,000)
#      products imported at once, and the deliveries timed at the receiver
#      from the first to the last distinct webhook-id. Target >= 2,000/s.
#      Then what a subscribed endpoint adds to a checkout: BENCH_WEBHOOK_CHECKOUTS
#      (1,000) paid orders each way, one at a time, in blocks of 50 alternating
#      between the endpoint (order.*) active and disabled; the difference of the
#      medians. Target < 1 ms.
#      Standalone: BENCH_ONLY=webhooks bench/run.sh.
#  10. PostgreSQL (issue 15, bench/postgres.py): a throwaway cluster (fsync on),
#      and checkouts (POST /api/orders, one unit, paid) at BENCH_CONNECTIONS
#      for BENCH_DURATION s, BENCH_RUNS rounds interleaved, on three shops
#      sharing the machine: one node on SQLite, one node on PostgreSQL, and two
#      nodes on one PostgreSQL database behind nginx. Targets: one PostgreSQL
#      node >= 0.5x SQLite, two nodes >= 1.0x one. And, from
#      pg_stat_statements around one more run, statements (each a round trip,
#      BEGIN and COMMIT included) and transactions per checkout.
#      Standalone: BENCH_ONLY=postgres bench/run.sh. Needs PostgreSQL (initdb)
#      and nginx from Debian's packages.
#   BENCH_ONLY=money bench/run.sh runs only J, the checkouts and cart adds (and
#      their invariants and writer figures), on a server with no catalog seed.
#
# Run it from anywhere:
#   bench/run.sh                             # builds target/release/shop first
#   SHOP_BIN=path/to/shop bench/run.sh       # measure that binary, no build
#   BENCH_DURATION=10 BENCH_RUNS=5 bench/run.sh
#
# Needs bash, curl, jq, python3, wrk and tmux (the last two installed with apt-get when missing).
# Every SHOP_* variable of the caller except SHOP_BIN is ignored so the figures
# do not depend on the caller's environment; the XDG config dir is pointed at an
# empty directory so no ~/.config/shop/server.toml is read either.
#
# The exit status is 0 whether the targets are met or missed: this is a
# measurement, not a test. It is non-zero only if something is broken (no
# build, the server does not start, a route does not answer 200, wrk gets
# non-2xx answers, ...). wrk socket errors (timeouts) are shown, not fatal.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"

BENCH_DURATION="${BENCH_DURATION:-5}"
BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_STARTUP_RUNS="${BENCH_STARTUP_RUNS:-5}"
BENCH_WARMUP="${BENCH_WARMUP:-2}"
BENCH_NOTIFY_RUNS="${BENCH_NOTIFY_RUNS:-3}"
BENCH_NOTIFY_COUNT="${BENCH_NOTIFY_COUNT:-10000}"
BENCH_CATALOG_SEED="${BENCH_CATALOG_SEED:-20000}"
BENCH_IMPORT_COUNT="${BENCH_IMPORT_COUNT:-100000}"
BENCH_IMPORT_RUNS="${BENCH_IMPORT_RUNS:-3}"
BENCH_SEARCH_COUNT="${BENCH_SEARCH_COUNT:-100000}"
BENCH_SEARCH_QUERIES="${BENCH_SEARCH_QUERIES:-4000}"
export BENCH_ORDER_RATE="${BENCH_ORDER_RATE:-500}"
BENCH_STOREFRONT_ROUNDS="${BENCH_STOREFRONT_ROUNDS:-5}"
BENCH_WEBHOOK_RUNS="${BENCH_WEBHOOK_RUNS:-3}"
BENCH_WEBHOOK_COUNT="${BENCH_WEBHOOK_COUNT:-20000}"
export BENCH_WEBHOOK_CHECKOUTS="${BENCH_WEBHOOK_CHECKOUTS:-1000}"
BENCH_ONLY="${BENCH_ONLY:-}"

# Targets.
STARTUP_TARGET_MS=300
RSS_TARGET_MIB=40
NOTIFY_DRAIN_TARGET=5000
ENQUEUE_TARGET_MS=1
ADJUST_TARGET=5000
IMPORT_TARGET=20000
CHECKOUT_TARGET=2500
CHECKOUT_P99_TARGET_MS=50
CHECKOUT8_P99_TARGET_MS=10
CART_ADD_TARGET=5000
CHECKOUT_STOCK=10000000
PRICED_CHECKOUT_RATIO=0.8
QUOTE_TARGET_J=0.5
SEARCH_P50_TARGET_MS=1
SEARCH_P99_TARGET_MS=5
SUGGEST_P99_TARGET_MS=0.5
SEARCHABLE_TARGET_MS=2000
CACHE_HIT_TARGET=0.9
RENDER_P50_TARGET_MS=2
WEBHOOK_TARGET=2000
WEBHOOK_CHECKOUT_TARGET_MS=1
PG_ONE_NODE_RATIO=0.5
PG_TWO_NODES_RATIO=1.0

ADMIN_EMAIL="admin@example.com"
ADMIN_PASSWORD="bench-Admin-pass-2026!"

log() { printf '%s\n' "$*"; }
die() { log "bench: error: $*"; exit 1; }

# ---------------------------------------------------------------- environment

for var in $(compgen -e); do
    case "$var" in
        SHOP_BIN) ;;
        SHOP_*) unset "$var" ;;
    esac
done

for tool in curl jq python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null; then
    log "bench: installing wrk"
    (apt-get update -q && apt-get install -y -q wrk) >&2 || die "cannot install wrk"
fi

if ! command -v tmux >/dev/null; then
    log "bench: installing tmux"
    (apt-get update -q && apt-get install -y -q tmux) >&2 || die "cannot install tmux"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/shop-bench.XXXXXX")"
SERVER_PIDS=()
cleanup() {
    local pid i
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    # Give them a moment to shut down gracefully, then insist.
    for pid in "${SERVER_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/xdg-config"
export XDG_CONFIG_HOME="$WORK/xdg-config"
export SHOP_ADMIN_EMAIL="$ADMIN_EMAIL" SHOP_ADMIN_PASSWORD="$ADMIN_PASSWORD"

# ---------------------------------------------------------------- binary

if [[ -n "${SHOP_BIN:-}" ]]; then
    BIN="$SHOP_BIN"
else
    log "bench: cargo build --release (the first build takes several minutes)"
    (cd "$ROOT" && cargo build --release -q) || die "release build failed"
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/shop"
fi
[[ -x "$BIN" ]] || die "no executable at $BIN"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

# ---------------------------------------------------------------- helpers

# median of the numbers on stdin (mean of the middle two for an even count)
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minimum() { sort -g | head -n1; }
maximum() { sort -g | tail -n1; }

# 52345.6 -> 52,346
commas() {
    awk -v n="$1" 'BEGIN {
        s = sprintf("%.0f", n); out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out }'
}

# VmRSS of a process in KiB
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# "anon X MiB + file Y MiB, N threads" of a process
rss_detail() {
    awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^Threads:/ { t = $2 }
        END { printf "anon %.1f + file %.1f MiB, %d threads", a / 1024, f / 1024, t }' "/proc/$1/status"
}
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Start a server on a fresh DB under $WORK/$1; sets SERVER_PID and BASE_URL.
start_server() {
    local dir="$WORK/$1" port="" i
    mkdir -p "$dir"
    : >"$dir/stderr.log"
    # The cart_add route fills one cart for the whole run: lift the quantity caps.
    SHOP_RATE_LIMIT_IP=0 SHOP_RATE_LIMIT_TOKEN=0 SHOP_RATE_LIMIT_LOGIN=0 SHOP_RATE_LIMIT_REGISTER=0 \
        SHOP_LOG=warn SHOP_ACCESS_TOKEN_TTL=3600 \
        SHOP_MAX_LINE_QUANTITY=1000000000 SHOP_MAX_CART_QUANTITY=1000000000 \
        "$BIN" serve --addr 127.0.0.1:0 --db "$dir/shop.db" >/dev/null 2>"$dir/stderr.log" &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    for ((i = 0; i < 300; i++)); do
        port="$(sed -n 's#^shop: listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$dir/stderr.log")"
        [[ -n "$port" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/stderr.log" >&2; die "server exited during startup"; }
        sleep 0.1
    done
    [[ -n "$port" ]] || { cat "$dir/stderr.log" >&2; die "server did not report its address within 30 s"; }
    BASE_URL="http://127.0.0.1:$port"
    curl -fsS -o /dev/null --retry 50 --retry-delay 0 --retry-connrefused "$BASE_URL/health" \
        || die "server at $BASE_URL is not healthy"
}

# ---------------------------------------------------------------- routes and wrk

# Routes under load. `route NAME METHOD PATH [wrk args...]` registers one;
# `measure NAME` does one wrk run of it and records requests/sec and p99;
# `rps NAME` / `p99 NAME` give the medians over the recorded runs.
# A request body for a non-GET route goes in the env var BODY_<NAME> (sent as JSON);
# CONNECTIONS_<NAME> overrides BENCH_CONNECTIONS for one route.
ROUTES=()
route() {
    local name="$1" method="$2" path="$3"
    shift 3
    ROUTES+=("$name")
    mkdir -p "$WORK/routes/$name"
    printf '%s\n' "$method" >"$WORK/routes/$name/method"
    printf '%s\n' "$path" >"$WORK/routes/$name/path"
    : >"$WORK/routes/$name/args"
    (($# == 0)) || printf '%s\0' "$@" >"$WORK/routes/$name/args"
    local connections_var="CONNECTIONS_$name"
    printf '%s\n' "${!connections_var:-$BENCH_CONNECTIONS}" >"$WORK/routes/$name/connections"
    local body_var="BODY_$name"
    if [[ "$method" != GET || -n "${!body_var:-}" ]]; then
        jq -rn --arg m "$method" --arg b "${!body_var:-}" '
            "wrk.method = \($m | tojson)",
            (if $b != "" then "wrk.body = \($b | tojson)\nwrk.headers[\"Content-Type\"] = \"application/json\"" else empty end)
        ' >"$WORK/routes/$name/script.lua"
    fi
    # Fail early, not after minutes of load, if the route does not answer 200.
    local -a curl_args=(-sS -o "$WORK/routes/$name/probe.body" -w '%{http_code}' -X "$method")
    local i
    local -a wrk_args=("$@")
    for ((i = 0; i < ${#wrk_args[@]}; i++)); do
        [[ "${wrk_args[i]}" == -H || "${wrk_args[i]}" == --header ]] && curl_args+=(-H "${wrk_args[i + 1]}")
    done
    [[ -n "${!body_var:-}" ]] && curl_args+=(-H 'Content-Type: application/json' --data "${!body_var}")
    local code
    code="$(curl "${curl_args[@]}" "$BASE_URL$path")"
    [[ "$code" == 2?? ]] || die "route $name ($method $path) answered $code: $(head -c 300 "$WORK/routes/$name/probe.body")"
}

# wrk_once NAME DURATION: run wrk against a route, print its full output
wrk_once() {
    local name="$1" duration="$2" dir="$WORK/routes/$1"
    local -a args=()
    mapfile -d '' args <"$dir/args"
    [[ -f "$dir/script.lua" ]] && args+=(-s "$dir/script.lua")
    wrk --latency -t "$BENCH_THREADS" -c "$(cat "$dir/connections")" -d "${duration}s" \
        "${args[@]}" "$BASE_URL$(cat "$dir/path")"
}

# Latency with unit ("850.00us", "3.21ms", "1.02s") -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) printf "%.2f", v / 1000
        else if (v ~ /ms$/) printf "%.2f", v + 0
        else if (v ~ /m$/) printf "%.2f", v * 60000
        else if (v ~ /s$/) printf "%.2f", v * 1000
        else print "nan" }'
}

BROKEN=0
# The store's one writer, from /metrics: statements, changes, transactions,
# their busy seconds, and orders placed.
writer_sample() {
    curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/metrics" | awk '
        $1 == "shop_store_writer_statements_total" { s = $2 }
        $1 == "shop_store_writer_changes_total" { c = $2 }
        $1 == "shop_store_writer_transaction_seconds_count" { n = $2 }
        $1 == "shop_store_writer_transaction_seconds_sum" { t = $2 }
        END { printf "%d %d %d %.6f\n", s, c, n, t }'
}

# What the writer did per request of a run (routes in WRITER_ROUTES): statements
# per request, changes per transaction (group commit), busy share of the run,
# mean transaction time. Appended to the route's `writer` file.
writer_delta() {
    local before="$1" after="$2" requests="$3"
    awk -v b="$before" -v a="$after" -v r="$requests" -v d="$BENCH_DURATION" 'BEGIN {
        split(b, x, " "); split(a, y, " ")
        s = y[1] - x[1]; c = y[2] - x[2]; n = y[3] - x[3]; t = y[4] - x[4]
        printf "%.1f %.1f %.0f %.3f\n", (r > 0 ? s / r : 0), (n > 0 ? c / n : 0), 100 * t / d, (n > 0 ? 1000 * t / n : 0) }'
}
WRITER_ROUTES=" checkout checkout8 checkout_priced cart_add "

measure() {
    local name="$1" dir="$WORK/routes/$1" out rps p99 bad errors before=""
    [[ "$WRITER_ROUTES" == *" $name "* ]] && before="$(writer_sample)"
    out="$(wrk_once "$name" "$BENCH_DURATION")" || die "wrk failed on $name"
    if [[ -n "$before" ]]; then
        writer_delta "$before" "$(writer_sample)" "$(awk '/ requests in / { print $1 }' <<<"$out")" >>"$dir/writer"
    fi
    printf '%s\n' "$out" >>"$dir/wrk.log"
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
    bad="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")"
    errors="$(grep -E '^ +Socket errors:' <<<"$out" | sed 's/^ *//' || true)"
    [[ -n "$rps" ]] || { printf '%s\n' "$out" >&2; die "cannot parse wrk output for $name"; }
    echo "$rps" >>"$dir/rps"
    echo "$p99" >>"$dir/p99"
    printf '  %-4s %-22s %10s rps   p99 %8s ms%s\n' "$name" "$(cat "$dir/method") $(cat "$dir/path")" \
        "$(commas "$rps")" "$p99" "${bad:+   NON-2xx: $bad}${errors:+   $errors}"
    if [[ -n "$bad" ]]; then
        BROKEN=1
        echo "$bad" >>"$dir/non2xx"
    fi
}
rps() { median <"$WORK/routes/$1/rps"; }
p99() { median <"$WORK/routes/$1/p99"; }

# verdict, a summary row, and number comparisons for it
verdict() { if [[ "$1" == 1 ]]; then echo PASS; else echo MISS; fi; }
row() { printf '%-32s %-13s %-11s %-11s %s\n' "$@" | sed 's/ *$//'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? 1 : 0 }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }

# ---------------------------------------------------------------- 7. search (defined here, run last)

search_measure() {
    log "bench: search, in-process on $(commas "$BENCH_SEARCH_COUNT") generated products: the index, then SQLite FTS5, $(commas "$BENCH_SEARCH_QUERIES") mixed queries"
    python3 "$ROOT/fixtures/generate.py" --ndjson "$BENCH_SEARCH_COUNT" >"$WORK/search.ndjson" \
        || die "cannot generate products"
    (cd "$ROOT" && cargo run --release -q -p shop-server --example search_bench -- \
        "$WORK/search.ndjson" "$BENCH_SEARCH_QUERIES") >"$WORK/search.out" \
        || die "the in-process search benchmark failed"
    sed 's/^/  /' "$WORK/search.out"
    log "bench: search over HTTP: restart on those products until searchable, then J and 2,000 mixed search URLs (cache on, then off)"
    python3 "$BENCH_DIR/search.py" "$BIN" "$WORK/search" "$WORK/search.ndjson" 2000 \
        "$BENCH_DURATION" "$BENCH_THREADS" "$BENCH_CONNECTIONS" >"$WORK/search-http.out" \
        || die "the HTTP search benchmark failed"
    awk '$1 == "wrk" && $2 != "warmup" { printf "  %-15s %10s rps   p99 %8s ms%s\n", $2, $3, $4, ($5 > 0 ? "   NON-2xx: " $5 : "") }
        $1 == "cache" && $2 == "quiet" { printf "  result cache, quiet: %d hits, %d misses\n", $3, $4 }
        $1 == "cache" && $2 == "checkout" { printf "  result cache, %s orders/s: %d hits, %d misses (%.1f%%)\n", $5, $3, $4, 100 * $3 / ($3 + $4) }' \
        "$WORK/search-http.out"
    if awk '$1 == "wrk" && $5 > 0 { bad = 1 } END { exit !bad }' "$WORK/search-http.out"; then
        BROKEN=1
    fi
}

search_value() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/search.out"; }
search_wrk() { awk -v n="$1" -v c="$2" '$1 == "wrk" && $2 == n { print $c }' "$WORK/search-http.out"; }

search_summary() {
    local p50 p99 sp99 f50 f99 searchable j s u
    p50="$(search_value search_p50_ms)"; p99="$(search_value search_p99_ms)"
    sp99="$(search_value suggest_p99_ms)"; f50="$(search_value fts5_p50_ms)"; f99="$(search_value fts5_p99_ms)"
    searchable="$(awk '$1 == "searchable" { print $2 }' "$WORK/search-http.out")"
    j="$(search_wrk J 3 | median)"; s="$(search_wrk search 3 | median)"; u="$(search_wrk uncached 3 | median)"
    row "search in-process p50 / p99" "$p50 / $p99 ms" "" "< $SEARCH_P50_TARGET_MS / $SEARCH_P99_TARGET_MS ms" \
        "$(verdict "$([[ "$(lt "$p50" "$SEARCH_P50_TARGET_MS")$(lt "$p99" "$SEARCH_P99_TARGET_MS")" == 11 ]] && echo 1 || echo 0)")"
    row "  SQLite FTS5 p50 / p99" "$f50 / $f99 ms" "" "" "(same queries)"
    row "  FTS5 / index latency p50, p99" "$(search_value fts5_over_index_p50) x, $(search_value fts5_over_index_p99) x" "" ">= 1 x" \
        "$(verdict "$(ge "$(search_value fts5_over_index_p50)" 1)")"
    row "  index build, $(commas "$(search_value products)") products" "$(search_value build_ms) ms" "" "" \
        "(heap $(search_value index_heap_mib) MiB, RSS +$(search_value index_rss_growth_mib) MiB)"
    row "suggest p99" "$sp99 ms" "" "< $SUGGEST_P99_TARGET_MS ms" "$(verdict "$(lt "$sp99" "$SUGGEST_P99_TARGET_MS")")"
    row "searchable after a start" "$searchable ms" "" "< $SEARCHABLE_TARGET_MS ms" \
        "$(verdict "$(lt "$searchable" "$SEARCHABLE_TARGET_MS")")"
    row "GET /api/search (mixed)" "$(commas "$s") rps" "$(search_wrk search 4 | median) ms" ">= 0.3 J" \
        "$(verdict "$(ge "$(awk -v a="$s" -v b="$j" 'BEGIN { print a / b }')" 0.3)") ($(awk -v a="$s" -v b="$j" 'BEGIN { printf "%.2f", a / b }'))"
    row "  result cache off" "$(commas "$u") rps" "$(search_wrk uncached 4 | median) ms" "" \
        "(info, $(awk -v a="$u" -v b="$j" 'BEGIN { printf "%.2f", a / b }') J)"
    row "  J in the search rounds" "$(commas "$j") rps" "" "" ""
    local quiet loaded orders
    quiet="$(awk '$1 == "cache" && $2 == "quiet" { printf "%.3f\n", $3 / ($3 + $4) }' "$WORK/search-http.out" | median)"
    loaded="$(awk '$1 == "cache" && $2 == "checkout" { printf "%.3f\n", $3 / ($3 + $4) }' "$WORK/search-http.out" | median)"
    orders="$(awk '$1 == "cache" && $2 == "checkout" { print $5 }' "$WORK/search-http.out" | median)"
    row "search cache hit ratio, quiet" "$(awk -v r="$quiet" 'BEGIN { printf "%.1f %%", 100 * r }')" "" "" "(info)"
    row "  under $(commas "$orders") orders/s" "$(awk -v r="$loaded" 'BEGIN { printf "%.1f %%", 100 * r }')" "" \
        ">= $(awk -v r="$CACHE_HIT_TARGET" 'BEGIN { print 100 * r }') % at $BENCH_ORDER_RATE/s" \
        "$(verdict "$([[ "$(ge "$loaded" "$CACHE_HIT_TARGET")$(ge "$orders" "$(awk -v r="$BENCH_ORDER_RATE" 'BEGIN { print 0.9 * r }')")" == 11 ]] && echo 1 || echo 0)")"
}

# ---------------------------------------------------------------- 8. storefront (defined here, run last)

storefront_measure() {
    log "bench: storefront render time, $(commas "$BENCH_CATALOG_SEED") generated products, $BENCH_STOREFRONT_ROUNDS rounds (server time from Server-Timing)"
    python3 "$BENCH_DIR/storefront.py" "$BIN" "$WORK/storefront" "$BENCH_CATALOG_SEED" "$BENCH_STOREFRONT_ROUNDS" \
        >"$WORK/storefront.out" || die "the storefront benchmark failed"
    awk '$1 == "page" { printf "  %-8s %d client(s): %5d pages, server p50 %7.3f ms, p99 %7.3f ms (client wall p50 %.3f ms)\n", $2, $3, $4, $5, $6, $7 }
        $1 == "cold" { printf "  %-8s first views:    %5d pages, server p50 %7.3f ms, p99 %7.3f ms (nothing kept yet)\n", $2, $3, $4, $5 }
        $1 == "recommended" { printf "  %d of %d product pages showed recommendations\n", $2, $3 }' "$WORK/storefront.out"
}

storefront_summary() {
    local kind p50 p99 l50 l99
    for kind in product category; do
        read -r p50 p99 < <(awk -v k="$kind" '$1 == "page" && $2 == k && $3 == 1 { print $5, $6 }' "$WORK/storefront.out")
        read -r l50 l99 < <(awk -v k="$kind" '$1 == "page" && $2 == k && $3 == 4 { print $5, $6 }' "$WORK/storefront.out")
        row "$kind page render, server p50" "$p50 ms" "$p99 ms" "< $RENDER_P50_TARGET_MS ms" \
            "$(verdict "$(lt "$p50" "$RENDER_P50_TARGET_MS")")"
        row "  4 clients at once" "$l50 ms" "$l99 ms" "" "(info)"
    done
}

# ---------------------------------------------------------------- 9. webhooks (defined here, run last)

webhooks_measure() {
    log "bench: webhooks, $BENCH_WEBHOOK_RUNS runs of $(commas "$BENCH_WEBHOOK_COUNT") deliveries to a local receiver (fresh server each)"
    python3 "$BENCH_DIR/webhooks.py" "$BIN" "$WORK/webhooks" "$BENCH_WEBHOOK_RUNS" "$BENCH_WEBHOOK_COUNT" \
        >"$WORK/webhooks.out" || die "the webhook benchmark failed"
    awk '$1 == "run" { printf "  run %d: %s deliveries in %.2f s: %s/s\n", $2, $3, $4, $5 }
        $1 == "checkout" { printf "  checkout one at a time: p50 %.3f ms with an endpoint subscribed, %.3f ms without (p99 %.3f / %.3f ms); %d deliveries made\n", $2, $3, $4, $5, $6 }' \
        "$WORK/webhooks.out"
}

webhooks_summary() {
    local med
    med="$(awk '$1 == "run" { print $5 }' "$WORK/webhooks.out" | median)"
    row "webhook deliveries/s" "$(commas "$med")" "" ">= $(commas "$WEBHOOK_TARGET")" \
        "$(verdict "$(ge "$med" "$WEBHOOK_TARGET")")"
    local added added99
    read -r added added99 < <(awk '$1 == "checkout" { printf "%.3f %.3f\n", $2 - $3, $4 - $5 }' "$WORK/webhooks.out")
    row "checkout + subscribed endpoint" "$added ms" "$added99 ms" "< $WEBHOOK_CHECKOUT_TARGET_MS ms" \
        "$(verdict "$(lt "$added" "$WEBHOOK_CHECKOUT_TARGET_MS")")"
}

# ---------------------------------------------------------------- 10. PostgreSQL (defined here, run last)

postgres_measure() {
    log "bench: checkouts on SQLite, PostgreSQL and two PostgreSQL nodes behind nginx, interleaved"
    BENCH_DURATION="$BENCH_DURATION" BENCH_RUNS="$BENCH_RUNS" BENCH_CONNECTIONS="$BENCH_CONNECTIONS" \
        BENCH_THREADS="$BENCH_THREADS" python3 "$BENCH_DIR/postgres.py" "$BIN" >"$WORK/postgres.out" \
        || die "the PostgreSQL benchmark failed"
}

postgres_summary() {
    local name rps p99
    while read -r _ name rps p99; do
        case "$name" in
            sqlite) row "checkout, SQLite" "$(commas "$rps")/s" "$p99 ms" "" "(baseline)" ;;
            pg1) row "checkout, PostgreSQL, 1 node" "$(commas "$rps")/s" "$p99 ms" "" "" ;;
            pg2) row "checkout, PostgreSQL, 2 nodes + nginx" "$(commas "$rps")/s" "$p99 ms" "" "" ;;
        esac
    done < <(awk '$1 == "rate"' "$WORK/postgres.out")
    local one two
    one="$(awk '$1 == "ratio" && $2 == "pg1/sqlite" { print $3 }' "$WORK/postgres.out")"
    two="$(awk '$1 == "ratio" && $2 == "pg2/pg1" { print $3 }' "$WORK/postgres.out")"
    row "  1 PostgreSQL node / SQLite" "$one" "" ">= $PG_ONE_NODE_RATIO" "$(verdict "$(ge "$one" "$PG_ONE_NODE_RATIO")")"
    row "  2 nodes / 1 node" "$two" "" ">= $PG_TWO_NODES_RATIO" "$(verdict "$(ge "$two" "$PG_TWO_NODES_RATIO")")"
    local statements transactions
    read -r statements transactions < <(awk '$1 == "statements" { print $2, $3 }' "$WORK/postgres.out")
    row "  per checkout on PostgreSQL" "$statements round trips" "" "" "($transactions transactions, background work included)"
}

if [[ "$BENCH_ONLY" == postgres ]]; then
    postgres_measure
    echo
    row "metric" "value" "p99" "target" ""
    postgres_summary
    exit 0
fi

if [[ "$BENCH_ONLY" == webhooks ]]; then
    webhooks_measure
    echo
    row "metric" "value" "p99" "target" ""
    webhooks_summary
    exit 0
fi

if [[ "$BENCH_ONLY" == storefront ]]; then
    storefront_measure
    echo
    row "metric" "value" "p99" "target" ""
    storefront_summary
    exit 0
fi

if [[ "$BENCH_ONLY" == search ]]; then
    BROKEN=0
    search_measure
    echo
    row "metric" "value" "p99" "target" ""
    search_summary
    [[ "$BROKEN" == 1 ]] && die "some wrk runs got non-2xx answers"
    exit 0
fi

# The money path's rows of the summary: checkout at 64 and 8 connections, cart adds, and the writer.
money_summary() {
    CHECKOUT_RPS="$(rps checkout)"
    checkout_status="$(verdict "$([[ "$(ge "$CHECKOUT_RPS" "$CHECKOUT_TARGET")" == 1 && "$(lt "$(p99 checkout)" "$CHECKOUT_P99_TARGET_MS")" == 1 ]] && echo 1 || echo 0)")"
    [[ -f "$WORK/routes/checkout/non2xx" ]] && checkout_status="INVALID (non-2xx answers)"
    row "POST /api/orders (checkout, paid)" "$(commas "$CHECKOUT_RPS")/s" "$(p99 checkout) ms" \
        ">= $(commas "$CHECKOUT_TARGET")/s, p99 < $CHECKOUT_P99_TARGET_MS ms" "$checkout_status"
    row "  same, 8 connections" "$(commas "$(rps checkout8)")/s" "$(p99 checkout8) ms" "p99 < $CHECKOUT8_P99_TARGET_MS ms" \
        "$(verdict "$(lt "$(p99 checkout8)" "$CHECKOUT8_P99_TARGET_MS")")"
    writer_rows checkout
    writer_rows checkout8
    local priced ratio
    priced="$(rps checkout_priced)"
    ratio="$(awk -v a="$priced" -v b="$CHECKOUT_RPS" 'BEGIN { printf "%.2f", a / b }')"
    row "  with address, shipping, tax, code" "$(commas "$priced")/s" "$(p99 checkout_priced) ms" \
        ">= $PRICED_CHECKOUT_RATIO checkout" "$(verdict "$(ge "$ratio" "$PRICED_CHECKOUT_RATIO")") ($ratio)"
    writer_rows checkout_priced
    ratio="$(awk -v a="$(rps quote)" -v b="$(rps J)" 'BEGIN { printf "%.2f", a / b }')"
    row "POST /api/orders/quote" "$(commas "$(rps quote)") rps" "$(p99 quote) ms" ">= $QUOTE_TARGET_J J" \
        "$(verdict "$(ge "$ratio" "$QUOTE_TARGET_J")") ($ratio)"
    row "  sold + on hand / stock" "$((BUY_ON_HAND + PAID_ORDERS)) / $CHECKOUT_STOCK" "" "equal" "$(verdict "$CHECKOUT_OK")"
    row "  paid / seen, reserved, pending" "$PAID_ORDERS / $CHECKOUT_DONE, $BUY_RESERVED, $PENDING_ORDERS" "" "paid >= seen, 0, 0" ""
    CART_RPS="$(rps cart_add)"
    cart_status="$(verdict "$(ge "$CART_RPS" "$CART_ADD_TARGET")")"
    [[ -f "$WORK/routes/cart_add/non2xx" ]] && cart_status="INVALID (non-2xx answers)"
    row "POST /api/cart/{id}/items (one cart)" "$(commas "$CART_RPS")/s" "$(p99 cart_add) ms" ">= $(commas "$CART_ADD_TARGET")/s" "$cart_status"
    writer_rows cart_add
}

# writer_rows NAME: the median of what the store's one writer did in NAME's runs.
writer_rows() {
    local col
    col() { awk -v c="$1" '{ print $c }' "$WORK/routes/$2/writer" | median; }
    row "  writer ($1): statements/req" "$(col 1 "$1")" "" "" "(info)"
    row "    changes per transaction" "$(col 2 "$1")" "" "" "(info, group commit)"
    row "    busy, mean transaction" "$(col 3 "$1") %" "$(col 4 "$1") ms" "" "(info)"
}

# ---------------------------------------------------------------- 1. startup

log "bench: binary $BIN"
if [[ "$BENCH_ONLY" != money ]]; then
log "bench: startup, $BENCH_STARTUP_RUNS runs on fresh empty databases (ms to first 200 from /health; server-reported startup_ms)"
python3 "$BENCH_DIR/startup.py" "$BIN" "$WORK/startup" "$BENCH_STARTUP_RUNS" >"$WORK/startup.fresh" \
    || die "startup measurement failed"
awk '{ printf "  run %d: %7.1f ms   (server: %s ms)\n", NR, $1, $2 }' "$WORK/startup.fresh"
log "bench: startup, $BENCH_STARTUP_RUNS restarts on an existing database (for information)"
python3 "$BENCH_DIR/startup.py" "$BIN" "$WORK/startup" "$BENCH_STARTUP_RUNS" --reuse-db >"$WORK/startup.reuse" \
    || die "startup measurement (existing DB) failed"
awk '{ printf "  run %d: %7.1f ms   (server: %s ms)\n", NR, $1, $2 }' "$WORK/startup.reuse"

STARTUP_MED="$(cut -d' ' -f1 "$WORK/startup.fresh" | median)"
STARTUP_MIN="$(cut -d' ' -f1 "$WORK/startup.fresh" | minimum)"
STARTUP_MAX="$(cut -d' ' -f1 "$WORK/startup.fresh" | maximum)"
RESTART_MED="$(cut -d' ' -f1 "$WORK/startup.reuse" | median)"
fi

# ---------------------------------------------------------------- 2. load server

log "bench: starting the load-test server"
start_server load
LOAD_PID="$SERVER_PID"
log "  $BASE_URL (pid $LOAD_PID)"
sleep 2
RSS_FRESH_KIB="$(rss_kib "$LOAD_PID")"
RSS_FRESH_DETAIL="$(rss_detail "$LOAD_PID")"
log "  idle RSS (fresh): $(kib_to_mib "$RSS_FRESH_KIB") MiB ($RSS_FRESH_DETAIL)"

TOKEN="$(curl -fsS -H 'Content-Type: application/json' \
    --data "$(jq -cn --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{email: $e, password: $p}')" \
    "$BASE_URL/api/users/login" | jq -er .access_token)" || die "admin login failed"
# For information: a login verifies an argon2 hash (19 MiB of memory with OWASP parameters).
RSS_LOGIN_KIB="$(rss_kib "$LOAD_PID")"
log "  RSS after one login: $(kib_to_mib "$RSS_LOGIN_KIB") MiB ($(rss_detail "$LOAD_PID"))"

if [[ "$BENCH_ONLY" == money ]]; then
    route J GET /api/version
else
log "bench: seeding the catalog with $(commas "$BENCH_CATALOG_SEED") generated products"
python3 "$ROOT/fixtures/generate.py" --ndjson "$BENCH_CATALOG_SEED" >"$WORK/seed.ndjson" || die "cannot generate products"
SEEDED="$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' \
    --data-binary @"$WORK/seed.ndjson" "$BASE_URL/api/products/import?format=ndjson" | jq -er '.created')" \
    || die "seeding the catalog failed"
[[ "$SEEDED" == "$BENCH_CATALOG_SEED" ]] || die "seeding created $SEEDED products, not $BENCH_CATALOG_SEED"
PRODUCT_ID="$(curl -fsS "$BASE_URL/api/products?limit=1&offset=$((BENCH_CATALOG_SEED / 2))" | jq -er '.items[0].id')"
read -r TOP_CATEGORY TOP_COUNT < <(curl -fsS "$BASE_URL/api/products/categories" |
    jq -r '[.items[] | select(.depth == 1)] | max_by(.product_count) | "\(.path) \(.product_count)"')
log "  product $PRODUCT_ID; category page: $TOP_CATEGORY ($TOP_COUNT products in its subtree)"
curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"sku":"BENCH-HOT","name":"Hot SKU","price_cents":100,"stock":0}' "$BASE_URL/api/products" \
    || die "cannot create the hot SKU"

route J  GET /api/version
route me GET /api/users/me -H "Authorization: Bearer $TOKEN"
route product GET "/api/products/$PRODUCT_ID"
route category GET "/api/products?category=$TOP_CATEGORY&limit=20"
BODY_adjust='{"delta":1,"reason":"bench"}' route adjust POST /api/inventory/BENCH-HOT/adjustments \
    -H "Authorization: Bearer $TOKEN"
fi
# The money path: checkouts of one SKU (stock for the whole run) paid with the
# simulated provider's test card, and adds to one cart (the hot-row case).
for item in "BENCH-BUY 1999 $CHECKOUT_STOCK false" "BENCH-CART 500 1000000000 true" "BENCH-SHIP 1999 $CHECKOUT_STOCK true"; do
    read -r sku price units ships <<<"$item"
    curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data "{\"sku\":\"$sku\",\"name\":\"$sku\",\"price_cents\":$price,\"stock\":$units,\"requires_shipping\":$ships}" \
        "$BASE_URL/api/products" || die "cannot create $sku"
done
# What the priced checkout is priced by: a zone, a state's tax rate, a code.
for setup in \
    "/api/shipping/zones {\"name\":\"US\",\"countries\":[\"US\"],\"currency\":\"USD\",\"methods\":[{\"code\":\"ground\",\"name\":\"Ground\",\"rate\":{\"kind\":\"flat\",\"amount_cents\":499}}]}" \
    "/api/tax/rates {\"country\":\"US\",\"region\":\"CA\",\"name\":\"California\",\"rate_bps\":725}" \
    "/api/discounts {\"code\":\"BENCH10\",\"kind\":\"percent\",\"value\":1000}"; do
    curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data "${setup#* }" "$BASE_URL${setup%% *}" || die "cannot set up ${setup%% *}"
done
CART_ID="$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data '{}' \
    "$BASE_URL/api/cart" | jq -er .id)" || die "cannot create the bench cart"
CHECKOUT_BODY='{"items":[{"sku":"BENCH-BUY","quantity":1}],"payment":{"method":"card","card_number":"4242424242424242","exp_month":12,"exp_year":2035}}'
BODY_checkout="$CHECKOUT_BODY" route checkout POST /api/orders -H "Authorization: Bearer $TOKEN"
# The same checkout at 8 connections: the tail when the writer is not saturated.
BODY_checkout8="$CHECKOUT_BODY" CONNECTIONS_checkout8=8 \
    route checkout8 POST /api/orders -H "Authorization: Bearer $TOKEN"
BODY_cart_add='{"sku":"BENCH-CART","quantity":1}' route cart_add POST "/api/cart/$CART_ID/items" \
    -H "Authorization: Bearer $TOKEN"
PRICED_ORDER='"items":[{"sku":"BENCH-SHIP","quantity":1}],"shipping_address":{"name":"Ada Bench","line1":"1 Market St","city":"San Francisco","region":"CA","postal_code":"94105","country":"US"},"shipping_method":"ground","discount_codes":["BENCH10"]'
BODY_checkout_priced="{$PRICED_ORDER,\"payment\":{\"method\":\"card\",\"card_number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2035}}" \
    route checkout_priced POST /api/orders -H "Authorization: Bearer $TOKEN"
BODY_quote="{$PRICED_ORDER}" route quote POST /api/orders/quote -H "Authorization: Bearer $TOKEN"

log "bench: warm-up, ${BENCH_WARMUP} s per route"
for name in "${ROUTES[@]}"; do
    wrk_once "$name" "$BENCH_WARMUP" >"$WORK/routes/$name/warmup.log" || die "wrk failed on $name"
done

log "bench: $BENCH_RUNS rounds of wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d${BENCH_DURATION}s, routes interleaved"
for ((round = 1; round <= BENCH_RUNS; round++)); do
    log " round $round"
    for name in "${ROUTES[@]}"; do
        measure "$name"
    done
done

if [[ "$BENCH_ONLY" != money ]]; then
# Every adjustment wrk counted as done (warm-up, the probe and the rounds) must be on hand,
# and the ledger must agree. wrk's count can miss requests still in flight at its deadline.
ADJUST_DONE="$(( $(awk '/ requests in / { n += $1 } END { print n + 0 }' "$WORK/routes/adjust/wrk.log" "$WORK/routes/adjust/warmup.log") + 1 ))"
ADJUST_ON_HAND="$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/inventory/BENCH-HOT" | jq -er .on_hand)"
RECONCILE="$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data '{}' \
    "$BASE_URL/api/inventory/reconcile")" || die "reconcile failed"
RECONCILE_OK="$(jq -r '.consistent' <<<"$RECONCILE")"
log "bench: after the adjust load: on_hand $ADJUST_ON_HAND, adjustments counted by wrk $ADJUST_DONE; reconcile consistent: $RECONCILE_OK ($(jq -r '.skus_checked' <<<"$RECONCILE") SKUs)"
fi

# The checkout invariants: every unit sold is in a paid order, none is left
# held, nothing is pending, and every checkout wrk saw done is a paid order.
CHECKOUT_DONE="$(( $(awk '/ requests in / { n += $1 } END { print n + 0 }' "$WORK/routes/checkout/wrk.log" "$WORK/routes/checkout/warmup.log" \
    "$WORK/routes/checkout8/wrk.log" "$WORK/routes/checkout8/warmup.log") + 2 ))"
read -r BUY_ON_HAND BUY_RESERVED < <(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/inventory/BENCH-BUY" |
    jq -er '"\(.on_hand) \(.reserved)"')
# The priced checkouts are paid orders too: BENCH-SHIP's sold units count them.
read -r SHIP_ON_HAND SHIP_RESERVED < <(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/inventory/BENCH-SHIP" |
    jq -er '"\(.on_hand) \(.reserved)"')
PAID_ORDERS="$(( $(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/orders?status=paid&limit=1" | jq -er .total) \
    - (CHECKOUT_STOCK - SHIP_ON_HAND) ))"
PENDING_ORDERS="$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE_URL/api/orders?status=pending&limit=1" | jq -er .total)"
CHECKOUT_OK=0
(( BUY_ON_HAND + PAID_ORDERS == CHECKOUT_STOCK && BUY_RESERVED == 0 && SHIP_RESERVED == 0 && PENDING_ORDERS == 0 \
    && PAID_ORDERS >= CHECKOUT_DONE )) && CHECKOUT_OK=1
log "bench: after the checkout load: $PAID_ORDERS paid orders (wrk counted $CHECKOUT_DONE), on_hand $BUY_ON_HAND + sold = $((BUY_ON_HAND + PAID_ORDERS)) of $CHECKOUT_STOCK, reserved $BUY_RESERVED, pending $PENDING_ORDERS"
if [[ "$BENCH_ONLY" == money ]]; then
    echo
    row "metric" "value" "p99" "target" ""
    row "J  GET /api/version" "$(commas "$(rps J)") rps" "$(p99 J) ms" "" ""
    money_summary
    [[ "$BROKEN" == 1 ]] && die "some wrk runs got non-2xx answers"
    exit 0
fi

sleep 2
RSS_LOADED_KIB="$(rss_kib "$LOAD_PID")"
RSS_LOADED_DETAIL="$(rss_detail "$LOAD_PID")"
log "bench: idle RSS (after load): $(kib_to_mib "$RSS_LOADED_KIB") MiB ($RSS_LOADED_DETAIL)"

# ---------------------------------------------------------------- 4. notifications

log "bench: notifications, $BENCH_NOTIFY_RUNS drains of $(commas "$BENCH_NOTIFY_COUNT") queued to the local sink (fresh server each)"
python3 "$BENCH_DIR/notifications.py" "$BIN" "$WORK/notifications" "$BENCH_NOTIFY_RUNS" "$BENCH_NOTIFY_COUNT" \
    >"$WORK/notifications.out" || die "notification measurement failed"
awk '$1 == "drain" { printf "  run %d: queued in %.2f s (%s/s), drained in %.3f s: %s/s (first-last sent: %s/s)\n", $2, $3, $4, $5, $6, $7 }' \
    "$WORK/notifications.out"
read -r _ BASE_P50 BASE_P99 POST_P50 POST_P99 < <(grep '^enqueue ' "$WORK/notifications.out")
read -r _ REGISTER_P50 _ LAG_P50 LAG_MAX < <(grep '^register ' "$WORK/notifications.out")
log "  one at a time: GET /api/version p50 $BASE_P50 ms, p99 $BASE_P99 ms; POST /api/notifications p50 $POST_P50 ms, p99 $POST_P99 ms"
log "  POST /api/users/register p50 $REGISTER_P50 ms (argon2); welcome queued by the reactor $LAG_P50 ms (max $LAG_MAX ms) after the event"
drain_col() { awk -v c="$1" '$1 == "drain" { print $c }' "$WORK/notifications.out"; }
DRAIN_MED="$(drain_col 6 | median)"
DRAIN_MIN="$(drain_col 6 | minimum)"
DRAIN_MAX="$(drain_col 6 | maximum)"
DRAIN_FIRST_LAST="$(drain_col 7 | median)"
ENQUEUE_ALL="$(drain_col 4 | median)"
ENQUEUE_P50="$(awk -v a="$POST_P50" -v b="$BASE_P50" 'BEGIN { printf "%.2f", a - b }')"
ENQUEUE_P99="$(awk -v a="$POST_P99" -v b="$BASE_P99" 'BEGIN { printf "%.2f", a - b }')"

# ---------------------------------------------------------------- 5. import

log "bench: import, $BENCH_IMPORT_RUNS runs of $(commas "$BENCH_IMPORT_COUNT") generated products as one streamed NDJSON upload, then the file's first third (fresh server each)"
python3 "$BENCH_DIR/catalog.py" "$BIN" "$WORK/catalog" "$BENCH_IMPORT_COUNT" "$BENCH_IMPORT_RUNS" \
    >"$WORK/catalog.out" || die "import measurement failed"
awk '$1 == "import" { printf "  run %d: %s products in %.2f s: %s/s; heap %.1f MiB before, peak %.1f MiB (file %.1f MiB)\n", $2, $3, $4, $5, $6 / 1024, $7 / 1024, $8 / 1048576 }' \
    "$WORK/catalog.out"
# The last line is the memory check: a third of the file.
THIRD_PEAK_KIB="$(awk '$1 == "import" { p = $7 } END { print p }' "$WORK/catalog.out")"
sed -i '$d' "$WORK/catalog.out"
import_col() { awk -v c="$1" '$1 == "import" { print $c }' "$WORK/catalog.out"; }
IMPORT_MED="$(import_col 5 | median)"
IMPORT_MIN="$(import_col 5 | minimum)"
IMPORT_MAX="$(import_col 5 | maximum)"
IMPORT_FILE_MIB="$(import_col 8 | head -n1 | awk '{ printf "%.1f", $1 / 1048576 }')"
IMPORT_HEAP_GROWTH="$(awk '$1 == "import" { print ($7 - $6) / 1024 }' "$WORK/catalog.out" | maximum)"
# Peak heap for the whole file minus the peak for its first third, against the
# extra bytes of the file: a server that buffered the upload would grow by at least that.
IMPORT_EXTRA_MIB="$(import_col 7 | median | awk -v t="$THIRD_PEAK_KIB" '{ printf "%.1f", ($1 - t) / 1024 }')"
IMPORT_EXTRA_FILE_MIB="$(awk -v f="$IMPORT_FILE_MIB" 'BEGIN { printf "%.1f", f * 2 / 3 }')"

# ---------------------------------------------------------------- 6. dashboard

log "bench: dashboard frame time, 1,000 orders and 500 SKUs in state (median, p99; bytes written per frame)"
(cd "$ROOT" && cargo run --release -q -p shop-tui --example frame_bench) >"$WORK/frames.out" \
    || die "the dashboard frame benchmark failed"
awk '$1 == "frame" { printf "  %-8s %-6s median %5d us   p99 %5d us   %6d bytes\n", $2, $3, $4, $5, $6 }' "$WORK/frames.out"
log "bench: dashboard CPU in a 160x48 tmux pane: idle, then at ~100 events/s"
python3 "$BENCH_DIR/dashboard.py" "$BIN" "$WORK/dashboard" >"$WORK/dashboard.out" \
    || die "the dashboard CPU measurement failed"
read -r _ DASH_IDLE DASH_LOAD DASH_EVENTS DASH_RSS < <(grep '^dashboard ' "$WORK/dashboard.out")
log "  idle $DASH_IDLE% of a core; $DASH_LOAD% at $DASH_EVENTS events/s; RSS $(kib_to_mib "$DASH_RSS") MiB"
frame_col() { awk -v size="$1" -v layout="$2" -v c="$3" '$1 == "frame" && $2 == size && $3 == layout { print $c }' "$WORK/frames.out"; }
FRAME_TARGET_US=2000
DASH_IDLE_TARGET=1

search_measure
storefront_measure
webhooks_measure
postgres_measure

# ---------------------------------------------------------------- summary

J_RPS="$(rps J)"

# ratio_row NAME TARGET: throughput of a route as a fraction of J
ratio_row() {
    local name="$1" target="$2" r ratio status
    r="$(rps "$name")"
    ratio="$(awk -v a="$r" -v b="$J_RPS" 'BEGIN { printf "%.2f", a / b }')"
    status="$(verdict "$(ge "$ratio" "$target")") ($ratio)"
    [[ -f "$WORK/routes/$name/non2xx" ]] && status="INVALID (non-2xx answers)"
    row "$(cat "$WORK/routes/$name/method") $(cat "$WORK/routes/$name/path")" \
        "$(commas "$r") rps" "$(p99 "$name") ms" ">= $target J" "$status"
    # Ratio of each run to the J run of the same round: shows how much noise there was.
    row "  per round / J" "$(paste -d' ' "$WORK/routes/$name/rps" "$WORK/routes/J/rps" |
        awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 / $2 }')" "" "" ""
}

echo
echo "shop benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $("$BIN" --version 2>/dev/null || echo "$BIN")"
echo "wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS -d${BENCH_DURATION}s x $BENCH_RUNS interleaved rounds; medians"
echo
row "metric" "value" "p99" "target" ""
row "startup to healthy (median)" "$(printf '%.0f' "$STARTUP_MED") ms" "" "< $STARTUP_TARGET_MS ms" \
    "$(verdict "$(lt "$STARTUP_MED" "$STARTUP_TARGET_MS")")"
row "  min / max of $BENCH_STARTUP_RUNS" "$(printf '%.0f / %.0f' "$STARTUP_MIN" "$STARTUP_MAX") ms" "" "" ""
row "  restart, existing DB (median)" "$(printf '%.0f' "$RESTART_MED") ms" "" "" "(info)"
j_status=""
[[ -f "$WORK/routes/J/non2xx" ]] && j_status="INVALID (non-2xx answers)"
row "J  GET /api/version" "$(commas "$J_RPS") rps" "$(p99 J) ms" "" "$j_status"
ratio_row me 0.7
ratio_row product 0.5
ratio_row category 0.3
ADJUST_RPS="$(rps adjust)"
adjust_status="$(verdict "$(ge "$ADJUST_RPS" "$ADJUST_TARGET")")"
[[ -f "$WORK/routes/adjust/non2xx" ]] && adjust_status="INVALID (non-2xx answers)"
row "POST .../BENCH-HOT/adjustments" "$(commas "$ADJUST_RPS")/s" "$(p99 adjust) ms" ">= $(commas "$ADJUST_TARGET")/s" "$adjust_status"
invariants="$(verdict "$([[ "$RECONCILE_OK" == true && "$ADJUST_ON_HAND" -ge "$ADJUST_DONE" ]] && echo 1 || echo 0)")"
row "  invariants after the load" "reconcile $RECONCILE_OK" "" "no drift" "$invariants"
row "  on_hand / adjustments seen" "$ADJUST_ON_HAND / $ADJUST_DONE" "" "" "(wrk may miss in-flight ones)"
money_summary
row "import NDJSON (median)" "$(commas "$IMPORT_MED")/s" "" ">= $(commas "$IMPORT_TARGET")/s" \
    "$(verdict "$(ge "$IMPORT_MED" "$IMPORT_TARGET")")"
row "  min / max of $BENCH_IMPORT_RUNS" "$(commas "$IMPORT_MIN") / $(commas "$IMPORT_MAX")/s" "" "" ""
row "  heap growth (max)" "$(printf '%.1f' "$IMPORT_HEAP_GROWTH") MiB" "" "" "(file $IMPORT_FILE_MIB MiB)"
row "  peak heap, whole file - first third" "+$IMPORT_EXTRA_MIB MiB" "" "< half the file's +$IMPORT_EXTRA_FILE_MIB MiB" \
    "$(verdict "$(lt "$IMPORT_EXTRA_MIB" "$(awk -v f="$IMPORT_EXTRA_FILE_MIB" 'BEGIN { print f / 2 }')")")"
row "idle RSS (fresh)" "$(kib_to_mib "$RSS_FRESH_KIB") MiB" "" "< $RSS_TARGET_MIB MiB" \
    "$(verdict "$(lt "$RSS_FRESH_KIB" $((RSS_TARGET_MIB * 1024)))")"
row "  breakdown" "$RSS_FRESH_DETAIL" "" "" ""
row "  after one login, no load" "$(kib_to_mib "$RSS_LOGIN_KIB") MiB" "" "" "(info)"
row "idle RSS (after load)" "$(kib_to_mib "$RSS_LOADED_KIB") MiB" "" "< $RSS_TARGET_MIB MiB" \
    "$(verdict "$(lt "$RSS_LOADED_KIB" $((RSS_TARGET_MIB * 1024)))")"
row "  breakdown" "$RSS_LOADED_DETAIL" "" "" ""
row "notification drain (median)" "$(commas "$DRAIN_MED")/s" "" ">= $(commas "$NOTIFY_DRAIN_TARGET")/s" \
    "$(verdict "$(ge "$DRAIN_MED" "$NOTIFY_DRAIN_TARGET")")"
row "  min / max of $BENCH_NOTIFY_RUNS" "$(commas "$DRAIN_MIN") / $(commas "$DRAIN_MAX")/s" "" "" ""
row "  first to last sent (median)" "$(commas "$DRAIN_FIRST_LAST")/s" "" "" "(info)"
row "  enqueue, 64 connections" "$(commas "$ENQUEUE_ALL")/s" "" "" "(info)"
row "enqueue in a request (p50)" "+$ENQUEUE_P50 ms" "+$ENQUEUE_P99 ms" "< $ENQUEUE_TARGET_MS ms" \
    "$(verdict "$(lt "$ENQUEUE_P50" "$ENQUEUE_TARGET_MS")")"
row "  register -> welcome queued" "$LAG_P50 ms" "" "" "(info, off the request)"
us_to_ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
for size in 80x24 160x48; do
    for layout in grid zoomed; do
        med="$(frame_col "$size" "$layout" 4)"
        row "dashboard frame $size $layout" "$(us_to_ms "$med") ms" "$(us_to_ms "$(frame_col "$size" "$layout" 5)") ms" \
            "< $(us_to_ms "$FRAME_TARGET_US") ms" "$(verdict "$(lt "$med" "$FRAME_TARGET_US")")"
    done
done
row "dashboard CPU, idle" "$DASH_IDLE %" "" "< $DASH_IDLE_TARGET %" "$(verdict "$(lt "$DASH_IDLE" "$DASH_IDLE_TARGET")")"
row "dashboard CPU, $DASH_EVENTS events/s" "$DASH_LOAD %" "" "" "(info)"
search_summary
storefront_summary
webhooks_summary
postgres_summary

if [[ "$BROKEN" == 1 ]]; then
    log "bench: error: some wrk runs got non-2xx answers; the throughput figures above are not valid"
    exit 1
fi
