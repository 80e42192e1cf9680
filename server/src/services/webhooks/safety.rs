//! Outbound safety: which URLs an endpoint may have and which addresses a
//! delivery may connect to (SSRF).
//!
//! An endpoint URL must be `https://` and its host must resolve only to
//! public addresses: loopback, private, link-local, CGNAT, unique-local,
//! multicast, unspecified, documentation, reserved and cloud metadata
//! addresses are refused. Hosts on the allow list (`--webhook-allow-host`)
//! are exempt and may use `http://`, for local development and tests.
//!
//! The check runs when an endpoint is saved, and again on every delivery,
//! inside the HTTP client's resolver ([`GuardedResolver`]): the client
//! connects only to addresses that passed, so a name that resolved to a
//! public address at save time and to 10.0.0.1 now (DNS rebinding) gets
//! no connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::Url;

/// IPv4 ranges that are not the public internet, beyond what std's methods name.
const V4_BLOCKED: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // carrier-grade NAT
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, broadcast
];

const V6_BLOCKED: &[&str] = &[
    "::/128",         // unspecified
    "::1/128",        // loopback
    "64:ff9b:1::/48", // local-use NAT64
    "100::/64",       // discard
    "2001:db8::/32",  // documentation
    "fc00::/7",       // unique local (fd00:ec2::254, the EC2 metadata service, is in it)
    "fe80::/10",      // link-local
    "fec0::/10",      // site-local (deprecated)
    "ff00::/8",       // multicast
];

/// Whether a delivery may connect to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address inside IPv6 (mapped, compatible or NAT64) is judged as IPv4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            if let Ok(nat64) = "64:ff9b::/96".parse::<Ipv6Net>()
                && nat64.contains(&v6)
            {
                let octets = v6.octets();
                return is_public_v4(Ipv4Addr::new(
                    octets[12], octets[13], octets[14], octets[15],
                ));
            }
            !V6_BLOCKED
                .iter()
                .filter_map(|net| net.parse::<Ipv6Net>().ok())
                .any(|net| net.contains(&v6))
                && !is_ipv4_compatible(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || V4_BLOCKED
            .iter()
            .filter_map(|net| net.parse::<Ipv4Net>().ok())
            .any(|net| net.contains(&ip)))
}

/// `::a.b.c.d`, the deprecated IPv4-compatible form: never a real destination.
fn is_ipv4_compatible(ip: Ipv6Addr) -> bool {
    ip.segments()[..6].iter().all(|s| *s == 0)
}

/// Hosts exempt from the address check, each for any port or one port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<(String, Option<u16>)>);

impl AllowList {
    /// `HOST` or `HOST:PORT` entries (`[::1]:8080` for IPv6).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let url = Url::parse(&format!("http://{entry}"))
                .map_err(|_| format!("`{entry}` is not HOST or HOST:PORT"))?;
            let host = url
                .host_str()
                .filter(|_| url.path() == "/" && url.username().is_empty())
                .ok_or_else(|| format!("`{entry}` is not HOST or HOST:PORT"))?;
            // The URL parser drops :80 as http's default: read the port from the entry.
            let port = entry
                .rsplit_once(':')
                .filter(|(host, _)| {
                    !host.ends_with(':') && (!host.contains(':') || host.ends_with(']'))
                })
                .map(|(_, port)| port.parse::<u16>())
                .transpose()
                .map_err(|_| format!("`{entry}`: the port is not a number"))?;
            hosts.push((host.trim_matches(['[', ']']).to_ascii_lowercase(), port));
        }
        Ok(AllowList(hosts))
    }

    /// Whether `host` at `port` is on the list.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.0
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }

    /// Whether `host` is on the list at any port: the resolver sees no port.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.0.iter().any(|(h, _)| *h == host)
    }
}

/// Why a URL is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL as a webhook's: parsed, `https://` (or `http://` for an allowed
/// host), no credentials, and its host with its port. Returns whether the
/// host is on the allow list.
pub fn check_syntax(text: &str, allow: &AllowList) -> Result<(Url, bool), Refused> {
    let url =
        Url::parse(text.trim()).map_err(|err| Refused(format!("`{text}` is not a URL ({err})")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Refused("the URL has no host".to_owned()))?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let allowed = allow.allows(&host, port);
    match url.scheme() {
        "https" => {}
        "http" if allowed => {}
        "http" => {
            return Err(Refused(
                "must be an https:// URL (http:// only for hosts allowed with --webhook-allow-host)"
                    .to_owned(),
            ));
        }
        other => {
            return Err(Refused(format!(
                "`{other}://` URLs cannot receive webhooks"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused(
            "must not carry credentials; the signature authenticates deliveries".to_owned(),
        ));
    }
    Ok((url, allowed))
}

/// The full check when an endpoint is saved: the syntax, then every address
/// its host resolves to must be public (unless the host is allowed).
pub async fn check_url(text: &str, allow: &AllowList) -> Result<Url, Refused> {
    let (url, allowed) = check_syntax(text, allow)?;
    if allowed {
        return Ok(url);
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|err| Refused(format!("the host `{host}` does not resolve ({err})")))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refused(format!("the host `{host}` does not resolve")));
    }
    if let Some(bad) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused(if host.parse::<IpAddr>().is_ok() {
            format!("{host} is not a public address")
        } else {
            format!(
                "the host `{host}` resolves to {}, which is not a public address",
                bad.ip()
            )
        }));
    }
    Ok(url)
}

