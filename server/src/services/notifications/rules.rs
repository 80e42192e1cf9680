//! When a reaction's mail is held back, as plain functions: throttles that
//! keep what outsiders can trigger from becoming a flood; and what of a
//! queued email a reader may see.

use serde_json::{Value, json};
use shop_wire::notifications::{Delivery, Notification};

use super::reactions::{TOKEN_VAR, token_templates};

/// Whether a low-stock alert for a SKU is due, given how many alerts for it
/// went out within the alert window (this chunk's included): one per SKU
/// per window, however often its stock crosses the threshold.
pub fn low_stock_alert_due(alerts_in_window: u64) -> bool {
    alerts_in_window == 0
}

/// Whether another welcome email may go out, given how many went out in
/// the last hour: nobody has confirmed a new account's address, so a cap
/// (`0`: none) keeps a flood of registrations from making the shop a
/// sender of mail to strangers.
pub fn unverified_mail_allowed(sent_last_hour: u64, cap: u32) -> bool {
    cap == 0 || sent_last_hour < u64::from(cap)
}

/// Reset emails one address gets in an hour at most: enough to retry a
/// lost one, too few for anyone to flood a mailbox through the form.
pub const RESET_MAILS_PER_HOUR: u64 = 3;

/// Whether another password-reset email may go to an address that got
/// `sent_last_hour` of them in the last hour.
pub fn reset_mail_allowed(sent_last_hour: u64) -> bool {
    sent_last_hour < RESET_MAILS_PER_HOUR
}

/// Hides the account token a notification carries (in its variables and
/// wherever the rendered text repeats it) from a reader who is not an
/// admin: staff read the queue, and a reset token read there would open
/// any account, an admin's included.
pub fn hide_token(notification: &mut Notification) {
    let Some(vars) = notification.vars.as_mut().and_then(Value::as_object_mut) else {
        return;
    };
    let Some(Value::String(token)) = vars.insert(TOKEN_VAR.to_owned(), json!(HIDDEN)) else {
        vars.remove(TOKEN_VAR);
        return;
    };
    if let Some(rendered) = notification.rendered.as_mut() {
        rendered.body = rendered.body.replace(&token, HIDDEN);
        rendered.html = rendered.html.as_ref().map(|h| h.replace(&token, HIDDEN));
    }
}

/// Hides what a local sink delivered of an email that carries an account
/// token (see [`hide_token`]); a delivery does not keep its variables, so
/// the whole text goes.
pub fn hide_delivered_token(delivery: &mut Delivery) {
    if token_templates().any(|t| t == delivery.template) {
        delivery.body = HIDDEN.to_owned();
        delivery.html = None;
    }
}

/// What a hidden token reads as.
const HIDDEN: &str = "(hidden: a one-time account token)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_low_stock_alert_per_window() {
        assert!(low_stock_alert_due(0));
        assert!(!low_stock_alert_due(1));
        assert!(!low_stock_alert_due(3));
    }

    #[test]
    fn welcome_mail_stops_at_the_hourly_cap() {
        assert!(unverified_mail_allowed(199, 200));
        assert!(!unverified_mail_allowed(200, 200));
        assert!(unverified_mail_allowed(10_000, 0));
    }

    #[test]
    fn reset_mail_stops_at_the_hourly_share_of_an_address() {
        assert!(reset_mail_allowed(0));
        assert!(reset_mail_allowed(RESET_MAILS_PER_HOUR - 1));
        assert!(!reset_mail_allowed(RESET_MAILS_PER_HOUR));
    }

    #[test]
    fn a_token_is_hidden_from_the_variables_the_text_and_the_delivery() {
        let (mut n, _) = super::super::domain::new_notification(
            shop_wire::notifications::Channel::Email,
            "ada@example.com".to_owned(),
            "password_reset".to_owned(),
            json!({"name": "Ada", "token": "s3cr3t"}),
            shop_wire::notifications::Priority::High,
            crate::store::now(),
            None,
        );
        n.rendered = Some(shop_wire::notifications::Rendered {
            subject: Some("Reset your password".to_owned()),
            body: "code: s3cr3t".to_owned(),
            html: Some("<b>s3cr3t</b>".to_owned()),
        });
        hide_token(&mut n);
        let text = serde_json::to_string(&n).expect("json");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(n.vars.as_ref().expect("vars")["name"], "Ada");
        let mut delivery = Delivery {
            seq: 1,
            notification_id: n.id.clone(),
            channel: n.channel,
            recipient: n.recipient.clone(),
            template: "password_reset".to_owned(),
            subject: None,
            body: "code: s3cr3t".to_owned(),
            html: Some("<b>s3cr3t</b>".to_owned()),
            delivered_at: crate::store::now(),
        };
        hide_delivered_token(&mut delivery);
        assert!(
            !serde_json::to_string(&delivery)
                .expect("json")
                .contains("s3cr3t")
        );
        let mut other = Delivery {
            template: "order_shipped".to_owned(),
            ..delivery
        };
        other.body = "shipped".to_owned();
        hide_delivered_token(&mut other);
        assert_eq!(other.body, "shipped");
    }
}
