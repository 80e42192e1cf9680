//! The accept loop: HTTP/1.1 connections served by hyper with the limits a
//! server facing hostile clients needs, which `axum::serve` does not set.
//!
//! - A client must finish a request's headers within the header-read
//!   timeout. hyper starts that clock whenever it waits for a request head,
//!   so it is also how long a keep-alive connection may sit idle between
//!   requests. Without it, connections that send half a request and stop
//!   are kept forever, until the process runs out of file descriptors.
//! - One address may hold at most so many connections at once; a further
//!   one is closed as soon as it is accepted.
//!
//! On shutdown the loop stops accepting, asks every connection to finish its
//! in-flight request and close, and returns once they all have.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::ClientAddr;

/// What one client may hold of the server's connections.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    /// 0: no cap.
    pub max_per_address: usize,
    /// Proxies whose `X-Forwarded-For` names the client. Their own
    /// connections are not capped per address: one proxy carries many clients.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Open connections per client address.
#[derive(Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; dropping it (when the connection ends) uncounts it.
struct Counted {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl OpenConnections {
    /// Counts a new connection from `ip`, or `None` when `ip` already holds `max`.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Counted> {
        let mut open = self
            .0
            .lock()
            .expect("connection counts lock is never poisoned");
        let count = open.entry(ip).or_insert(0);
        if max > 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(Counted {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self
            .open
            .0
            .lock()
            .expect("connection counts lock is never poisoned");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on every connection `listener` accepts until `stop` is
/// cancelled, then lets the open connections finish their requests.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) where
    L: Listener<Addr = SocketAddr>,
{
    let open = Arc::new(OpenConnections::default());
    let proxies: Arc<[ipnet::IpNet]> = limits.trusted_proxies.clone().into();
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let (io, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let proxied = super::proxy::trusted(peer.ip(), &proxies);
        let cap = if proxied { 0 } else { limits.max_per_address };
        let Some(counted) = open.admit(peer.ip(), cap) else {
            tracing::debug!(%peer, "refused a connection: too many open from this address");
            metrics::counter!("shop_connections_refused_total").increment(1);
            continue;
        };
        let app = app.clone();
        let proxies = Arc::clone(&proxies);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let client = super::proxy::client_ip(peer.ip(), request.headers(), &proxies);
            request
                .extensions_mut()
                .insert(ConnectInfo(ClientAddr(SocketAddr::new(
                    client,
                    peer.port(),
                ))));
            let response = app.clone().oneshot(request.map(axum::body::Body::new));
            async move { Ok::<_, Infallible>(response.await.unwrap_or_else(|never| match never {})) }
        });
        let connection = http.serve_connection(TokioIo::new(io), service);
        let stop = stop.clone();
        connections.spawn(async move {
            let _counted = counted;
            let mut connection = std::pin::pin!(connection);
            let finished = tokio::select! {
                finished = connection.as_mut() => finished,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = finished {
                // Timeouts and clients that hang up are routine; nothing to act on.
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    connections.close();
    connections.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_capped_and_released_connections_free_their_place() {
        let open = Arc::new(OpenConnections::default());
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = open.admit(ip, 2).expect("first");
        let _second = open.admit(ip, 2).expect("second");
        assert!(open.admit(ip, 2).is_none());
        assert!(
            open.admit(other, 2).is_some(),
            "other addresses are unaffected"
        );
        drop(first);
        assert!(open.admit(ip, 2).is_some());
        assert!(open.admit(ip, 0).is_some(), "0 is no cap");
    }
}
