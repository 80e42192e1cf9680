//! Server configuration: defaults, an optional TOML file, then environment
//! variables and flags (which the command line resolves and hands over as
//! overrides). Precedence is flag > env > file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_ADDR: &str = "127.0.0.1:7467";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected pretty or json)"
            )),
        }
    }
}

/// Requests per second (with a burst of twice that) before a client gets 429; 0 turns a limit off.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub per_ip_per_second: u32,
    pub per_token_per_second: u32,
    /// Login attempts per minute from one address, successful or not.
    pub login_per_minute: u32,
    /// Accounts registered per hour from one address (a quarter of them at once).
    pub register_per_hour: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip_per_second: 200,
            per_token_per_second: 100,
            login_per_minute: 30,
            register_per_hour: 20,
        }
    }
}

/// The notifications service: providers (URLs with credentials come from the
/// environment only) and the queue's timing.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// `smtp://user:pass@host:587` (STARTTLS required), `?tls=opportunistic`,
    /// `?tls=none` (plain, for local servers) or `smtps://` (implicit TLS).
    /// Unset: email goes to the local sink. Environment only (`SHOP_SMTP_URL`).
    #[serde(skip)]
    pub smtp_url: Option<String>,
    /// The From address of email, e.g. `Shop <shop@example.com>`.
    pub smtp_from: String,
    /// Webhook providers for SMS and push (environment only); unset: local sink.
    #[serde(skip)]
    pub sms_webhook_url: Option<String>,
    #[serde(skip)]
    pub push_webhook_url: Option<String>,
    /// HMAC-SHA256 key for `X-Shop-Signature` on webhook calls (environment only).
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    /// Attempts before a notification is dead.
    pub max_attempts: u32,
    /// The first retry waits about this long; each later one twice the one before.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How often the worker looks for due work when nothing wakes it.
    pub poll_interval_ms: u64,
    /// How long one provider call may take.
    pub send_timeout_ms: u64,
    /// How long a claimed notification stays claimed; then it is queued again
    /// (its worker is presumed dead). Must exceed the send timeout.
    pub lease_ms: u64,
    /// Notifications claimed and sent concurrently per channel in one round.
    pub batch_size: u32,
    /// Consecutive transient failures that open a channel's circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker waits before letting one probe through.
    pub breaker_cooldown_ms: u64,
    /// At most one low-stock alert per SKU within this many seconds.
    pub low_stock_alert_window_seconds: u64,
    /// Welcome emails (to addresses nobody has confirmed) sent in any hour
    /// at most; beyond it, registrations get no welcome (0: no cap).
    pub unverified_mail_per_hour: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            smtp_url: None,
            smtp_from: "Shop <shop@localhost>".to_owned(),
            sms_webhook_url: None,
            push_webhook_url: None,
            webhook_secret: None,
            max_attempts: 5,
            retry_base_ms: 2_000,
            retry_max_ms: 15 * 60 * 1000,
            poll_interval_ms: 1_000,
            send_timeout_ms: 10_000,
            lease_ms: 60_000,
            batch_size: 64,
            breaker_threshold: 5,
            breaker_cooldown_ms: 30_000,
            low_stock_alert_window_seconds: 6 * 3600,
            unverified_mail_per_hour: 200,
        }
    }
}

impl NotificationsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.max_attempts == 0 || self.batch_size == 0 || self.breaker_threshold == 0 {
            return invalid(
                "notifications: max_attempts, batch_size and breaker_threshold must be at least 1"
                    .to_owned(),
            );
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return invalid(
                "notifications: retry_base_ms must be at least 1 and at most retry_max_ms"
                    .to_owned(),
            );
        }
        if self.poll_interval_ms == 0 || self.send_timeout_ms == 0 {
            return invalid(
                "notifications: poll_interval_ms and send_timeout_ms must be at least 1".to_owned(),
            );
        }
        if self.lease_ms <= self.send_timeout_ms {
            return invalid(
                "notifications: lease_ms must be longer than send_timeout_ms, or a slow send \
                 would be claimed twice"
                    .to_owned(),
            );
        }
        if let Some(url) = &self.smtp_url {
            crate::services::notifications::channels::smtp::check_url(url)
                .map_err(|err| ConfigError::Invalid(format!("SHOP_SMTP_URL: {err}")))?;
        }
        if self.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(format!(
                "SHOP_SMTP_FROM `{}` is not an email address (e.g. `Shop <shop@example.com>`)",
                self.smtp_from
            ));
        }
        for (name, url) in [
            ("SHOP_SMS_WEBHOOK_URL", &self.sms_webhook_url),
            ("SHOP_PUSH_WEBHOOK_URL", &self.push_webhook_url),
        ] {
            let Some(url) = url else { continue };
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err()
            {
                return invalid(format!("{name} must be an http:// or https:// URL"));
            }
            if self.webhook_secret.as_ref().is_none_or(|s| s.len() < 16) {
                return invalid(format!(
                    "{name} needs SHOP_WEBHOOK_SECRET (at least 16 characters) to sign its calls"
                ));
            }
        }
        Ok(())
    }
}

