//! `shop notification`: the queue of emails, SMS and push messages, their
//! templates, and what the local sinks delivered (staff).

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use serde::Serialize;
use serde_json::{Map, Value};
use shop_wire::Page;
use shop_wire::notifications::{
    Attempt, Channel, Delivery, Notification, NotificationAnalytics, NotificationId,
    NotificationStatus, Priority, SendRequest, StatusCounts, Template, TemplateRequest,
};
use time::OffsetDateTime;

use super::choice;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum NotificationCommand {
    /// List notifications, newest first, filtered by status, channel, template, recipient or priority.
    #[command(
        after_help = "Example: shop notification list --status dead -o ndjson | jq -r .last_error"
    )]
    List(ListArgs),
    /// Show one notification: its rendered text and every delivery attempt.
    Get {
        /// The notification id (ntf_...).
        #[arg(value_parser = parse_id)]
        id: NotificationId,
    },
    /// Queue a notification from a template.
    #[command(after_help = "\
Variables are strings (--var name=Kim) or JSON values (--var total_cents:=1999).
Example: shop notification send --channel sms --to +4915112345678 --template order_shipped \\
           --var number=1042 --priority high")]
    Send(SendArgs),
    /// Send a failed or dead notification again (a sent one is copied into a new notification).
    Resend {
        /// The notification id (ntf_...).
        #[arg(value_parser = parse_id)]
        id: NotificationId,
    },
    /// List every template: the built-ins and the user-defined ones.
    Templates,
    /// Add or show a user-defined template.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Counts by channel and template and status, the median time to send, and the queue depth.
    Analytics,
    /// What the local sinks delivered (the channels with no provider configured), newest first.
    Deliveries(DeliveriesArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Add a template, or replace a user-defined one of the same name and channel.
    /// It is compiled on save: a syntax error is refused with its line.
    #[command(after_help = "\
Templates use Jinja syntax (minijinja): {{ name }}, {% if %}, {{ total_cents | money }}.
Example: shop notification template add back_in_stock --channel email \\
           --subject 'Back in stock: {{ product }}' --body-file back_in_stock.txt")]
    Add(TemplateAddArgs),
    /// Show a template, one entry per channel it exists for.
    Show {
        /// The template name.
        name: String,
        /// Only this channel's version: email, sms or push.
        #[arg(long, value_parser = channel())]
        channel: Option<Channel>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this status: queued, sending, sent, failed or dead.
    #[arg(long, value_parser = status())]
    status: Option<NotificationStatus>,
    /// Only this channel: email, sms or push.
    #[arg(long, value_parser = channel())]
    channel: Option<Channel>,
    /// Only notifications from this template.
    #[arg(long)]
    template: Option<String>,
    /// Only notifications to exactly this recipient.
    #[arg(long)]
    recipient: Option<String>,
    /// Only this priority: urgent, high, normal or low.
    #[arg(long, value_parser = priority())]
    priority: Option<Priority>,
    /// Notifications per page.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
    /// Notifications to skip.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    offset: u64,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The channel: email, sms or push.
    #[arg(long, value_parser = channel())]
    channel: Channel,
    /// The recipient: an email address, an E.164 phone number (+4915112345678) or a device token.
    #[arg(long, value_name = "RECIPIENT")]
    to: String,
    /// The template to render, e.g. welcome or order_confirmation (see `shop notification templates`).
    #[arg(long, add = crate::complete::templates())]
    template: String,
    /// A template variable, `key=text` or `key:=JSON`; repeat for more.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    vars: Vec<(String, Value)>,
    /// Queue order: urgent, high, normal or low [default: normal].
    #[arg(long, value_parser = priority())]
    priority: Option<Priority>,
    /// Send later: an RFC 3339 time (2026-12-24T09:00:00Z) or a delay (+30m, +2h, +1d).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    at: Option<OffsetDateTime>,
}

#[derive(Debug, clap::Args)]
pub struct TemplateAddArgs {
    /// The template name: lower-case letters, digits, `_`, `-` and `.`.
    name: String,
    /// The channel it is for: email, sms or push.
    #[arg(long, value_parser = channel())]
    channel: Channel,
    /// The email subject or push title (not for SMS).
    #[arg(long)]
    subject: Option<String>,
    /// File with the body (the text part of an email); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    body_file: PathBuf,
    /// File with the HTML part of an email.
    #[arg(long, value_name = "FILE")]
    html_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DeliveriesArgs {
    /// Only this channel: email, sms or push.
    #[arg(long, value_parser = channel())]
    channel: Option<Channel>,
    /// Only deliveries to exactly this recipient.
    #[arg(long)]
    recipient: Option<String>,
    /// Deliveries per page.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
}

fn channel() -> impl TypedValueParser<Value = Channel> {
    choice(Channel::ALL.iter().map(|c| c.as_str()))
}

fn priority() -> impl TypedValueParser<Value = Priority> {
    choice(Priority::ALL.iter().map(|p| p.as_str()))
}

fn status() -> impl TypedValueParser<Value = NotificationStatus> {
    choice(NotificationStatus::ALL.iter().map(|s| s.as_str()))
}

fn parse_id(text: &str) -> Result<NotificationId, String> {
    text.parse().map_err(|err| format!("`{text}`: {err}"))
}

/// `key=text` is a string; `key:=JSON` any JSON value (a number, a list...).
fn parse_var(text: &str) -> Result<(String, Value), String> {
    let (key, value) = match text.split_once(":=") {
        Some((key, json)) if !key.contains('=') => (
            key,
            serde_json::from_str(json).map_err(|err| format!("`{json}` is not JSON: {err}"))?,
        ),
        _ => {
            let (key, text) = text
                .split_once('=')
                .ok_or_else(|| format!("`{text}` is not KEY=VALUE or KEY:=JSON"))?;
            (key, Value::String(text.to_owned()))
        }
    };
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok((key.to_owned(), value))
    } else {
        Err(format!(
            "`{key}` is not a variable name (letters, digits and `_`)"
        ))
    }
}

/// An RFC 3339 time, or `+N` seconds/minutes/hours/days from now.
fn parse_when(text: &str) -> Result<OffsetDateTime, String> {
    if let Some(delay) = text.strip_prefix('+') {
        let split = delay.len().saturating_sub(1);
        let (number, unit) = delay.split_at(split);
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(format!("`{text}`: a delay ends in s, m, h or d, like +30m")),
        };
        let count: i64 = number
            .parse()
            .map_err(|_| format!("`{text}`: a delay is a whole number, like +30m"))?;
        return Ok(
            OffsetDateTime::now_utc() + time::Duration::seconds(count.saturating_mul(seconds))
        );
    }
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{text}` is neither an RFC 3339 time nor a delay like +30m"))
}

/// A notification as a detail view shows it: what was sent, to whom and how
/// it went, with the rendered text as text and the variables as `key=value`;
/// its attempts get a table of their own.
#[derive(Serialize)]
struct NotificationView<'a> {
    id: String,
    status: String,
    channel: String,
    recipient: &'a str,
    template: &'a str,
    priority: String,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "String::is_empty")]
    variables: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resent_from: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    sent_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Notification> for NotificationView<'a> {
    fn from(notification: &'a Notification) -> Self {
        let variables = match &notification.vars {
            Some(Value::Object(vars)) => vars
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| match value {
                    Value::String(text) => format!("{key}={text}"),
                    other => format!("{key}={other}"),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        let rendered = notification.rendered.as_ref();
        NotificationView {
            id: notification.id.to_string(),
            status: notification.status.to_string(),
            channel: notification.channel.to_string(),
            recipient: &notification.recipient,
            template: &notification.template,
            priority: notification.priority.to_string(),
            attempts: notification.attempts,
            last_error: notification.last_error.as_deref(),
            subject: rendered.and_then(|r| r.subject.as_deref()),
            text: rendered.map(|r| r.body.as_str()),
            variables,
            resent_from: notification.resent_from.as_ref().map(ToString::to_string),
            created_at: notification.created_at,
            sent_at: notification.sent_at,
        }
    }
}

impl Tabular for NotificationView<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[Column::new("status", "status").kind(CellKind::Status)];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.clone()
    }
}

impl Tabular for Attempt {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("#", "number").kind(CellKind::Id),
            Column::new("at", "at").kind(CellKind::Time),
            Column::new("outcome", "outcome").kind(CellKind::Status),
            Column::new("ms", "duration_ms").kind(CellKind::Id),
            Column::new("error", "error"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.number.to_string()
    }
}

/// The server points an API client at its templates route; a person at
/// the command line is pointed at the command that lists them.
fn templates_hint(err: CliError) -> CliError {
    const ROUTE: &str = "GET /api/notifications/templates";
    const COMMAND: &str = "`shop notification templates`";
    match err {
        CliError::Api(mut api) if api.detail.message.contains(ROUTE) => {
            api.detail.message = api.detail.message.replace(ROUTE, COMMAND);
            if let Some(Value::String(text)) = api
                .detail
                .details
                .get_mut("fields")
                .and_then(|fields| fields.get_mut("template"))
            {
                *text = text.replace(ROUTE, COMMAND);
            }
            CliError::Api(api)
        }
        other => other,
    }
}

impl Tabular for Notification {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("channel", "channel"),
            Column::new("recipient", "recipient"),
            Column::new("template", "template"),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("tries", "attempts").kind(CellKind::Id),
            Column::new("age", "created_at").kind(CellKind::Age),
            Column::new("priority", "priority").wide(),
            Column::new("sent", "sent_at").kind(CellKind::Age).wide(),
            Column::new("created", "created_at")
                .kind(CellKind::Time)
                .wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl Tabular for Template {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("name", "name"),
            Column::new("channel", "channel"),
            Column::new("builtin", "builtin"),
            Column::new("subject", "subject"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.name.clone()
    }
}

impl Tabular for Delivery {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("notification", "notification_id").kind(CellKind::Id),
            Column::new("channel", "channel"),
            Column::new("recipient", "recipient"),
            Column::new("template", "template"),
            Column::new("subject", "subject"),
            Column::new("delivered", "delivered_at").kind(CellKind::Age),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.notification_id.to_string()
    }
}

/// One line of the analytics: the counts of one channel or one template.
#[derive(Debug, Serialize)]
struct CountsRow<'a> {
    group: &'static str,
    name: &'a str,
    #[serde(flatten)]
    counts: &'a StatusCounts,
}

impl Tabular for CountsRow<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("by", "group"),
            Column::new("name", "name"),
            Column::new("queued", "queued"),
            Column::new("sending", "sending"),
            Column::new("sent", "sent"),
            Column::new("failed", "failed"),
            Column::new("dead", "dead"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        format!("{}:{}", self.group, self.name)
    }
}

pub(super) fn read_file(path: &PathBuf) -> Result<String, CliError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|err| CliError::Usage(format!("cannot read {}: {err}", path.display())))
}

impl NotificationCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            NotificationCommand::List(args) => {
                let page: Page<Notification> = client
                    .get("/api/notifications")
                    .query_opt("status", args.status)
                    .query_opt("channel", args.channel)
                    .query_opt("template", args.template)
                    .query_opt("recipient", args.recipient)
                    .query_opt("priority", args.priority)
                    .query("limit", args.limit.to_string())
                    .query("offset", args.offset.to_string())
                    .send()
                    .await?;
                output.list(&page, &page.items)?;
                let shown = page.offset + page.items.len() as u64;
                if output.format() == Format::Table && shown < page.total {
                    eprintln!(
                        "{} of {} notifications; see more with --offset {shown}",
                        page.items.len(),
                        page.total
                    );
                }
                Ok(())
            }
            NotificationCommand::Get { id } => {
                let notification: Notification = client
                    .get(&format!("/api/notifications/{id}"))
                    .send()
                    .await?;
                if !output.is_table() {
                    return output.one(&notification);
                }
                output.one(&NotificationView::from(&notification))?;
                if !notification.history.is_empty() {
                    eprintln!("\nattempts:");
                    output.list(&(), &notification.history)?;
                }
                Ok(())
            }
            NotificationCommand::Send(args) => {
                let notification: Notification = client
                    .post("/api/notifications")
                    .json(&SendRequest {
                        channel: args.channel,
                        to: args.to,
                        template: args.template,
                        vars: args.vars.into_iter().collect::<Map<String, Value>>(),
                        priority: args.priority,
                        send_at: args.at,
                    })?
                    .send()
                    .await
                    .map_err(templates_hint)?;
                output.one(&notification)
            }
            NotificationCommand::Resend { id } => {
                let notification: Notification = client
                    .post(&format!("/api/notifications/{id}/resend"))
                    .send()
                    .await?;
                output.one(&notification)
            }
            NotificationCommand::Templates => {
                let page: Page<Template> =
                    client.get("/api/notifications/templates").send().await?;
                output.list(&page, &page.items)
            }
            NotificationCommand::Template(TemplateCommand::Show { name, channel }) => {
                let templates: Vec<Template> = client
                    .get(&format!("/api/notifications/templates/{name}"))
                    .query_opt("channel", channel)
                    .send()
                    .await?;
                match templates.as_slice() {
                    [one] => output.one(one),
                    many => output.list(&many, many),
                }
            }
            NotificationCommand::Template(TemplateCommand::Add(args)) => {
                let request = TemplateRequest {
                    name: args.name,
                    channel: args.channel,
                    subject: args.subject,
                    body: read_file(&args.body_file)?,
                    html: args.html_file.as_ref().map(read_file).transpose()?,
                };
                let template: Template = client
                    .post("/api/notifications/templates")
                    .json(&request)?
                    .send()
                    .await?;
                output.one(&template)
            }
            NotificationCommand::Analytics => {
                let analytics: NotificationAnalytics =
                    client.get("/api/notifications/analytics").send().await?;
                let rows: Vec<CountsRow<'_>> = analytics
                    .by_channel
                    .iter()
                    .map(|(name, counts)| CountsRow {
                        group: "channel",
                        name,
                        counts,
                    })
                    .chain(
                        analytics
                            .by_template
                            .iter()
                            .map(|(name, counts)| CountsRow {
                                group: "template",
                                name,
                                counts,
                            }),
                    )
                    .collect();
                output.list(&analytics, &rows)?;
                if output.format() == Format::Table {
                    let median = analytics
                        .median_seconds_to_send
                        .map_or("-".to_owned(), |s| format!("{s:.3} s"));
                    let depth: u64 = analytics.queue_depth.values().sum();
                    eprintln!(
                        "{} notifications; median time to send {median}; {depth} waiting in the queue",
                        analytics.total
                    );
                }
                Ok(())
            }
            NotificationCommand::Deliveries(args) => {
                let page: Page<Delivery> = client
                    .get("/api/notifications/deliveries")
                    .query_opt("channel", args.channel)
                    .query_opt("recipient", args.recipient)
                    .query("limit", args.limit.to_string())
                    .send()
                    .await?;
                output.list(&page, &page.items)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;

    #[test]
    fn variables_are_text_or_json() {
        assert_eq!(
            parse_var("name=Kim Lee").expect("var"),
            ("name".into(), Value::from("Kim Lee"))
        );
        assert_eq!(
            parse_var("total_cents:=1999").expect("var"),
            ("total_cents".into(), Value::from(1999))
        );
        assert_eq!(parse_var("url=a=b").expect("var").1, Value::from("a=b"));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("=x").is_err());
        assert!(parse_var("bad key=x").is_err());
        assert!(parse_var("n:=not json").is_err());
    }

    #[test]
    fn a_notification_reads_as_text_with_its_attempts_and_its_json_stays_whole() {
        let notification: Notification = serde_json::from_value(serde_json::json!({
            "id": "ntf_01JDQ6Z5R3K8V2N4M7P9T0W1XY", "channel": "email",
            "recipient": "kim@example.com", "template": "refund_issued", "priority": "high",
            "status": "sent", "attempts": 1, "last_error": null,
            "created_at": "2026-11-23T14:05:09Z", "sent_at": "2026-11-23T14:05:10Z",
            "send_at": "2026-11-23T14:05:09Z", "updated_at": "2026-11-23T14:05:10Z",
            "vars": {"number": "ORD-001002", "reason": null},
            "rendered": {"subject": "Refund of 10.00 USD", "body": "We have refunded 10.00 USD.",
                         "html": "<p>We have refunded</p>"},
            "history": [{"number": 1, "at": "2026-11-23T14:05:10Z", "outcome": "sent", "duration_ms": 3}]
        }))
        .expect("notification");
        let view = Output::render_for_test(Format::Table, |o| {
            o.one(&NotificationView::from(&notification))
        });
        for text in [
            "Refund of 10.00 USD",
            "We have refunded 10.00 USD.",
            "number=ORD-001002",
        ] {
            assert!(view.contains(text), "{text}: {view}");
        }
        for raw in ['{', '"', '<'] {
            assert!(!view.contains(raw), "no raw JSON or HTML ({raw}): {view}");
        }
        assert!(
            !view.contains("reason="),
            "empty variables are left out: {view}"
        );
        let attempts =
            Output::render_for_test(Format::Table, |o| o.list(&(), &notification.history));
        assert!(
            attempts
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("1 ") && l.contains("sent")),
            "{attempts}"
        );
        let json = Output::render_for_test(Format::Json, |o| o.one(&notification));
        assert!(
            json.contains("\"html\""),
            "the document is the server's: {json}"
        );
    }

    #[test]
    fn send_times_are_absolute_or_relative() {
        let later = parse_when("+30m").expect("delay");
        let expected = OffsetDateTime::now_utc() + time::Duration::minutes(30);
        assert!((later - expected).abs() < time::Duration::seconds(5));
        assert!(parse_when("2026-12-24T09:00:00Z").is_ok());
        for bad in ["+30", "+xm", "tomorrow", "+5w"] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
    }
}
