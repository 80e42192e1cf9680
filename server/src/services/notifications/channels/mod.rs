//! The ways a notification leaves the shop: SMTP for email, HTTP webhooks for
//! SMS and push, and, for any channel without a configured provider, the local
//! sink, which records the delivery in the database (so a fresh install works
//! with no configuration and tests can see what was sent).
//!
//! Every provider gets the notification id as its deduplication key (the SMTP
//! Message-ID, the webhook's `Idempotency-Key`, the sink's primary key): the
//! queue delivers at least once, and a redelivery after a crash is recognisable.

pub mod smtp;
pub mod webhook;

use std::time::Duration;

use shop_wire::notifications::{Channel, Delivery, NotificationId, Rendered};

use crate::config::NotificationsConfig;
use crate::store::now;

/// A rendered notification on its way out.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub id: &'a NotificationId,
    pub channel: Channel,
    pub recipient: &'a str,
    pub template: &'a str,
    pub rendered: &'a Rendered,
}

#[derive(Debug)]
pub enum Sent {
    /// A provider accepted it.
    Remote,
    /// The local sink: this record is written with the notification's new status.
    Recorded(Delivery),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a timeout, a refused connection, a 5xx, an SMTP 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: a bad address, a provider 4xx, an SMTP 5xx.
    #[error("{0}")]
    Permanent(String),
}

enum Provider {
    Local,
    Smtp(smtp::SmtpSender),
    Webhook(webhook::WebhookSender),
}

impl Provider {
    fn name(&self) -> &'static str {
        match self {
            Provider::Local => "local sink",
            Provider::Smtp(_) => "smtp",
            Provider::Webhook(_) => "webhook",
        }
    }
}

/// The provider of each channel, chosen once from the configuration.
pub struct Channels {
    email: Provider,
    sms: Provider,
    push: Provider,
    timeout: Duration,
}

impl Channels {
    /// Falls back to the local sink (loudly) for a provider that cannot be
    /// built; `Config::validate` has already refused a bad URL, so that is a bug.
    pub fn from_config(config: &NotificationsConfig) -> Self {
        let timeout = Duration::from_millis(config.send_timeout_ms);
        let email = match &config.smtp_url {
            Some(url) => match smtp::SmtpSender::new(url, &config.smtp_from, timeout) {
                Ok(sender) => Provider::Smtp(sender),
                Err(err) => {
                    tracing::error!(error = %err, "SMTP is misconfigured; email goes to the local sink");
                    Provider::Local
                }
            },
            None => Provider::Local,
        };
        let secret = config.webhook_secret.clone().unwrap_or_default();
        let webhook = |url: &Option<String>| match url {
            Some(url) => match webhook::WebhookSender::new(url, secret.as_bytes(), timeout) {
                Ok(sender) => Provider::Webhook(sender),
                Err(err) => {
                    tracing::error!(error = %err, "webhook is misconfigured; using the local sink");
                    Provider::Local
                }
            },
            None => Provider::Local,
        };
        Channels {
            sms: webhook(&config.sms_webhook_url),
            push: webhook(&config.push_webhook_url),
            email,
            timeout,
        }
    }

    fn provider(&self, channel: Channel) -> &Provider {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::Push => &self.push,
        }
    }

    /// `smtp`, `webhook` or `local sink`, for health reports.
    pub fn provider_name(&self, channel: Channel) -> &'static str {
        self.provider(channel).name()
    }

    pub async fn send(&self, message: &Outgoing<'_>) -> Result<Sent, SendError> {
        let send = async {
            match self.provider(message.channel) {
                Provider::Local => Ok(Sent::Recorded(Delivery {
                    seq: 0,
                    notification_id: message.id.clone(),
                    channel: message.channel,
                    recipient: message.recipient.to_owned(),
                    template: message.template.to_owned(),
                    subject: message.rendered.subject.clone(),
                    body: message.rendered.body.clone(),
                    html: message.rendered.html.clone(),
                    delivered_at: now(),
                })),
                Provider::Smtp(sender) => sender.send(message).await.map(|()| Sent::Remote),
                Provider::Webhook(sender) => sender.send(message).await.map(|()| Sent::Remote),
            }
        };
        // Each provider has its own timeout too; this bounds the whole call whatever it does.
        tokio::time::timeout(self.timeout + Duration::from_millis(500), send)
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transient(format!(
                    "{} did not answer within {} ms",
                    self.provider(message.channel).name(),
                    self.timeout.as_millis()
                )))
            })
    }
}