/// Outbound webhooks (`[webhooks]` in the config file).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Hosts (`HOST` or `HOST:PORT`) whose URLs may use `http://` and
    /// resolve to private or loopback addresses: local development and tests
    /// (`--webhook-allow-host`, `SHOP_WEBHOOK_ALLOW_HOSTS`).
    pub allow_hosts: Vec<String>,
    /// The first retry waits about this long; each later one twice the one before.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A delivery is retried for this long after it was queued (or
    /// replayed), then given up; an endpoint failing this long is disabled.
    pub give_up_seconds: u64,
    /// After a secret rotation the old secret also signs for this long.
    pub rotation_overlap_seconds: u64,
    pub connect_timeout_ms: u64,
    /// The most one attempt may take, connecting and reading the answer included.
    pub timeout_ms: u64,
    /// How long a claimed delivery stays claimed; must exceed the timeout.
    pub lease_ms: u64,
    /// Deliveries claimed per round.
    pub batch_size: u32,
    /// Attempts in flight to one endpoint at once; they start in event order.
    pub max_in_flight_per_endpoint: usize,
    /// How often the dispatcher looks for due retries when nothing wakes it.
    pub poll_interval_ms: u64,
    /// Consecutive failed attempts that open an endpoint's circuit breaker.
    pub breaker_threshold: u32,
    pub breaker_cooldown_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_hosts: Vec::new(),
            retry_base_ms: 30_000,
            retry_max_ms: 6 * 3600 * 1000,
            give_up_seconds: 3 * 24 * 3600,
            rotation_overlap_seconds: 24 * 3600,
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            lease_ms: 60_000,
            batch_size: 256,
            max_in_flight_per_endpoint: 32,
            poll_interval_ms: 1_000,
            breaker_threshold: 5,
            breaker_cooldown_ms: 30_000,
        }
    }
}

impl WebhooksConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(format!("webhooks: {msg}")));
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return invalid("retry_base_ms must be at least 1 and at most retry_max_ms");
        }
        if self.give_up_seconds == 0
            || self.connect_timeout_ms == 0
            || self.timeout_ms == 0
            || self.poll_interval_ms == 0
            || self.batch_size == 0
            || self.max_in_flight_per_endpoint == 0
        {
            return invalid(
                "give_up_seconds, the timeouts, poll_interval_ms, batch_size and \
                 max_in_flight_per_endpoint must be at least 1",
            );
        }
        if self.lease_ms <= self.timeout_ms {
            return invalid(
                "lease_ms must be longer than timeout_ms, or a slow attempt would be claimed twice",
            );
        }
        crate::services::webhooks::safety::AllowList::parse(&self.allow_hosts)
            .map_err(|err| ConfigError::Invalid(format!("--webhook-allow-host: {err}")))?;
        Ok(())
    }
}

/// The catalog and inventory services.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// The low-stock threshold of a SKU created without one.
    pub low_stock_threshold: i64,
    /// How long a reservation holds stock when the request does not say.
    pub reservation_ttl_seconds: u64,
    /// The longest hold a request may ask for.
    pub max_reservation_ttl_seconds: u64,
    /// How often the sweeper looks for expired reservations.
    pub sweep_interval_ms: u64,
    /// Rows per transaction in an import.
    pub import_batch_size: usize,
    /// Load the sample catalog into an empty database at start (`shop serve --demo`).
    pub demo: bool,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            low_stock_threshold: 5,
            reservation_ttl_seconds: 15 * 60,
            max_reservation_ttl_seconds: 7 * 24 * 3600,
            sweep_interval_ms: 1000,
            import_batch_size: 5000,
            demo: false,
        }
    }
}

