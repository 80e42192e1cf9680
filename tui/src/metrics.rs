//! Per-service request rate, error rate and p99 latency from two scrapes of
//! the server's Prometheus text (`GET /metrics`).
//!
//! The server exports cumulative counters and a cumulative latency
//! histogram per service, route and method. What an operator wants is "how
//! busy and how slow right now", so both come from the difference between
//! two scrapes: counters become rates, and the bucket counts that grew
//! between the scrapes give the p99 of just that window (as PromQL's
//! `histogram_quantile` over `rate(...)` would), not of the whole uptime.

use std::collections::BTreeMap;

const REQUESTS: &str = "shop_http_requests_total";
const ERRORS: &str = "shop_http_errors_total";
const DURATION: &str = "shop_http_request_duration_seconds";

/// The cumulative figures of one service in one scrape, summed over its
/// routes, methods and statuses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceCounters {
    pub requests: f64,
    pub errors: f64,
    /// Cumulative latency buckets: (upper bound in seconds, count), ascending.
    pub buckets: Vec<(f64, f64)>,
}

/// One scrape: counters per service name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub services: BTreeMap<String, ServiceCounters>,
}

/// What changed between two scrapes, per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub requests_per_second: f64,
    /// Share of the window's requests that failed with a 5xx, 0.0 to 1.0.
    pub error_ratio: f64,
    /// None when the service answered no request in the window.
    pub p99_ms: Option<f64>,
}

/// Parses Prometheus text; lines or metrics it does not know are ignored.
pub fn parse(text: &str) -> Scrape {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return Scrape::default();
    };
    let mut services: BTreeMap<String, ServiceCounters> = BTreeMap::new();
    for sample in scrape.samples {
        let Some(service) = sample.labels.get("service") else {
            continue;
        };
        let entry = services.entry(service.to_owned()).or_default();
        match (sample.metric.as_str(), sample.value) {
            (REQUESTS, prometheus_parse::Value::Counter(value))
            | (REQUESTS, prometheus_parse::Value::Untyped(value)) => entry.requests += value,
            (ERRORS, prometheus_parse::Value::Counter(value))
            | (ERRORS, prometheus_parse::Value::Untyped(value)) => entry.errors += value,
            (DURATION, prometheus_parse::Value::Histogram(buckets)) => {
                for bucket in buckets {
                    add_bucket(&mut entry.buckets, bucket.less_than, bucket.count);
                }
            }
            _ => {}
        }
    }
    Scrape { services }
}

fn add_bucket(buckets: &mut Vec<(f64, f64)>, bound: f64, count: f64) {
    match buckets.binary_search_by(|(le, _)| le.total_cmp(&bound)) {
        Ok(at) => buckets[at].1 += count,
        Err(at) => buckets.insert(at, (bound, count)),
    }
}