/// The delivery client's resolver: the names it resolves for a connection
/// keep only public addresses (all of them for an allowed host), so the
/// client cannot be pointed at the inside by a change in DNS.
pub struct GuardedResolver {
    pub allow: AllowList,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.allow.allows_host(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("`{host}` resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(allow: AllowList) -> Arc<Self> {
        Arc::new(GuardedResolver { allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn internal_address_classes_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(bad)), "{bad} counted as public");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(good)), "{good} counted as internal");
        }
    }

    #[test]
    fn only_https_unless_the_host_is_allowed() {
        let allow = AllowList::parse(&["127.0.0.1:9000".to_owned(), "receiver.local".to_owned()])
            .expect("parse");
        assert!(check_syntax("https://example.com/hooks", &allow).is_ok());
        assert!(check_syntax("http://example.com/hooks", &allow).is_err());
        assert!(check_syntax("ftp://example.com/", &allow).is_err());
        assert!(check_syntax("https://user:pw@example.com/", &allow).is_err());
        assert!(check_syntax("not a url", &allow).is_err());
        assert_eq!(
            check_syntax("http://127.0.0.1:9000/x", &allow).map(|(_, a)| a),
            Ok(true)
        );
        // The allowed port only.
        assert!(check_syntax("http://127.0.0.1:9001/x", &allow).is_err());
        // A host without a port is allowed at every port.
        assert!(check_syntax("http://receiver.local:1234/", &allow).is_ok());
        assert!(allow.allows_host("RECEIVER.local"));
        let v6 =
            AllowList::parse(&["[::1]:8080".to_owned(), "localhost:80".to_owned()]).expect("v6");
        assert!(v6.allows("[::1]", 8080));
        assert!(v6.allows("localhost", 80));
        assert!(!v6.allows("localhost", 81));
        assert!(AllowList::parse(&["host:port".to_owned()]).is_err());
        assert!(AllowList::parse(&["http://x/y".to_owned()]).is_err());
    }

    #[tokio::test]
    async fn names_and_literals_that_point_inside_are_refused_at_save() {
        let none = AllowList::default();
        for bad in [
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://10.0.0.5:8443/",
            "https://localhost/hook",
        ] {
            let err = check_url(bad, &none).await.expect_err(bad);
            assert!(err.0.contains("not a public address"), "{bad}: {err}");
        }
        // The same address is fine once allowed.
        let allow = AllowList::parse(&["127.0.0.1".to_owned()]).expect("parse");
        assert!(
            check_url("http://127.0.0.1:8080/hook", &allow)
                .await
                .is_ok()
        );
    }

    /// The delivery client's resolver is the guard against DNS rebinding:
    /// a name that resolves only inside gives the client no address at all.
    #[tokio::test]
    async fn the_resolver_hands_the_client_only_public_addresses() {
        use reqwest::dns::Resolve;
        let guarded = GuardedResolver::shared(AllowList::default());
        let refused = guarded
            .resolve("localhost".parse().expect("a name"))
            .await
            .err()
            .expect("localhost resolves only to loopback");
        assert!(
            refused.to_string().contains("no public address"),
            "{refused}"
        );
        let allowed =
            GuardedResolver::shared(AllowList::parse(&["localhost".to_owned()]).expect("parse"));
        let addresses: Vec<SocketAddr> = allowed
            .resolve("localhost".parse().expect("a name"))
            .await
            .expect("an allowed host resolves")
            .collect();
        assert!(!addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()));
    }

    /// End to end through the client: a refused name never gets a connection.
    #[tokio::test]
    async fn the_delivery_client_cannot_reach_a_private_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let webhooks = super::super::Webhooks::new(&crate::config::WebhooksConfig::default());
        let err = webhooks
            .client()
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await
            .expect_err("no connection to a loopback name");
        let mut chain = String::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(cause) = source {
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        assert!(chain.contains("no public address"), "{chain}");
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "the client connected anyway");
    }
}