impl InventoryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.low_stock_threshold < 0 {
            return Err(ConfigError::Invalid(
                "inventory: low_stock_threshold must not be negative".to_owned(),
            ));
        }
        if self.reservation_ttl_seconds == 0
            || self.reservation_ttl_seconds > self.max_reservation_ttl_seconds
        {
            return Err(ConfigError::Invalid(
                "inventory: reservation_ttl_seconds must be at least 1 and at most max_reservation_ttl_seconds"
                    .to_owned(),
            ));
        }
        if self.sweep_interval_ms == 0 || self.import_batch_size == 0 {
            return Err(ConfigError::Invalid(
                "inventory: sweep_interval_ms and import_batch_size must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Carts, orders and payments.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CommerceConfig {
    /// An idle cart expires (and its stock is released) this long after its last change.
    pub cart_ttl_seconds: u64,
    /// How long a pending order holds its stock for a card or wallet payment.
    pub payment_window_seconds: u64,
    /// How long a pending bank transfer holds the order's stock.
    pub bank_transfer_window_seconds: u64,
    /// How often the sweepers expire idle carts and unpaid orders.
    pub sweep_interval_ms: u64,
    /// Stripe's secret key; when set, payments go to Stripe instead of the
    /// simulated provider. Environment only (`SHOP_STRIPE_SECRET_KEY`).
    #[serde(skip)]
    pub stripe_secret_key: Option<String>,
    /// Stripe's API base URL (`SHOP_STRIPE_API_BASE`), for a test double.
    pub stripe_api_base: String,
    /// The most a single provider call may take, retries not counted.
    pub provider_timeout_ms: u64,
    /// Attempts of a provider call that failed transiently (1 = no retry).
    pub provider_attempts: u32,
    pub provider_retry_base_ms: u64,
    /// Transient failures in a row, from this many different customers (or
    /// cards), that open the provider's circuit breaker: one customer's
    /// failing card cannot switch payments off for everyone.
    pub breaker_threshold: u32,
    pub breaker_cooldown_ms: u64,
    /// The simulated provider's outage test cards (`4000000000000119`,
    /// `tok_chargeDeclinedProcessingError`) fail transiently only when this
    /// is on; otherwise they are declined like any problem card.
    pub simulate_outages: bool,
    /// The most units of one SKU a cart line or an order line may hold; a
    /// product's `max_per_cart` attribute lowers it for that product.
    pub max_line_quantity: i64,
    /// The most units a cart (or an order) may hold in all.
    pub max_cart_quantity: i64,
    /// Active anonymous carts one client address may hold (0: no cap).
    pub max_carts_per_address: u32,
    /// Unpaid (pending) orders one customer may have at once (0: no cap).
    pub max_unpaid_orders: u32,
    /// Days after delivery (or after the last shipment, if not delivered)
    /// that returns are taken.
    pub return_window_days: u32,
}

impl Default for CommerceConfig {
    fn default() -> Self {
        CommerceConfig {
            cart_ttl_seconds: 30 * 60,
            payment_window_seconds: 15 * 60,
            bank_transfer_window_seconds: 3 * 24 * 3600,
            sweep_interval_ms: 1000,
            stripe_secret_key: None,
            stripe_api_base: "https://api.stripe.com".to_owned(),
            provider_timeout_ms: 10_000,
            provider_attempts: 3,
            provider_retry_base_ms: 200,
            breaker_threshold: 5,
            breaker_cooldown_ms: 30_000,
            simulate_outages: false,
            max_line_quantity: 100,
            max_cart_quantity: 500,
            max_carts_per_address: 20,
            max_unpaid_orders: 5,
            return_window_days: 30,
        }
    }
}

/// The search service (`[search]` in the config file).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// The false-positive rate the Bloom filters are sized for.
    pub bloom_false_positive_rate: f64,
    /// Result pages kept in the cache.
    pub cache_capacity: u64,
    /// How often suggestions are rebuilt when searches, sales or the catalog changed them.
    pub suggest_refresh_ms: u64,
    /// How often recorded searches are written to the database (and their events logged).
    pub analytics_flush_ms: u64,
    /// Days of search and view history kept.
    pub history_days: u64,
    /// A past query is suggested only once this many different clients
    /// searched it (and every word of it is a word of the catalog).
    pub suggest_min_clients: u32,
    /// Views one client address may pair into "viewed together" per day (0: no cap).
    pub co_views_per_client: u32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            bloom_false_positive_rate: 0.01,
            cache_capacity: 10_000,
            suggest_refresh_ms: 2_000,
            analytics_flush_ms: 250,
            history_days: 90,
            suggest_min_clients: 3,
            co_views_per_client: 50,
        }
    }
}

