//! Notifications: what is sent to whom on which channel, with which template,
//! and what became of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
pub use crate::ids::NotificationId;

string_enum!(
    /// How a notification travels.
    Channel, "channel" {
        Email => "email",
        Sms => "sms",
        Push => "push",
    }
);

string_enum!(
    /// Queue order: every `urgent` notification that is due goes before any
    /// `high` one, and so on; within a priority, first in, first out.
    Priority, "priority" {
        Urgent => "urgent",
        High => "high",
        Normal => "normal",
        Low => "low",
    }
);

string_enum!(
    /// Where a notification is in its life: `queued` (waiting, maybe until
    /// `send_at`), `sending` (claimed by a worker), `sent`, `failed` (an attempt
    /// failed and a retry is scheduled), `dead` (permanently failed or out of attempts).
    NotificationStatus, "status" {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
        Dead => "dead",
    }
);

// The enum comes from a macro, which cannot take `#[default]` on one variant.
#[allow(clippy::derivable_impls)]
impl Default for Priority {
    fn default() -> Self {
        Priority::Normal
    }
}

/// One try at delivering a notification.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub number: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `sent`, `transient_error` or `permanent_error`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A notification and its delivery state. `GET /api/notifications/{id}` also
/// fills `vars`, the rendered content and `history`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: NotificationId,
    pub channel: Channel,
    pub recipient: String,
    pub template: String,
    pub priority: Priority,
    pub status: NotificationStatus,
    /// Attempts since it was (re)queued.
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// When the next attempt may start (the scheduled time, or the retry time after a failure).
    #[serde(with = "time::serde::rfc3339")]
    pub send_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The event that caused it, for reactions to events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u64>,
    /// The notification this one re-sends, for a resend of a sent notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resent_from: Option<NotificationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub vars: Option<serde_json::Value>,
    /// What was rendered for the last attempt (subject or push title, text, HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<Rendered>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Attempt>,
}

/// A template rendered for one recipient.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rendered {
    /// The email subject or the push title; none for SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The plain text: the email's text part, the SMS (at most 160 characters) or the push body.
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// `POST /api/notifications`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub channel: Channel,
    /// An email address, an E.164 phone number (`+4915112345678`) or a push device token.
    pub to: String,
    pub template: String,
    /// The template's variables.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Send no earlier than this (RFC 3339); now when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub send_at: Option<OffsetDateTime>,
}

/// A template for one channel. Built-in templates have `builtin: true`; a
/// user-defined template with the same name and channel replaces a built-in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    pub name: String,
    pub channel: Channel,
    /// Email subject or push title (a template itself); none for SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The email text part, the SMS text or the push body.
    pub body: String,
    /// The email HTML part (optional; HTML-escaped variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    pub builtin: bool,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<OffsetDateTime>,
}

/// `POST /api/notifications/templates`: creates or replaces a user-defined template.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    /// Lower-case letters, digits, `_`, `-` and `.`, at most 64.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9_.-]+$")
    )]
    pub name: String,
    pub channel: Channel,
    /// Required for email (the subject) and push (the title); refused for SMS.
    #[serde(default, alias = "title")]
    pub subject: Option<String>,
    pub body: String,
    /// Email only.
    #[serde(default)]
    pub html: Option<String>,
}

/// What a local sink recorded: the default channel when no provider is configured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// Order of recording, increasing.
    pub seq: u64,
    pub notification_id: NotificationId,
    pub channel: Channel,
    pub recipient: String,
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub delivered_at: OffsetDateTime,
}

/// Counts of notifications by their current status.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusCounts {
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    pub dead: u64,
}

/// `GET /api/notifications/analytics`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationAnalytics {
    pub total: u64,
    pub by_channel: BTreeMap<String, StatusCounts>,
    pub by_template: BTreeMap<String, StatusCounts>,
    /// Median seconds from creation to sent over sent notifications; none before the first.
    pub median_seconds_to_send: Option<f64>,
    /// Notifications waiting (queued or failed awaiting retry), by priority.
    pub queue_depth: BTreeMap<String, u64>,
}
