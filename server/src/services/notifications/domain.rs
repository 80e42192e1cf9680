//! The notifications service's rules: what may be sent to whom, templates,
//! resends. Handlers call these; these call the store.

use serde_json::json;
use shop_wire::Page;
use shop_wire::events::{EventData, MakeEvent, NotificationEvent};
use shop_wire::notifications::{
    Channel, Delivery, Notification, NotificationAnalytics, NotificationId, NotificationStatus,
    Priority, SendRequest, Template, TemplateRequest,
};
use time::OffsetDateTime;

use super::{rules, templates};
use crate::services::error::{DomainError, DomainResult};
use crate::services::users::domain::normalize_email;
use crate::state::AppState;
use crate::store::{DeliveryQuery, NewEvent, NotificationQuery, Requeue, Store, StoreResult, now};
use shop_wire::users::Role;

use crate::services::MAX_PAGE;
const MAX_TEMPLATE_NAME: usize = 64;
const MAX_PUSH_TOKEN: usize = 4096;
/// A send may be scheduled at most this far ahead.
const MAX_SCHEDULE: time::Duration = time::Duration::days(366);

/// Checks and normalizes a recipient for its channel: an email address, an
/// E.164 phone number, or a push device token.
pub fn normalize_recipient(channel: Channel, field: &str, raw: &str) -> DomainResult<String> {
    match channel {
        Channel::Email => normalize_email(field, raw),
        Channel::Sms => {
            let phone: String = raw
                .trim()
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
                .collect();
            let digits = phone.strip_prefix('+').unwrap_or_default();
            let valid = (7..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            if valid {
                Ok(phone)
            } else {
                Err(DomainError::validation(
                    field,
                    "is not an E.164 phone number such as +4915112345678",
                ))
            }
        }
        Channel::Push => {
            let token = raw.trim();
            if token.is_empty()
                || token.len() > MAX_PUSH_TOKEN
                || token.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                Err(DomainError::validation(
                    field,
                    "is not a device token (1-4096 characters, no spaces)",
                ))
            } else {
                Ok(token.to_owned())
            }
        }
    }
}

fn validate_template_name(name: &str) -> DomainResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TEMPLATE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::validation(
            "name",
            "must be 1-64 lower-case letters, digits, `_`, `-` or `.`",
        ))
    }
}

/// The template the dispatcher and `send` use: a user-defined one if saved,
/// else the built-in. Cached; saves in this process invalidate the cache.
pub async fn find_template(
    state: &AppState,
    name: &str,
    channel: Channel,
) -> StoreResult<Option<Template>> {
    let key = (name.to_owned(), channel);
    let cache = &state.notifications.0.templates;
    if let Some(found) = cache.get(&key) {
        return Ok(found);
    }
    let found = match state.store.stored_template(name, channel).await? {
        Some(stored) => Some(stored),
        None => templates::builtin(name, channel),
    };
    cache.insert(key, found.clone());
    Ok(found)
}

/// A new queued notification and its `notification.queued` event.
pub fn new_notification(
    channel: Channel,
    recipient: String,
    template: String,
    vars: serde_json::Value,
    priority: Priority,
    send_at: OffsetDateTime,
    event_id: Option<u64>,
) -> (Notification, Vec<NewEvent>) {
    let at = now();
    let notification = Notification {
        id: NotificationId::generate(),
        channel,
        recipient,
        template,
        priority,
        status: NotificationStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: at,
        sent_at: None,
        send_at: send_at.max(at),
        updated_at: at,
        event_id,
        resent_from: None,
        vars: Some(vars),
        rendered: None,
        history: Vec::new(),
    };
    let event = status_event(EventData::NotificationQueued, &notification, None);
    (notification, vec![event])
}

/// The event of a status change, built by its kind's constructor
/// (`EventData::NotificationSent`); carries no variables (they may be personal).
pub fn status_event(
    kind: MakeEvent<NotificationEvent>,
    n: &Notification,
    error: Option<&str>,
) -> NewEvent {
    NewEvent::now(kind(NotificationEvent::new(n, error)))
}

async fn enqueue(state: &AppState, items: Vec<(Notification, Vec<NewEvent>)>) -> DomainResult<()> {
    state.store.enqueue_notifications(items, None).await?;
    state.notifications.wake();
    Ok(())
}

