//! The client's address behind trusted proxies (`--trusted-proxy CIDR`).
//!
//! `X-Forwarded-For` is believed only from a connection whose peer is a
//! trusted proxy, and then read from the right: each proxy appends the
//! address it received the request from, so the rightmost address that is
//! not itself a trusted proxy is the client; anything to its left was sent
//! by the client and could be forged. Rate limits, the audit log and
//! session records all see this address.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// Whether `ip` is one of the trusted proxies.
pub fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client's address for a request from `peer` carrying these headers.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    if proxies.is_empty() || !trusted(peer, proxies) {
        return peer;
    }
    // Several headers read as one list, in order.
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // Garbage: nothing left of it can be trusted; the last good hop is the client.
            return client;
        };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_trusted_proxy as parse_trusted;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(FORWARDED_FOR, value.parse().expect("header"));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = [parse_trusted("10.0.0.0/8").expect("cidr")];
        let forged = headers(&["1.2.3.4"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &forged, &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &forged, &[]),
            ip("10.0.0.1"),
            "no proxies: never believed"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = [
            parse_trusted("10.0.0.0/8").expect("cidr"),
            parse_trusted("192.168.1.7").expect("single address"),
        ];
        // The client forged 6.6.6.6; the real one is 198.51.100.2, then two proxies.
        let chain = headers(&["6.6.6.6, 198.51.100.2", "192.168.1.7"]);
        assert_eq!(
            client_ip(ip("10.1.2.3"), &chain, &proxies),
            ip("198.51.100.2")
        );
        // A trusted peer with no header is itself the client.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &proxies),
            ip("10.1.2.3")
        );
        // Every hop trusted: the leftmost one.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &headers(&["10.9.9.9"]), &proxies),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(
            client_ip(
                ip("10.1.2.3"),
                &headers(&["1.1.1.1, nonsense, 10.0.0.5"]),
                &proxies
            ),
            ip("10.0.0.5")
        );
        // IPv6, and an IPv4 peer seen as IPv4-mapped IPv6.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &headers(&["2001:db8::1"]), &proxies),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bad_proxy_specs_are_refused() {
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("proxy.local").is_err());
    }
}