impl CommerceConfig {
    fn validate(&self, inventory: &InventoryConfig) -> Result<(), ConfigError> {
        let max = inventory.max_reservation_ttl_seconds;
        for (name, value) in [
            ("cart_ttl_seconds", self.cart_ttl_seconds),
            ("payment_window_seconds", self.payment_window_seconds),
            (
                "bank_transfer_window_seconds",
                self.bank_transfer_window_seconds,
            ),
        ] {
            if value == 0 || value > max {
                return Err(ConfigError::Invalid(format!(
                    "commerce: {name} must be between 1 and inventory.max_reservation_ttl_seconds ({max})"
                )));
            }
        }
        if self.sweep_interval_ms == 0
            || self.provider_timeout_ms == 0
            || self.provider_attempts == 0
        {
            return Err(ConfigError::Invalid(
                "commerce: sweep_interval_ms, provider_timeout_ms and provider_attempts must be at least 1"
                    .to_owned(),
            ));
        }
        if self.max_line_quantity < 1 || self.max_cart_quantity < self.max_line_quantity {
            return Err(ConfigError::Invalid(
                "commerce: max_line_quantity must be at least 1 and at most max_cart_quantity"
                    .to_owned(),
            ));
        }
        if let Err(err) = reqwest::Url::parse(&self.stripe_api_base) {
            return Err(ConfigError::Invalid(format!(
                "commerce: stripe_api_base `{}`: {err}",
                self.stripe_api_base
            )));
        }
        Ok(())
    }
}

impl SearchConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.bloom_false_positive_rate > 0.0 && self.bloom_false_positive_rate < 0.5) {
            return Err(ConfigError::Invalid(
                "search: bloom_false_positive_rate must be above 0 and below 0.5".to_owned(),
            ));
        }
        if self.suggest_refresh_ms == 0 || self.analytics_flush_ms == 0 || self.history_days == 0 {
            return Err(ConfigError::Invalid(
                "search: suggest_refresh_ms, analytics_flush_ms and history_days must be at least 1"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
/// The file's keys are the fields' names; the top-level ones also answer to
/// the flag's name (`access_token_ttl = 60` as `--access-token-ttl 60`).
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// The SQLite file; `None` means `shop.db` under the XDG data dir.
    pub db: Option<PathBuf>,
    /// The database as a URL, instead of `db`: `postgres://user@host/name`
    /// for PostgreSQL (shared by several nodes), or `sqlite:PATH`.
    pub database_url: Option<String>,
    pub durability: Durability,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `shop_server=debug,info`.
    pub log_level: String,
    /// HMAC secret for access tokens; when absent one is generated and kept beside the database.
    pub jwt_secret: Option<String>,
    #[serde(alias = "access_token_ttl")]
    pub access_token_ttl_seconds: u64,
    #[serde(alias = "session_ttl")]
    pub session_ttl_seconds: u64,
    pub rate_limits: RateLimits,
    #[serde(alias = "body_limit")]
    pub body_limit_bytes: usize,
    #[serde(alias = "request_timeout")]
    pub request_timeout_seconds: u64,
    /// How long a client may take to send a request's headers, and how long
    /// a keep-alive connection may wait idle for its next request.
    pub header_read_timeout_seconds: u64,
    /// Connections one client address may hold open at once (0: no cap).
    pub max_connections_per_address: usize,
    /// A bearer token that reads all of `/metrics`, business figures
    /// (revenue, refunds, order and payment counts) included, for a
    /// Prometheus scraper; staff tokens read them too, anyone else does not.
    pub metrics_token: Option<String>,
    /// Client addresses that read all of `/metrics` without a token.
    pub metrics_addresses: Vec<std::net::IpAddr>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the
    /// client: only a connection from one of them is believed.
    #[serde(deserialize_with = "trusted_proxies")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed to call the API from a browser; empty allows none.
    #[serde(alias = "cors_origin")]
    pub cors_origins: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The first admin, created on first start when there is none.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// How often sweepers (expired sessions, old idempotency keys) run.
    #[serde(alias = "sweep_interval")]
    pub sweep_interval_seconds: u64,
    /// How long shutdown waits for in-flight requests and workers.
    pub shutdown_grace_seconds: u64,
    pub notifications: NotificationsConfig,
    pub inventory: InventoryConfig,
    pub commerce: CommerceConfig,
    pub search: SearchConfig,
    pub storefront: StorefrontConfig,
    pub webhooks: WebhooksConfig,
    pub pricing: PricingConfig,
    /// Tracking page templates by carrier name (`[carriers] ups =
    /// "https://www.ups.com/track?tracknum={tracking}"`), beside and over
    /// the built-in ones of [`crate::services::orders::fulfilment::BUILT_IN_CARRIERS`].
    pub carriers: std::collections::BTreeMap<String, String>,
    pub documents: DocumentsConfig,
}

/// What invoices and packing slips say of the seller (`[documents]` in the
/// config file); the shop's name is the storefront's.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// Written before each invoice's sequence: `INV-` makes `INV-000042`.
    /// Numbers already issued keep the prefix they were issued with.
    pub invoice_prefix: String,
    /// The seller's postal address, one line each.
    pub seller_address: Vec<String>,
    /// A VAT or tax registration number, printed on invoices.
    pub tax_id: Option<String>,
    /// Where customers write about an invoice.
    pub email: Option<String>,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            invoice_prefix: "INV-".to_owned(),
            seller_address: Vec::new(),
            tax_id: None,
            email: None,
        }
    }
}