pub async fn send(state: &AppState, request: SendRequest) -> DomainResult<Notification> {
    let recipient = normalize_recipient(request.channel, "to", &request.to)?;
    let template = request.template.trim();
    let Some(found) = find_template(state, template, request.channel).await? else {
        return Err(DomainError::validation(
            "template",
            format!(
                "no template `{template}` for the {} channel (GET /api/notifications/templates lists them)",
                request.channel
            ),
        ));
    };
    let vars = serde_json::Value::Object(request.vars);
    check_renders(&found, &vars)?;
    let at = now();
    let send_at = request.send_at.unwrap_or(at);
    if send_at > at + MAX_SCHEDULE {
        return Err(DomainError::validation(
            "send_at",
            "may be at most a year ahead",
        ));
    }
    let (notification, events) = new_notification(
        request.channel,
        recipient,
        template.to_owned(),
        vars,
        request.priority.unwrap_or_default(),
        send_at,
        None,
    );
    enqueue(state, vec![(notification.clone(), events)]).await?;
    Ok(notification)
}

/// A notification whose template cannot render with its variables would go
/// dead on its first attempt: it is refused before it is queued, naming what
/// is missing, since the template is known now.
pub fn check_renders(template: &Template, vars: &serde_json::Value) -> DomainResult<()> {
    templates::render(template, vars).map(drop).map_err(|err| {
        DomainError::validation(
            "vars",
            format!(
                "the template `{}` cannot be rendered with these variables ({err}); it uses {}",
                template.name,
                templates::variables(template)
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// A notification as `reader` may see it: an admin sees all of it, staff
/// see it without the account token it may carry (see [`rules::hide_token`]).
pub fn shown_to(reader: Role, mut notification: Notification) -> Notification {
    if reader != Role::Admin {
        rules::hide_token(&mut notification);
    }
    notification
}

pub async fn list(
    state: &AppState,
    reader: Role,
    query: NotificationQuery,
) -> DomainResult<Page<Notification>> {
    let (items, total) = state.store.list_notifications(&query).await?;
    Ok(Page {
        items: items.into_iter().map(|n| shown_to(reader, n)).collect(),
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

pub async fn get(state: &AppState, id: &NotificationId) -> DomainResult<Notification> {
    state
        .store
        .notification(id)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("notification {id}")))
}

const RESENDABLE: [NotificationStatus; 3] = [
    NotificationStatus::Failed,
    NotificationStatus::Dead,
    NotificationStatus::Sent,
];

/// A failed or dead notification is queued again as it is (same id, so a
/// provider that did get an earlier attempt can drop the duplicate); a sent
/// one is sent again as a new notification, since its id was already used.
pub async fn resend(state: &AppState, id: &NotificationId) -> DomainResult<Notification> {
    let current = get(state, id).await?;
    if current.status == NotificationStatus::Sent {
        let (mut copy, _) = new_notification(
            current.channel,
            current.recipient.clone(),
            current.template.clone(),
            current.vars.clone().unwrap_or_else(|| json!({})),
            current.priority,
            now(),
            None,
        );
        copy.resent_from = Some(current.id.clone());
        let event = status_event(EventData::NotificationQueued, &copy, None);
        enqueue(state, vec![(copy.clone(), vec![event])]).await?;
        return Ok(copy);
    }
    // The event tells what the notification is once queued again, as the store leaves it.
    let at = now();
    let queued = Notification {
        status: NotificationStatus::Queued,
        attempts: 0,
        send_at: at,
        updated_at: at,
        ..current
    };
    let event = status_event(EventData::NotificationQueued, &queued, None);
    match state
        .store
        .requeue_notification(id, &RESENDABLE[..2], at, vec![event])
        .await?
    {
        Requeue::Requeued(notification) => {
            state.notifications.wake();
            Ok(*notification)
        }
        Requeue::NotFound => Err(DomainError::not_found(format!("notification {id}"))),
        Requeue::WrongState(status) => Err(DomainError::Conflict {
            code: "invalid_state",
            message: format!(
                "notification {id} is {status}; only a failed, dead or sent notification can be resent"
            ),
            details: json!({ "status": status, "allowed": RESENDABLE }),
        }),
    }
}

/// Built-ins overlaid with the user-defined templates, by name then channel.
pub async fn templates(state: &AppState) -> DomainResult<Vec<Template>> {
    let stored = state.store.stored_templates().await?;
    let mut all: Vec<Template> = templates::builtins()
        .into_iter()
        .filter(|b| {
            !stored
                .iter()
                .any(|s| s.name == b.name && s.channel == b.channel)
        })
        .collect();
    all.extend(stored);
    all.sort_by(|a, b| (&a.name, a.channel).cmp(&(&b.name, b.channel)));
    Ok(all)
}

pub async fn template(
    state: &AppState,
    name: &str,
    channel: Option<Channel>,
) -> DomainResult<Vec<Template>> {
    let found: Vec<Template> = templates(state)
        .await?
        .into_iter()
        .filter(|t| t.name == name && channel.is_none_or(|c| c == t.channel))
        .collect();
    if found.is_empty() {
        return Err(DomainError::not_found(format!("template {name}")));
    }
    Ok(found)
}

/// Compiles a template and saves it; true when it is new. A template that does
/// not compile is refused with the engine's message and line.
pub async fn save_template(
    state: &AppState,
    request: TemplateRequest,
) -> DomainResult<(bool, Template)> {
    let name = request.name.trim().to_owned();
    validate_template_name(&name)?;
    let template = Template {
        name,
        channel: request.channel,
        subject: request.subject,
        body: request.body,
        html: request.html,
        builtin: false,
        updated_at: Some(now()),
    };
    templates::check(&template).map_err(|err| DomainError::Validation {
        message: format!("the template does not compile: {err}"),
        fields: json!({ err.part: err.message }),
    })?;
    let created = state.store.save_template(&template).await?;
    state
        .notifications
        .0
        .templates
        .invalidate(&(template.name.clone(), template.channel));
    Ok((created, template))
}

pub async fn analytics(state: &AppState) -> DomainResult<NotificationAnalytics> {
    Ok(state.store.notification_analytics().await?)
}

pub async fn deliveries(
    state: &AppState,
    reader: Role,
    query: DeliveryQuery,
) -> DomainResult<Page<Delivery>> {
    let (mut items, total) = state.store.deliveries(&query).await?;
    if reader != Role::Admin {
        items.iter_mut().for_each(rules::hide_delivered_token);
    }
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

/// Every staff and admin email, for alerts to the shop's own people.
pub async fn staff_emails(store: &dyn Store) -> StoreResult<Vec<String>> {
    emails_of(
        store,
        &[shop_wire::users::Role::Admin, shop_wire::users::Role::Staff],
    )
    .await
}

/// Every admin email, for what only admins act on (a disabled webhook endpoint).
pub async fn admin_emails(store: &dyn Store) -> StoreResult<Vec<String>> {
    emails_of(store, &[shop_wire::users::Role::Admin]).await
}

async fn emails_of(
    store: &dyn Store,
    roles: &[shop_wire::users::Role],
) -> StoreResult<Vec<String>> {
    let mut emails = Vec::new();
    for role in roles.iter().copied() {
        let mut offset = 0;
        loop {
            let query = crate::store::UserQuery {
                role: Some(role),
                text: None,
                limit: MAX_PAGE,
                offset,
            };
            let (users, _) = store.list_users(&query).await?;
            let full = users.len() == MAX_PAGE as usize;
            emails.extend(users.into_iter().map(|u| u.email));
            if !full {
                break;
            }
            offset += u64::from(MAX_PAGE);
        }
    }
    Ok(emails)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_its_template_cannot_render_is_refused() {
        let welcome = templates::builtin("welcome", Channel::Email).expect("built-in");
        let err = check_renders(&welcome, &json!({})).expect_err("no variables");
        assert!(matches!(err, DomainError::Validation { .. }), "{err:?}");
        assert!(err.to_string().contains("`welcome`"), "{err}");
        assert!(err.to_string().ends_with("it uses name, token"), "{err}");
        check_renders(&welcome, &json!({"name": "Ada"})).expect("renders with its variable");
    }

    #[test]
    fn recipients_are_checked_per_channel() {
        assert_eq!(
            normalize_recipient(Channel::Email, "to", " Ada@Example.com ").expect("email"),
            "ada@example.com"
        );
        assert!(normalize_recipient(Channel::Email, "to", "not-an-email").is_err());
        assert_eq!(
            normalize_recipient(Channel::Sms, "to", "+49 151 1234-5678").expect("phone"),
            "+4915112345678"
        );
        for bad in [
            "015112345678",
            "+0151123",
            "+12",
            "+1234567890123456",
            "+49abc1234567",
            "",
        ] {
            assert!(
                normalize_recipient(Channel::Sms, "to", bad).is_err(),
                "{bad}"
            );
        }
        assert!(normalize_recipient(Channel::Push, "to", "device-token-1").is_ok());
        assert!(normalize_recipient(Channel::Push, "to", "   ").is_err());
        assert!(normalize_recipient(Channel::Push, "to", "two words").is_err());
    }

    #[test]
    fn template_names() {
        assert!(validate_template_name("order_confirmation.v2").is_ok());
        assert!(validate_template_name("").is_err());
        assert!(validate_template_name("Has Caps").is_err());
        assert!(validate_template_name(&"x".repeat(65)).is_err());
    }
}
