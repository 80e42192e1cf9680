// The status page, live: health from /health, rates and p99 from /metrics
// (the same sources as `shop dashboard`), every two seconds. A failed poll
// (the server restarting) shows "reconnecting", with health unknown and no
// figures, and the next poll that is answered brings the page back.
(function () {
  "use strict";
  var PERIOD = 2000;
  var table = document.getElementById("services");
  var live = document.getElementById("live");
  var overall = document.getElementById("overall");
  var previous = null;

  function words(status) { return table.dataset[status] || table.dataset.unknown; }

  // Prometheus text -> per service: request count, error count, and latency buckets.
  function parse(text) {
    var out = {};
    text.split("\n").forEach(function (line) {
      if (!line || line[0] === "#") return;
      var m = line.match(/^(shop_http_(?:requests_total|errors_total|request_duration_seconds_bucket))\{([^}]*)\} ([0-9.eE+-]+|\+Inf)$/);
      if (!m) return;
      var labels = {};
      m[2].replace(/(\w+)="((?:[^"\\]|\\.)*)"/g, function (_, k, v) { labels[k] = v; });
      var s = out[labels.service] || (out[labels.service] = { requests: 0, errors: 0, buckets: {} });
      var value = parseFloat(m[3]);
      if (m[1] === "shop_http_requests_total") s.requests += value;
      else if (m[1] === "shop_http_errors_total") s.errors += value;
      else s.buckets[labels.le] = (s.buckets[labels.le] || 0) + value;
    });
    return out;
  }

  // The 99th percentile from the growth of each cumulative bucket since the last sample.
  function p99(now, before) {
    var bounds = Object.keys(now).sort(function (a, b) {
      return (a === "+Inf" ? Infinity : +a) - (b === "+Inf" ? Infinity : +b);
    });
    var grown = bounds.map(function (le) { return now[le] - ((before && before[le]) || 0); });
    var total = grown[grown.length - 1] || 0;
    if (total <= 0) return null;
    for (var i = 0; i < bounds.length; i++) {
      if (grown[i] >= total * 0.99) return bounds[i] === "+Inf" ? Infinity : +bounds[i];
    }
    return null;
  }

  function ms(seconds) {
    if (seconds === null) return "–";
    if (seconds === Infinity) return "> 10 s";
    return seconds * 1000 < 1 ? "≤ " + (seconds * 1000).toFixed(1) + " ms" : "≤ " + Math.round(seconds * 1000) + " ms";
  }

  function setHealth(row, status) {
    var badge = row.querySelector("[data-health]");
    badge.className = "badge badge-" + status;
    badge.textContent = words(status);
    row.dataset.status = status;
  }

  function poll() {
    Promise.all([
      fetch("/health", { cache: "no-store" }).then(function (r) { return r.json(); }),
      fetch("/metrics", { cache: "no-store" }).then(function (r) { if (!r.ok) throw r; return r.text(); })
    ]).then(function (both) {
      var health = both[0], metrics = parse(both[1]), at = Date.now();
      (health.services || []).forEach(function (s) {
        var row = table.querySelector('[data-service="' + s.service + '"]');
        if (row) setHealth(row, s.status);
      });
      overall.className = "badge badge-" + health.status;
      overall.textContent = overall.textContent.replace(/: .*$/, ": " + words(health.status));
      if (previous) {
        var seconds = (at - previous.at) / 1000;
        table.querySelectorAll("[data-service]").forEach(function (row) {
          var none = { requests: 0, errors: 0, buckets: {} };
          var now = metrics[row.dataset.service] || none, before = previous.metrics[row.dataset.service] || none;
          var requests = now.requests - before.requests, errors = now.errors - before.errors;
          row.querySelector("[data-rate]").textContent = (requests / seconds).toFixed(1);
          row.querySelector("[data-p99]").textContent = ms(p99(now.buckets, before.buckets));
          row.querySelector("[data-errors]").textContent = requests > 0 ? (100 * errors / requests).toFixed(1) + " %" : "0 %";
        });
      }
      previous = { at: at, metrics: metrics };
      live.textContent = live.dataset.live + " · " + new Date(at).toLocaleTimeString();
      live.dataset.state = "live";
    }).catch(function () {
      // Unreachable: what the page showed is no longer known, so it shows nothing stale.
      previous = null;
      table.querySelectorAll("[data-service]").forEach(function (row) {
        setHealth(row, "unknown");
        ["[data-rate]", "[data-p99]", "[data-errors]"].forEach(function (cell) {
          row.querySelector(cell).textContent = "–";
        });
      });
      overall.className = "badge badge-unknown";
      overall.textContent = overall.textContent.replace(/: .*$/, ": " + words("unknown"));
      live.textContent = live.dataset.reconnecting;
      live.dataset.state = "reconnecting";
    }).then(function () { setTimeout(poll, PERIOD); });
  }
  poll();

  // Staff: the figures follow the event stream; EventSource reconnects by itself.
  var ops = document.getElementById("ops");
  if (!ops || !window.EventSource) return;
  var events = document.getElementById("ops-events"), pending = null;
  function rows(body, pairs) {
    body.innerHTML = "";
    pairs.forEach(function (pair) {
      var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.scope = "row"; th.textContent = pair[0]; td.className = "num"; td.textContent = pair[1];
      tr.appendChild(th); tr.appendChild(td); body.appendChild(tr);
    });
  }
  function refresh() {
    pending = null;
    fetch("/status/ops/data", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (f) {
      rows(document.getElementById("ops-stock"), (f.stock || []).map(function (s) { return [s.sku, s.available]; }));
      rows(document.getElementById("ops-orders"), (f.orders || []).map(function (o) { return [o.status, o.count]; }));
      rows(document.getElementById("ops-searches"), ((f.searches || {}).top || []).map(function (q) { return [q.query, q.count]; }));
      document.getElementById("ops-search-total").textContent = ops.dataset.searches
        .replace("{total}", (f.searches || {}).total || 0).replace("{zero}", (f.searches || {}).zero || 0);
    }).catch(function () {});
  }
  var stream = new EventSource("/status/ops/events");
  stream.onmessage = function (message) {
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    var li = document.createElement("li");
    li.textContent = new Date().toLocaleTimeString() + " " + (event.type || event.kind || "event");
    events.insertBefore(li, events.firstChild);
    while (events.children.length > 20) events.removeChild(events.lastChild);
    if (!pending) pending = setTimeout(refresh, 500);
  };
})();