impl DocumentsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        crate::services::documents::rules::check_prefix(&self.invoice_prefix)
            .map_err(|reason| ConfigError::Invalid(format!("documents: {reason}")))?;
        if self.seller_address.len() > 8
            || self
                .seller_address
                .iter()
                .any(|line| line.chars().count() > 200)
        {
            return Err(ConfigError::Invalid(
                "documents: seller_address is at most 8 lines of 200 characters".to_owned(),
            ));
        }
        Ok(())
    }
}

/// How checkout prices tax and shipping (`[pricing]` in the config file).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// Currencies whose prices (of products and of shipping) already
    /// include tax, as shops show them to consumers in the EU and the UK;
    /// in any other currency tax is added on top, as in the US.
    pub tax_inclusive_currencies: Vec<shop_wire::money::Currency>,
    /// Whether shipping is taxed at the destination's standard rates.
    pub shipping_taxable: bool,
}

impl Default for PricingConfig {
    fn default() -> Self {
        let currency = |code: &str| code.parse().expect("a known currency");
        PricingConfig {
            tax_inclusive_currencies: vec![currency("EUR"), currency("GBP")],
            shipping_taxable: true,
        }
    }
}

impl PricingConfig {
    /// Whether prices in `currency` include tax.
    pub fn prices_include_tax(&self, currency: shop_wire::money::Currency) -> bool {
        self.tax_inclusive_currencies.contains(&currency)
    }
}

/// The web storefront at `/` (`[storefront]` in the config file); the status page stays on without it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorefrontConfig {
    pub enabled: bool,
    /// The shop's name in page titles and the header.
    pub name: String,
    /// An SVG or PNG file shown in the header beside the name.
    pub logo: Option<PathBuf>,
    /// The brand colour of links and buttons, `#rrggbb`; it must read on white (contrast >= 4.5).
    pub color: String,
}

impl Default for StorefrontConfig {
    fn default() -> Self {
        StorefrontConfig {
            enabled: true,
            name: "shop".to_owned(),
            logo: None,
            color: "#1d4ed8".to_owned(),
        }
    }
}

impl StorefrontConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.name.trim().is_empty() || self.name.chars().count() > 80 {
            return invalid("storefront: name must be 1 to 80 characters".to_owned());
        }
        let Some(rgb) = parse_hex_color(&self.color) else {
            return invalid(format!(
                "storefront: color `{}` is not a colour like #1d4ed8",
                self.color
            ));
        };
        let contrast = contrast_on_white(rgb);
        if contrast < 4.5 {
            return invalid(format!(
                "storefront: color {} has a contrast of {contrast:.1} on white; text needs at least 4.5",
                self.color
            ));
        }
        if let Some(logo) = &self.logo {
            let known = logo
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "svg" | "png"));
            if !known {
                return invalid(format!(
                    "storefront: logo {} must be an .svg or .png file",
                    logo.display()
                ));
            }
        }
        Ok(())
    }
}