/// The rates of every service seen in `current`, over `seconds` since `previous`,
/// without the `own` requests the watcher itself made in between (per service).
/// A counter that went down (the server restarted) counts from zero.
pub fn rates(
    previous: &Scrape,
    current: &Scrape,
    seconds: f64,
    own: &BTreeMap<String, f64>,
) -> BTreeMap<String, Rates> {
    let seconds = seconds.max(1e-3);
    let empty = ServiceCounters::default();
    current
        .services
        .iter()
        .map(|(name, now)| {
            let before = previous.services.get(name).unwrap_or(&empty);
            let restarted = now.requests < before.requests;
            let before = if restarted { &empty } else { before };
            let watching = own.get(name).copied().unwrap_or(0.0);
            let requests = (now.requests - before.requests - watching).max(0.0);
            let errors = (now.errors - before.errors).max(0.0);
            let window: Vec<(f64, f64)> = now
                .buckets
                .iter()
                .map(|&(bound, count)| {
                    let earlier = before
                        .buckets
                        .iter()
                        .find(|(le, _)| *le == bound)
                        .map_or(0.0, |(_, c)| *c);
                    (bound, (count - earlier).max(0.0))
                })
                .collect();
            let rates = Rates {
                requests_per_second: requests / seconds,
                error_ratio: if requests > 0.0 {
                    (errors / requests).min(1.0)
                } else {
                    0.0
                },
                p99_ms: quantile(&window, 0.99).map(|s| s * 1000.0),
            };
            (name.clone(), rates)
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, interpolated linearly inside the
/// bucket it falls in (PromQL's `histogram_quantile`). A quantile in the
/// `+Inf` bucket is reported as the largest finite bound.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last().map(|(_, count)| *count)?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            let fraction = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * fraction);
        }
        lower = bound;
        below = count;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(users_requests: u64, users_errors: u64, fast: u64, slow: u64) -> String {
        let total = fast + slow;
        format!(
            "# TYPE shop_http_requests_total counter
shop_http_requests_total{{service=\"users\",route=\"/api/users/me\",method=\"GET\",status=\"200\"}} {users_requests}
shop_http_requests_total{{service=\"gateway\",route=\"/health\",method=\"GET\",status=\"200\"}} 7
# TYPE shop_http_errors_total counter
shop_http_errors_total{{service=\"users\",route=\"/api/users/me\",method=\"GET\",status=\"500\"}} {users_errors}
# TYPE shop_http_request_duration_seconds histogram
shop_http_request_duration_seconds_bucket{{service=\"users\",route=\"/api/users/me\",method=\"GET\",le=\"0.001\"}} {fast}
shop_http_request_duration_seconds_bucket{{service=\"users\",route=\"/api/users/me\",method=\"GET\",le=\"0.1\"}} {total}
shop_http_request_duration_seconds_bucket{{service=\"users\",route=\"/api/users/me\",method=\"GET\",le=\"+Inf\"}} {total}
shop_http_request_duration_seconds_sum{{service=\"users\",route=\"/api/users/me\",method=\"GET\"}} 1.5
shop_http_request_duration_seconds_count{{service=\"users\",route=\"/api/users/me\",method=\"GET\"}} {total}
"
        )
    }

    #[test]
    fn counters_and_buckets_are_summed_per_service() {
        let scrape = parse(&text(10, 1, 8, 2));
        let users = &scrape.services["users"];
        assert_eq!(users.requests, 10.0);
        assert_eq!(users.errors, 1.0);
        assert_eq!(
            users.buckets,
            vec![(0.001, 8.0), (0.1, 10.0), (f64::INFINITY, 10.0)]
        );
        assert_eq!(scrape.services["gateway"].requests, 7.0);
    }

    #[test]
    fn rates_come_from_the_difference_between_scrapes() {
        let before = parse(&text(10, 1, 8, 2));
        // 100 more requests in 2 s, 10 of them failing, all of them slow.
        let after = parse(&text(110, 11, 8, 102));
        let rates = rates(&before, &after, 2.0, &BTreeMap::new());
        let users = rates["users"];
        assert_eq!(users.requests_per_second, 50.0);
        assert!((users.error_ratio - 0.1).abs() < 1e-9);
        let p99 = users.p99_ms.expect("p99");
        assert!(p99 > 1.0 && p99 <= 100.0, "{p99}");
        // The gateway did nothing in the window.
        assert_eq!(rates["gateway"].requests_per_second, 0.0);
        assert_eq!(rates["gateway"].p99_ms, None);
    }

    #[test]
    fn a_restarted_server_counts_from_zero() {
        let before = parse(&text(1000, 0, 1000, 0));
        let after = parse(&text(4, 0, 4, 0));
        assert_eq!(
            rates(&before, &after, 1.0, &BTreeMap::new())["users"].requests_per_second,
            4.0
        );
    }

    #[test]
    fn the_watchers_own_requests_are_not_the_services_traffic() {
        let before = parse(&text(10, 0, 10, 0));
        let after = parse(&text(30, 0, 30, 0));
        // The dashboard itself asked users 4 times in the window.
        let own = BTreeMap::from([("users".to_owned(), 4.0), ("gateway".to_owned(), 9.0)]);
        let rates = rates(&before, &after, 2.0, &own);
        assert_eq!(rates["users"].requests_per_second, 8.0);
        assert_eq!(
            rates["gateway"].requests_per_second, 0.0,
            "never below zero"
        );
    }

    #[test]
    fn quantile_interpolates_inside_a_bucket() {
        let buckets = [(0.01, 50.0), (0.02, 100.0), (f64::INFINITY, 100.0)];
        let p50 = quantile(&buckets, 0.5).expect("p50");
        assert!((p50 - 0.01).abs() < 1e-9);
        let p99 = quantile(&buckets, 0.99).expect("p99");
        assert!((p99 - 0.0198).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(&[(f64::INFINITY, 0.0)], 0.99), None);
        assert_eq!(
            quantile(&[(0.5, 0.0), (f64::INFINITY, 3.0)], 0.99),
            Some(0.5)
        );
    }

    #[test]
    fn garbage_is_an_empty_scrape() {
        assert!(parse("not prometheus at all {").services.is_empty());
    }
}
