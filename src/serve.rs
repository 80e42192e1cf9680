//! `shop serve`: resolve the configuration and run the server until a signal.

use anyhow::Context;
use shop_server::Config;
use shop_server::config::Durability;
use shop_server::config::LogFormat;

use shop_cli::ServeArgs;

/// Defaults, then the config file, then environment and flags (which clap has already merged).
fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
    let file = args.config.clone().or_else(Config::default_file);
    let mut config = match &file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    if args.db.is_some() {
        config.db = args.db;
    }
    // A URL beats a path: a container image's default SHOP_DB must not
    // stop a deployment that sets SHOP_DATABASE_URL.
    if args.database_url.is_some() {
        config.database_url = args.database_url;
        config.db = None;
    }
    config.inventory.demo |= args.demo;
    if let Some(format) = args.log_format {
        config.log_format = format.parse::<LogFormat>().map_err(anyhow::Error::msg)?;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert;
        config.tls_key = args.tls_key;
    }
    let limits = &mut config.rate_limits;
    limits.per_ip_per_second = args.rate_limit_ip.unwrap_or(limits.per_ip_per_second);
    limits.per_token_per_second = args.rate_limit_token.unwrap_or(limits.per_token_per_second);
    limits.login_per_minute = args.rate_limit_login.unwrap_or(limits.login_per_minute);
    config.access_token_ttl_seconds = args
        .access_token_ttl
        .unwrap_or(config.access_token_ttl_seconds);
    config.session_ttl_seconds = args.session_ttl.unwrap_or(config.session_ttl_seconds);
    config.body_limit_bytes = args.body_limit.unwrap_or(config.body_limit_bytes);
    config.request_timeout_seconds = args
        .request_timeout
        .unwrap_or(config.request_timeout_seconds);
    config.sweep_interval_seconds = args.sweep_interval.unwrap_or(config.sweep_interval_seconds);
    let storefront = &mut config.storefront;
    storefront.enabled &= !args.no_storefront;
    if let Some(name) = args.store_name {
        storefront.name = name;
    }
    if let Some(color) = args.store_color {
        storefront.color = color;
    }
    if args.store_logo.is_some() {
        storefront.logo = args.store_logo;
    }
    if !args.cors_origins.is_empty() {
        config.cors_origins = args.cors_origins;
    }
    if !args.trusted_proxies.is_empty() {
        config.trusted_proxies = args
            .trusted_proxies
            .iter()
            .map(|text| shop_server::config::parse_trusted_proxy(text.trim()))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
    }
    if let Some(durability) = args.durability {
        config.durability = if durability == "power" {
            Durability::Power
        } else {
            Durability::Process
        };
    }
    config.jwt_secret = env("SHOP_JWT_SECRET").or(config.jwt_secret);
    config.metrics_token = env("SHOP_METRICS_TOKEN").or(config.metrics_token);
    if let Some(list) = env("SHOP_METRICS_ADDRESSES") {
        config.metrics_addresses = list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse()
                    .with_context(|| format!("SHOP_METRICS_ADDRESSES: `{a}` is not an IP address"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    config.admin_email = env("SHOP_ADMIN_EMAIL").or(config.admin_email);
    config.admin_password = env("SHOP_ADMIN_PASSWORD").or(config.admin_password);
    // Notifications: provider URLs carry credentials, so they come from the environment only.
    let notify = &mut config.notifications;
    notify.smtp_url = env("SHOP_SMTP_URL").or(notify.smtp_url.take());
    notify.smtp_from = env("SHOP_SMTP_FROM").unwrap_or(std::mem::take(&mut notify.smtp_from));
    notify.sms_webhook_url = env("SHOP_SMS_WEBHOOK_URL").or(notify.sms_webhook_url.take());
    notify.push_webhook_url = env("SHOP_PUSH_WEBHOOK_URL").or(notify.push_webhook_url.take());
    notify.webhook_secret = env("SHOP_WEBHOOK_SECRET").or(notify.webhook_secret.take());
    // Payments: the Stripe key is a secret, so it too comes from the environment only.
    let commerce = &mut config.commerce;
    commerce.stripe_secret_key = env("SHOP_STRIPE_SECRET_KEY");
    commerce.stripe_api_base =
        env("SHOP_STRIPE_API_BASE").unwrap_or(std::mem::take(&mut commerce.stripe_api_base));
    let number = |name: &str| -> anyhow::Result<Option<u64>> {
        env(name)
            .map(|v| {
                v.parse::<u64>()
                    .with_context(|| format!("{name} must be a whole number"))
            })
            .transpose()
    };
    for (name, field) in [
        ("SHOP_NOTIFY_RETRY_BASE_MS", &mut notify.retry_base_ms),
        ("SHOP_NOTIFY_RETRY_MAX_MS", &mut notify.retry_max_ms),
        ("SHOP_NOTIFY_POLL_MS", &mut notify.poll_interval_ms),
        ("SHOP_NOTIFY_SEND_TIMEOUT_MS", &mut notify.send_timeout_ms),
        ("SHOP_NOTIFY_LEASE_MS", &mut notify.lease_ms),
        (
            "SHOP_NOTIFY_BREAKER_COOLDOWN_MS",
            &mut notify.breaker_cooldown_ms,
        ),
        (
            "SHOP_NOTIFY_LOW_STOCK_WINDOW",
            &mut notify.low_stock_alert_window_seconds,
        ),
    ] {
        *field = number(name)?.unwrap_or(*field);
    }
    if let Some(n) = number("SHOP_RATE_LIMIT_REGISTER")? {
        config.rate_limits.register_per_hour =
            u32::try_from(n).context("SHOP_RATE_LIMIT_REGISTER is too large")?;
    }
    config.header_read_timeout_seconds =
        number("SHOP_HEADER_READ_TIMEOUT")?.unwrap_or(config.header_read_timeout_seconds);
    config.max_connections_per_address = number("SHOP_MAX_CONNECTIONS_PER_ADDRESS")?
        .map(usize::try_from)
        .transpose()
        .context("SHOP_MAX_CONNECTIONS_PER_ADDRESS is too large")?
        .unwrap_or(config.max_connections_per_address);
    let commerce = &mut config.commerce;
    for (name, field) in [
        ("SHOP_CART_TTL_SECONDS", &mut commerce.cart_ttl_seconds),
        (
            "SHOP_PAYMENT_WINDOW_SECONDS",
            &mut commerce.payment_window_seconds,
        ),
        ("SHOP_COMMERCE_SWEEP_MS", &mut commerce.sweep_interval_ms),
        ("SHOP_PAYMENT_TIMEOUT_MS", &mut commerce.provider_timeout_ms),
    ] {
        *field = number(name)?.unwrap_or(*field);
    }
    for (name, field) in [
        ("SHOP_MAX_LINE_QUANTITY", &mut commerce.max_line_quantity),
        ("SHOP_MAX_CART_QUANTITY", &mut commerce.max_cart_quantity),
    ] {
        *field = number(name)?
            .map(i64::try_from)
            .transpose()
            .with_context(|| format!("{name} is too large"))?
            .unwrap_or(*field);
    }
    for (name, field) in [
        (
            "SHOP_MAX_CARTS_PER_ADDRESS",
            &mut commerce.max_carts_per_address,
        ),
        ("SHOP_MAX_UNPAID_ORDERS", &mut commerce.max_unpaid_orders),
        ("SHOP_RETURN_WINDOW_DAYS", &mut commerce.return_window_days),
        (
            "SHOP_SUGGEST_MIN_CLIENTS",
            &mut config.search.suggest_min_clients,
        ),
        (
            "SHOP_CO_VIEWS_PER_CLIENT",
            &mut config.search.co_views_per_client,
        ),
        (
            "SHOP_PAYMENT_BREAKER_THRESHOLD",
            &mut commerce.breaker_threshold,
        ),
    ] {
        *field = number(name)?
            .map(u32::try_from)
            .transpose()
            .with_context(|| format!("{name} is too large"))?
            .unwrap_or(*field);
    }
    let hooks = &mut config.webhooks;
    if !args.webhook_allow_hosts.is_empty() {
        hooks.allow_hosts = args.webhook_allow_hosts;
    }
    for (name, field) in [
        ("SHOP_WEBHOOK_RETRY_BASE_MS", &mut hooks.retry_base_ms),
        ("SHOP_WEBHOOK_RETRY_MAX_MS", &mut hooks.retry_max_ms),
        ("SHOP_WEBHOOK_GIVE_UP_SECONDS", &mut hooks.give_up_seconds),
        (
            "SHOP_WEBHOOK_ROTATION_OVERLAP_SECONDS",
            &mut hooks.rotation_overlap_seconds,
        ),
        ("SHOP_WEBHOOK_TIMEOUT_MS", &mut hooks.timeout_ms),
        ("SHOP_WEBHOOK_LEASE_MS", &mut hooks.lease_ms),
        ("SHOP_WEBHOOK_POLL_MS", &mut hooks.poll_interval_ms),
        (
            "SHOP_WEBHOOK_BREAKER_COOLDOWN_MS",
            &mut hooks.breaker_cooldown_ms,
        ),
    ] {
        *field = number(name)?.unwrap_or(*field);
    }
    if let Some(n) = number("SHOP_WEBHOOK_MAX_IN_FLIGHT")? {
        hooks.max_in_flight_per_endpoint =
            usize::try_from(n).context("SHOP_WEBHOOK_MAX_IN_FLIGHT is too large")?;
    }
    for (name, field) in [
        ("SHOP_WEBHOOK_BATCH_SIZE", &mut hooks.batch_size),
        (
            "SHOP_WEBHOOK_BREAKER_THRESHOLD",
            &mut hooks.breaker_threshold,
        ),
    ] {
        *field = number(name)?
            .map(u32::try_from)
            .transpose()
            .with_context(|| format!("{name} is too large"))?
            .unwrap_or(*field);
    }
    if let Some(on) = env("SHOP_PAYMENT_SIMULATE_OUTAGES") {
        commerce.simulate_outages = match on.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => anyhow::bail!("SHOP_PAYMENT_SIMULATE_OUTAGES must be true or false"),
        };
    }
    let notify = &mut config.notifications;
    for (name, field) in [
        ("SHOP_NOTIFY_MAX_ATTEMPTS", &mut notify.max_attempts),
        ("SHOP_NOTIFY_BATCH_SIZE", &mut notify.batch_size),
        (
            "SHOP_NOTIFY_BREAKER_THRESHOLD",
            &mut notify.breaker_threshold,
        ),
        (
            "SHOP_NOTIFY_UNVERIFIED_PER_HOUR",
            &mut notify.unverified_mail_per_hour,
        ),
    ] {
        *field = number(name)?
            .map(u32::try_from)
            .transpose()
            .with_context(|| format!("{name} is too large"))?
            .unwrap_or(*field);
    }
    Ok(config)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve(args)?;
    shop_server::telemetry::init_logging(config.log_format, &config.log_level)?;
    // Blocking work is the database, which has one writer and four reader
    // connections: more threads than a few per connection only queue on the
    // pool, each with its own stack and malloc arena (under load the default
    // cap of 512 left 112 threads and 108 MiB of heap behind).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .context("starting the async runtime")?;
    let listener = std::net::TcpListener::bind(config.addr).with_context(|| {
        format!(
            "cannot listen on {} (is another shop serve running?)",
            config.addr
        )
    })?;
    runtime.block_on(shop_server::serve(
        config,
        listener,
        shop_server::shutdown_signal(),
    ))
}