/// `#rrggbb` as its three channels.
pub fn parse_hex_color(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// The WCAG 2 contrast ratio of a colour against white.
fn contrast_on_white(rgb: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2]);
    1.05 / (luminance + 0.05)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            db: None,
            database_url: None,
            durability: Durability::default(),
            log_format: LogFormat::default(),
            log_level: "info".to_owned(),
            jwt_secret: None,
            access_token_ttl_seconds: 15 * 60,
            session_ttl_seconds: 30 * 24 * 3600,
            rate_limits: RateLimits::default(),
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            header_read_timeout_seconds: 10,
            max_connections_per_address: 512,
            metrics_token: None,
            metrics_addresses: Vec::new(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            admin_email: None,
            admin_password: None,
            sweep_interval_seconds: 60,
            shutdown_grace_seconds: 30,
            notifications: NotificationsConfig::default(),
            inventory: InventoryConfig::default(),
            commerce: CommerceConfig::default(),
            search: SearchConfig::default(),
            storefront: StorefrontConfig::default(),
            webhooks: WebhooksConfig::default(),
            pricing: PricingConfig::default(),
            carriers: std::collections::BTreeMap::new(),
            documents: DocumentsConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The cause is part of the message and deliberately not a `source`:
    // `{:#}` at the binary's edge would print it a second time.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("invalid config file {path}: {reason}")]
    Parse {
        path: PathBuf,
        reason: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML config file; every key is optional and unknown keys are refused.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
            path: path.to_owned(),
            reason,
        })?;
        toml::from_str(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_owned(),
            reason: Box::new(reason),
        })
    }

    /// The default config file, `shop/server.toml` under the XDG config dir, if it exists.
    pub fn default_file() -> Option<PathBuf> {
        dirs::config_dir()
            .map(|dir| dir.join("shop").join("server.toml"))
            .filter(|p| p.exists())
    }

    /// Where the shop keeps its data, from `database_url` or else `db`.
    pub fn database(&self) -> Result<Database, ConfigError> {
        let Some(url) = &self.database_url else {
            return Ok(Database::Sqlite(self.db_path()));
        };
        if self.db.is_some() {
            return Err(ConfigError::Invalid(
                "give the database once: --db PATH or --database-url URL, not both".to_owned(),
            ));
        }
        Database::parse(url).map_err(ConfigError::Invalid)
    }

    /// The SQLite file of `db`, or the default one.
    pub fn db_path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("shop")
                .join("shop.db")
        })
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_seconds)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_seconds)
    }

    /// Checks the combinations a type cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("--tls-cert and --tls-key must be given together");
        }
        if self.access_token_ttl_seconds == 0 || self.session_ttl_seconds == 0 {
            return invalid("token lifetimes must be at least one second");
        }
        if self.access_token_ttl_seconds > self.session_ttl_seconds {
            return invalid("the access token cannot outlive the session");
        }
        if self.sweep_interval_seconds == 0 || self.header_read_timeout_seconds == 0 {
            return invalid(
                "the sweep interval and the header read timeout must be at least one second",
            );
        }
        if self.body_limit_bytes < 1024 {
            return invalid("the body limit must be at least 1024 bytes");
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return invalid("SHOP_ADMIN_EMAIL and SHOP_ADMIN_PASSWORD must be given together");
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return invalid("the JWT secret must be at least 32 characters");
        }
        if let Database::Postgres(_) = self.database()?
            && self.jwt_secret.is_none()
        {
            // A secret generated by each node would make every node refuse
            // the others' tokens behind a load balancer.
            return invalid(
                "on PostgreSQL every node must sign tokens with the same secret: \
                 set SHOP_JWT_SECRET (at least 32 characters) on each node",
            );
        }
        if let Some(token) = &self.metrics_token
            && (token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return invalid(
                "SHOP_METRICS_TOKEN must be at least 16 printable characters without spaces",
            );
        }
        self.notifications.validate()?;
        self.inventory.validate()?;
        self.commerce.validate(&self.inventory)?;
        self.search.validate()?;
        self.webhooks.validate()?;
        self.validate_carriers()?;
        self.documents.validate()?;
        self.storefront.validate()
    }

    fn validate_carriers(&self) -> Result<(), ConfigError> {
        use crate::services::orders::fulfilment::TRACKING_PLACEHOLDER;
        for (name, template) in &self.carriers {
            let web = template.starts_with("https://") || template.starts_with("http://");
            if name.trim().is_empty() || !web || !template.contains(TRACKING_PLACEHOLDER) {
                return Err(ConfigError::Invalid(format!(
                    "carriers: `{name}` must be an http(s) URL with {TRACKING_PLACEHOLDER} where the tracking number goes"
                )));
            }
        }
        Ok(())
    }
}

/// Where the shop keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file, for one node.
    Sqlite(PathBuf),
    /// A PostgreSQL server, which several nodes may share: its URL.
    Postgres(String),
}

impl Database {
    /// Reads `postgres://...` (or `postgresql://...`) and `sqlite:PATH`.
    pub fn parse(url: &str) -> Result<Database, String> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("the database URL `sqlite:` names no file: use sqlite:PATH".to_owned());
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return match reqwest::Url::parse(url) {
                Ok(parsed) if parsed.host_str().is_some_and(|host| !host.is_empty()) => {
                    Ok(Database::Postgres(url.to_owned()))
                }
                _ => Err(format!(
                    "the database URL `{}` is not a PostgreSQL URL such as postgres://shop@db.internal/shop",
                    redact(url)
                )),
            };
        }
        Err(format!(
            "the database URL `{}` must start with postgres://, postgresql:// or sqlite:",
            redact(url)
        ))
    }

    /// The database for logs and messages, without a password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => redact(url),
        }
    }
}

/// `url` without the password it may carry.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Cannot fail: a URL that has a password can have another.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparsable, and with credentials somewhere in it: show none of it.
        Err(_) if url.contains('@') => "(a URL with credentials)".to_owned(),
        Err(_) => url.to_owned(),
    }
}

/// Which failures an acknowledged write survives, for any store backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every acknowledged write survives a crash or `kill -9` of the process;
    /// a power cut or an OS crash may lose the last few.
    #[default]
    Process,
    /// Every acknowledged write also survives a power cut, at the cost of
    /// flushing to stable storage at each commit.
    Power,
}

/// A trusted proxy as given on the command line or in the file: a CIDR
/// range or one address.
pub fn parse_trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("trusted proxy `{text}` is not an address or CIDR range (e.g. 10.0.0.0/8)")
        })
}

/// `trusted_proxies` in the file, read as the flag reads them.
fn trusted_proxies<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| parse_trusted_proxy(text.trim()).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_url_names_postgres_or_an_sqlite_file_and_never_shows_its_password() {
        use super::Database;
        assert_eq!(
            Database::parse("postgres://shop:s3cret@db.internal:5432/shop"),
            Ok(Database::Postgres(
                "postgres://shop:s3cret@db.internal:5432/shop".into()
            ))
        );
        assert_eq!(
            Database::parse("postgres://shop:s3cret@db.internal/shop")
                .unwrap()
                .describe(),
            "postgres://shop:***@db.internal/shop"
        );
        assert_eq!(
            Database::parse("sqlite:/var/lib/shop/shop.db"),
            Ok(Database::Sqlite("/var/lib/shop/shop.db".into()))
        );
        assert_eq!(
            Database::parse("sqlite://shop.db"),
            Ok(Database::Sqlite("shop.db".into()))
        );
        let refused = Database::parse("mysql://root:hunter2@localhost/shop").unwrap_err();
        assert!(refused.contains("must start with postgres://"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
        assert!(Database::parse("sqlite:").is_err());
        assert!(Database::parse("postgres://").is_err());
    }

    #[test]
    fn postgres_needs_one_shared_jwt_secret_and_one_database_setting() {
        let mut config = super::Config {
            database_url: Some("postgres://shop@localhost/shop".into()),
            ..super::Config::default()
        };
        let refused = config.validate().unwrap_err().to_string();
        assert!(refused.contains("SHOP_JWT_SECRET"), "{refused}");
        config.jwt_secret = Some("x".repeat(32));
        config.validate().expect("a shared secret is enough");
        config.db = Some("shop.db".into());
        let refused = config.validate().unwrap_err().to_string();
        assert!(refused.contains("not both"), "{refused}");
    }

    use super::*;

    #[test]
    fn trusted_proxies_in_the_file_are_read_as_the_flag_reads_them() {
        let config: Config =
            toml::from_str("trusted_proxies = [\"10.0.0.0/8\", \" 192.168.1.7 \", \"::1\"]\n")
                .expect("parse");
        let expected: Vec<ipnet::IpNet> = ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
            .iter()
            .map(|text| text.parse().expect("cidr"))
            .collect();
        assert_eq!(config.trusted_proxies, expected);
        let bad = toml::from_str::<Config>("trusted_proxies = [\"10.0.0.0/33\"]\n")
            .expect_err("a bad range");
        assert!(
            bad.to_string()
                .contains("`10.0.0.0/33` is not an address or CIDR range"),
            "{bad}"
        );
    }

    #[test]
    fn a_carrier_template_is_a_web_address_with_a_place_for_the_tracking_number() {
        let good: Config =
            toml::from_str("[carriers]\nacme = \"https://acme.example/t/{tracking}\"\n")
                .expect("parse");
        assert!(good.validate().is_ok());
        assert_eq!(
            good.carriers.get("acme").map(String::as_str),
            Some("https://acme.example/t/{tracking}")
        );
        for bad in [
            "acme = \"https://acme.example/t/\"",
            "acme = \"ftp://acme.example/{tracking}\"",
        ] {
            let config: Config = toml::from_str(&format!("[carriers]\n{bad}\n")).expect("parse");
            let err = config.validate().expect_err(bad).to_string();
            assert!(err.contains("carriers: `acme`"), "{err}");
        }
    }

    #[test]
    fn the_flags_names_work_in_the_file_and_a_toml_error_is_said_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "access_token_ttl = 60\nsession_ttl = 3600\nbody_limit = 4096\n\
             request_timeout = 5\nsweep_interval = 9\ncors_origin = [\"https://a.example\"]\n",
        )
        .expect("write");
        let config = Config::from_file(&path).expect("parse");
        assert_eq!(config.access_token_ttl_seconds, 60);
        assert_eq!(config.session_ttl_seconds, 3600);
        assert_eq!(config.body_limit_bytes, 4096);
        assert_eq!(config.request_timeout_seconds, 5);
        assert_eq!(config.sweep_interval_seconds, 9);
        assert_eq!(config.cors_origins, ["https://a.example"]);
        std::fs::write(&path, "access_token_ttl = \"soon\"\n").expect("write");
        let err = anyhow::Error::from(Config::from_file(&path).expect_err("a type error"));
        let said = format!("{err:#}");
        assert_eq!(said.matches("invalid type").count(), 1, "{said}");
    }

    #[test]
    fn file_values_override_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "addr = \"0.0.0.0:8080\"\n[rate_limits]\nper_ip_per_second = 5\n",
        )
        .expect("write");
        let config = Config::from_file(&path).expect("parse");
        assert_eq!(config.addr.port(), 8080);
        assert_eq!(config.rate_limits.per_ip_per_second, 5);
        assert_eq!(
            config.rate_limits.login_per_minute,
            RateLimits::default().login_per_minute
        );

        std::fs::write(&path, "adress = \"typo\"\n").expect("write");
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("adress"), "{err}");
    }

    #[test]
    fn notification_providers_are_checked_at_start() {
        let with = |n: NotificationsConfig| Config {
            notifications: n,
            ..Config::default()
        };
        let webhook = NotificationsConfig {
            sms_webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..NotificationsConfig::default()
        };
        let err = with(webhook.clone()).validate().unwrap_err().to_string();
        assert!(err.contains("SHOP_WEBHOOK_SECRET"), "{err}");
        let signed = NotificationsConfig {
            webhook_secret: Some("0123456789abcdef".into()),
            ..webhook
        };
        assert!(with(signed).validate().is_ok());
        let smtp = NotificationsConfig {
            smtp_url: Some("smtp://h?tls=maybe".into()),
            ..NotificationsConfig::default()
        };
        assert!(with(smtp).validate().is_err());
        let lease = NotificationsConfig {
            lease_ms: 1000,
            send_timeout_ms: 1000,
            ..NotificationsConfig::default()
        };
        assert!(with(lease).validate().is_err());
        let from = NotificationsConfig {
            smtp_from: "not an address".into(),
            ..NotificationsConfig::default()
        };
        assert!(with(from).validate().is_err());
    }

    #[test]
    fn storefront_colours_must_read_on_white() {
        let with = |color: &str| Config {
            storefront: StorefrontConfig {
                color: color.to_owned(),
                ..StorefrontConfig::default()
            },
            ..Config::default()
        };
        assert!(with("#1d4ed8").validate().is_ok());
        let pale = with("#ffff00").validate().unwrap_err().to_string();
        assert!(pale.contains("contrast"), "{pale}");
        assert!(with("blue").validate().is_err());
        assert!(with("#12345g").validate().is_err());
    }

    #[test]
    fn webhook_settings_are_checked_at_start() {
        let with = |w: WebhooksConfig| Config {
            webhooks: w,
            ..Config::default()
        };
        assert!(with(WebhooksConfig::default()).validate().is_ok());
        let lease = WebhooksConfig {
            lease_ms: 15_000,
            ..WebhooksConfig::default()
        };
        assert!(
            with(lease)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("lease_ms")
        );
        let retry = WebhooksConfig {
            retry_base_ms: 10,
            retry_max_ms: 5,
            ..WebhooksConfig::default()
        };
        assert!(with(retry).validate().is_err());
        let hosts = WebhooksConfig {
            allow_hosts: vec!["127.0.0.1:notaport".to_owned()],
            ..WebhooksConfig::default()
        };
        let err = with(hosts).validate().unwrap_err().to_string();
        assert!(err.contains("--webhook-allow-host"), "{err}");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[webhooks]\nretry_base_ms = 200\ngive_up_seconds = 5\n",
        )
        .expect("write");
        let config = Config::from_file(&path).expect("parse");
        assert_eq!(
            (
                config.webhooks.retry_base_ms,
                config.webhooks.give_up_seconds
            ),
            (200, 5)
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let config = Config {
            tls_cert: Some("cert.pem".into()),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }
}
