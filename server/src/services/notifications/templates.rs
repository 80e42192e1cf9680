//! Templates: the built-ins, checking a user-defined one on save, and rendering.
//!
//! The engine is minijinja (Jinja2 syntax, no code generation, line numbers in
//! its errors) with strict undefined behaviour: a variable the caller did not
//! supply is an error, never an empty string or a raw `{{ name }}` in a
//! customer's inbox. HTML parts are auto-escaped; rendering is metered with
//! fuel so a user-defined template cannot loop for ever.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use shop_wire::notifications::{Channel, Rendered, Template};

/// SMS text is cut to this many characters, on a word boundary.
pub const SMS_LIMIT: usize = 160;
/// Instructions one render may execute; plenty for any notification.
const FUEL: u64 = 200_000;
const MAX_PART: usize = 64 * 1024;

/// A template that does not compile or does not render, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {message}")]
pub struct TemplateError {
    /// `subject`, `body` or `html`.
    pub part: &'static str,
    pub message: String,
    pub line: Option<usize>,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with("html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("money", money);
    env
}

/// `{{ 1999 | money("EUR") }}` -> `19.99 EUR`, `{{ 1999 | money("JPY") }}`
/// -> `1999 JPY`: minor units as a decimal amount, by the currency's own
/// decimals (two for a code this build does not know).
pub(crate) fn money(cents: i64, currency: Option<String>) -> String {
    let currency = currency.filter(|c| !c.is_empty());
    if let Some(known) = currency
        .as_deref()
        .and_then(|code| code.parse::<shop_wire::money::Currency>().ok())
    {
        return format!(
            "{} {}",
            shop_wire::money::format_amount(cents, known),
            known.code()
        );
    }
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let amount = format!("{sign}{}.{:02}", abs / 100, abs % 100);
    match currency {
        Some(currency) => format!("{amount} {currency}"),
        None => amount,
    }
}

pub(crate) fn error(part: &'static str, err: &minijinja::Error) -> TemplateError {
    let mut message = err.kind().to_string();
    if let Some(detail) = err.detail() {
        message = format!("{message}: {detail}");
    }
    if let Some(line) = err.line() {
        message = format!("{message} (line {line})");
    }
    TemplateError {
        part,
        message,
        line: err.line(),
    }
}

fn parts(template: &Template) -> [(&'static str, Option<&str>); 3] {
    [
        ("subject", template.subject.as_deref()),
        ("body", Some(template.body.as_str())),
        ("html", template.html.as_deref()),
    ]
}

/// Checks that every part of a template compiles, and that it has the parts its channel needs.
pub fn check(template: &Template) -> Result<(), TemplateError> {
    let shape = |part, message: &str| {
        Err(TemplateError {
            part,
            message: message.to_owned(),
            line: None,
        })
    };
    match template.channel {
        Channel::Email if template.subject.as_deref().is_none_or(str::is_empty) => {
            return shape("subject", "an email template needs a subject");
        }
        Channel::Push if template.subject.as_deref().is_none_or(str::is_empty) => {
            return shape("subject", "a push template needs a title (`subject`)");
        }
        Channel::Sms if template.subject.is_some() => {
            return shape("subject", "an SMS has no subject");
        }
        Channel::Sms | Channel::Push if template.html.is_some() => {
            return shape("html", "only email templates have an HTML part");
        }
        _ => {}
    }
    if template.body.trim().is_empty() {
        return shape("body", "must not be empty");
    }
    let env = environment();
    for (part, source) in parts(template) {
        let Some(source) = source else { continue };
        if source.len() > MAX_PART {
            return shape(part, "is longer than 64 KiB");
        }
        env.template_from_named_str(part, source)
            .map_err(|err| error(part, &err))?;
    }
    Ok(())
}

/// The top-level variables a template's parts use (optional ones included).
pub fn variables(template: &Template) -> std::collections::BTreeSet<String> {
    let env = environment();
    parts(template)
        .into_iter()
        .filter_map(|(part, source)| env.template_from_named_str(part, source?).ok())
        .flat_map(|compiled| compiled.undeclared_variables(false))
        .collect()
}

/// Renders a template with `vars`; a missing variable is an error naming it.
pub fn render(template: &Template, vars: &serde_json::Value) -> Result<Rendered, TemplateError> {
    let env = environment();
    let context = Value::from(minijinja::value::Serde(vars));
    let render = |part: &'static str, source: &str| {
        env.template_from_named_str(part, source)
            .and_then(|t| t.render(&context))
            .map_err(|err| error(part, &err))
    };
    let subject = template
        .subject
        .as_deref()
        .map(|s| render("subject", s).map(|s| collapse_whitespace(&s)))
        .transpose()?;
    let body = render("body", &template.body)?;
    let html = template
        .html
        .as_deref()
        .map(|s| render("html", s))
        .transpose()?;
    let body = match template.channel {
        Channel::Sms => cut_on_word(&collapse_whitespace(&body), SMS_LIMIT),
        Channel::Email | Channel::Push => body.trim().to_owned(),
    };
    Ok(Rendered {
        subject,
        body,
        html,
    })
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `limit` characters: cut at the last space that leaves room for an
/// ellipsis, or mid-word only when a single word is longer than the limit.
pub fn cut_on_word(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let keep: String = text.chars().take(limit - 1).collect();
    let cut = match keep.rfind(' ') {
        Some(space) if space > 0 => keep[..space].trim_end(),
        _ => keep.as_str(),
    };
    format!("{cut}…")
}

fn builtin_template(
    name: &str,
    channel: Channel,
    subject: Option<&str>,
    body: &str,
    html: Option<&str>,
) -> Template {
    Template {
        name: name.to_owned(),
        channel,
        subject: subject.map(str::to_owned),
        body: body.to_owned(),
        html: html.map(str::to_owned),
        builtin: true,
        updated_at: None,
    }
}

/// Every built-in template, for each channel where it makes sense.
pub fn builtins() -> Vec<Template> {
    use Channel::{Email, Push, Sms};
    let t = builtin_template;
    vec![
        t(
            "welcome",
            Email,
            // Subjects and titles never carry the name: anyone registers any
            // name, and a subject is where a phishing line would be read.
            Some("Welcome to the shop"),
            "Hi {{ name }},\n\nyour account is ready. Happy shopping!{% if token is defined %}\n\nTo confirm that this address is yours, use this code within 7 days:\n{{ token }}\n(shop user verify CODE). Until then, orders placed for this address without signing in stay out of your account.{% endif %}\n\nThe shop team",
            Some(
                "<p>Hi {{ name }},</p><p>your account is ready. Happy shopping!</p>{% if token is defined %}<p>To confirm that this address is yours, use this code within 7 days:</p><p><code>{{ token }}</code></p><p>Until then, orders placed for this address without signing in stay out of your account.</p>{% endif %}<p>The shop team</p>",
            ),
        ),
        t(
            "welcome",
            Sms,
            None,
            "Welcome to the shop, {{ name }}! Your account is ready.",
            None,
        ),
        t(
            "welcome",
            Push,
            Some("Welcome"),
            "Your account is ready. Happy shopping!",
            None,
        ),
        t(
            "order_confirmation",
            Email,
            Some("Order {{ number }} confirmed"),
            "Thank you for your order {{ number }}.{% if total_cents is defined %}\nTotal: {{ total_cents | money(currency | default('')) }}{% endif %}\n\nWe will let you know when it ships.",
            Some(
                "<p>Thank you for your order <b>{{ number }}</b>.</p>{% if total_cents is defined %}<p>Total: {{ total_cents | money(currency | default('')) }}</p>{% endif %}<p>We will let you know when it ships.</p>",
            ),
        ),
        t(
            "order_confirmation",
            Sms,
            None,
            "Order {{ number }} confirmed{% if total_cents is defined %}, total {{ total_cents | money(currency | default('')) }}{% endif %}. Thank you!",
            None,
        ),
        t(
            "order_confirmation",
            Push,
            Some("Order {{ number }} confirmed"),
            "Thank you! We will tell you when it ships.",
            None,
        ),
        t(
            "order_shipped",
            Email,
            Some("Order {{ number }} has shipped"),
            "{% set shipment = fulfillments | last if fulfillments is defined and fulfillments else none %}{% if event_type is defined and event_type == 'order.partially_shipped' %}Part of your order {{ number }} is on its way; the rest follows.{% else %}Your order {{ number }} is on its way.{% endif %}{% if shipment %}{% for item in shipment['items'] %}\n- {{ item.quantity }} x {{ item.sku }}{% endfor %}{% if shipment.tracking_number %}\nTracking: {{ shipment.tracking_number }}{% if shipment.carrier %} ({{ shipment.carrier }}){% endif %}{% endif %}{% if shipment.tracking_url %}\nTrack it: {{ shipment.tracking_url }}{% endif %}{% elif tracking_number is defined and tracking_number %}\nTracking: {{ tracking_number }}{% if carrier is defined %} ({{ carrier }}){% endif %}{% endif %}",
            Some(
                "{% set shipment = fulfillments | last if fulfillments is defined and fulfillments else none %}{% if event_type is defined and event_type == 'order.partially_shipped' %}<p>Part of your order <b>{{ number }}</b> is on its way; the rest follows.</p>{% else %}<p>Your order <b>{{ number }}</b> is on its way.</p>{% endif %}{% if shipment %}<ul>{% for item in shipment['items'] %}<li>{{ item.quantity }} x {{ item.sku }}</li>{% endfor %}</ul>{% if shipment.tracking_number %}<p>Tracking: {{ shipment.tracking_number }}{% if shipment.carrier %} ({{ shipment.carrier }}){% endif %}</p>{% endif %}{% if shipment.tracking_url %}<p><a href=\"{{ shipment.tracking_url }}\">Track your parcel</a></p>{% endif %}{% elif tracking_number is defined and tracking_number %}<p>Tracking: {{ tracking_number }}</p>{% endif %}",
            ),
        ),
        t(
            "order_shipped",
            Sms,
            None,
            "Order {{ number }} has shipped.{% set shipment = fulfillments | last if fulfillments is defined and fulfillments else none %}{% if shipment and shipment.tracking_url %} Track it: {{ shipment.tracking_url }}{% elif shipment and shipment.tracking_number %} Tracking: {{ shipment.tracking_number }}{% elif tracking_number is defined and tracking_number %} Tracking: {{ tracking_number }}{% endif %}",
            None,
        ),
        t(
            "order_shipped",
            Push,
            Some("Order {{ number }} shipped"),
            "Your order is on its way.",
            None,
        ),
        t(
            "order_delivered",
            Email,
            Some("Order {{ number }} was delivered"),
            "Your order {{ number }} was delivered. We hope you enjoy it!\n\nIf something is not right, reply to this email.",
            Some(
                "<p>Your order <b>{{ number }}</b> was delivered. We hope you enjoy it!</p><p>If something is not right, reply to this email.</p>",
            ),
        ),
        t(
            "order_delivered",
            Sms,
            None,
            "Order {{ number }} was delivered. Enjoy!",
            None,
        ),
        t(
            "order_delivered",
            Push,
            Some("Order {{ number }} delivered"),
            "Your order was delivered. Enjoy!",
            None,
        ),
        t(
            "return_requested",
            Email,
            Some("Return {{ id }} of order {{ order_number }} requested"),
            "We have your return request {{ id }} for order {{ order_number }}:{% for item in items %}\n- {{ item.quantity }} x {{ item.sku }} ({{ item.reason }}){% endfor %}\n\nWe will tell you once we have looked at it.",
            Some(
                "<p>We have your return request <b>{{ id }}</b> for order {{ order_number }}:</p><ul>{% for item in items %}<li>{{ item.quantity }} x {{ item.sku }} ({{ item.reason }})</li>{% endfor %}</ul><p>We will tell you once we have looked at it.</p>",
            ),
        ),
        t(
            "return_approved",
            Email,
            Some("Return {{ id }} approved"),
            "Your return {{ id }} for order {{ order_number }} is approved: please send the items back. We refund {{ refund_cents | money(currency) }} once they arrive.",
            Some(
                "<p>Your return <b>{{ id }}</b> for order {{ order_number }} is approved: please send the items back.</p><p>We refund {{ refund_cents | money(currency) }} once they arrive.</p>",
            ),
        ),
        t(
            "return_rejected",
            Email,
            Some("Return {{ id }} not accepted"),
            "We cannot accept your return {{ id }} for order {{ order_number }}.{% if note %}\nReason: {{ note }}{% endif %}",
            Some(
                "<p>We cannot accept your return <b>{{ id }}</b> for order {{ order_number }}.</p>{% if note %}<p>Reason: {{ note }}</p>{% endif %}",
            ),
        ),
        t(
            "return_received",
            Email,
            Some("Return {{ id }} received"),
            "The items of your return {{ id }} for order {{ order_number }} arrived. Your refund of {{ refund_cents | money(currency) }} follows.",
            Some(
                "<p>The items of your return <b>{{ id }}</b> for order {{ order_number }} arrived.</p><p>Your refund of {{ refund_cents | money(currency) }} follows.</p>",
            ),
        ),
        t(
            "return_refunded",
            Email,
            Some("Return {{ id }} refunded"),
            "We have refunded {{ refund_cents | money(currency) }} for your return {{ id }} of order {{ order_number }}. It can take a few days to reach your account.",
            Some(
                "<p>We have refunded <b>{{ refund_cents | money(currency) }}</b> for your return {{ id }} of order {{ order_number }}.</p><p>It can take a few days to reach your account.</p>",
            ),
        ),
        t(
            "order_cancelled",
            Email,
            Some("Order {{ number }} cancelled"),
            "Your order {{ number }} has been cancelled.{% if reason is defined %}\nReason: {{ reason }}{% endif %}\nAny payment taken will be refunded.",
            Some(
                "<p>Your order <b>{{ number }}</b> has been cancelled.</p>{% if reason is defined %}<p>Reason: {{ reason }}</p>{% endif %}<p>Any payment taken will be refunded.</p>",
            ),
        ),
        t(
            "order_cancelled",
            Sms,
            None,
            "Order {{ number }} has been cancelled. Any payment taken will be refunded.",
            None,
        ),
        t(
            "order_cancelled",
            Push,
            Some("Order {{ number }} cancelled"),
            "Any payment taken will be refunded.",
            None,
        ),
        t(
            "refund_issued",
            Email,
            Some("Refund of {{ amount_cents | money(currency) }}"),
            "We have refunded {{ amount_cents | money(currency) }}{% if number is defined %} for order {{ number }}{% endif %}. It can take a few days to reach your account.",
            Some(
                "<p>We have refunded <b>{{ amount_cents | money(currency) }}</b>{% if number is defined %} for order {{ number }}{% endif %}.</p><p>It can take a few days to reach your account.</p>",
            ),
        ),
        t(
            "refund_issued",
            Sms,
            None,
            "We have refunded {{ amount_cents | money(currency) }}{% if number is defined %} for order {{ number }}{% endif %}.",
            None,
        ),
        t(
            "refund_issued",
            Push,
            Some("Refund issued"),
            "{{ amount_cents | money(currency) }} is on its way back to you.",
            None,
        ),
        t(
            "password_reset",
            Email,
            Some("Reset your password"),
            "{% if name is defined %}Hi {{ name }},\n\n{% endif %}someone asked to reset the password of your account. If it was you, {% if reset_url is defined %}open:\n{{ reset_url }}{% else %}use this code within 30 minutes, once:\n{{ token }}\n(shop user reset-password --token CODE){% endif %}\nIf not, ignore this message.",
            Some(
                "{% if name is defined %}<p>Hi {{ name }},</p>{% endif %}<p>Someone asked to reset the password of your account. If it was you, {% if reset_url is defined %}<a href=\"{{ reset_url }}\">reset it here</a>{% else %}use this code within 30 minutes, once: <code>{{ token }}</code>{% endif %}.</p><p>If not, ignore this message.</p>",
            ),
        ),
        t(
            "password_reset",
            Sms,
            None,
            "Reset your shop password: {% if reset_url is defined %}{{ reset_url }}{% else %}code {{ token }}{% endif %} (ignore this if it was not you)",
            None,
        ),
        t(
            "low_stock_alert",
            Email,
            Some("Low stock: {{ sku }}"),
            "{{ sku }}{% if name is defined %} ({{ name }}){% endif %} is running low: {{ available }} available{% if threshold is defined %}, threshold {{ threshold }}{% endif %}.",
            Some(
                "<p><b>{{ sku }}</b>{% if name is defined %} ({{ name }}){% endif %} is running low: {{ available }} available{% if threshold is defined %}, threshold {{ threshold }}{% endif %}.</p>",
            ),
        ),
        t(
            "low_stock_alert",
            Sms,
            None,
            "Low stock: {{ sku }} has {{ available }} available.",
            None,
        ),
        t(
            "webhook_disabled",
            Email,
            Some("Webhook endpoint disabled: {{ url }}"),
            "The webhook endpoint {{ id }} ({{ url }}) was disabled: {{ reason }}.\n\nNo events are delivered to it until it is enabled again: shop webhook get {{ id }}, then PATCH /api/webhooks/{{ id }} with {\"status\":\"active\"}. Failed deliveries can be replayed with `shop webhook replay`.",
            Some(
                "<p>The webhook endpoint <b>{{ id }}</b> ({{ url }}) was disabled: {{ reason }}.</p><p>No events are delivered to it until it is enabled again.</p>",
            ),
        ),
        t(
            "low_stock_alert",
            Push,
            Some("Low stock: {{ sku }}"),
            "{{ available }} available.",
            None,
        ),
    ]
}

pub fn builtin(name: &str, channel: Channel) -> Option<Template> {
    builtins()
        .into_iter()
        .find(|t| t.name == name && t.channel == channel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_builtin_compiles() {
        for template in builtins() {
            check(&template)
                .unwrap_or_else(|err| panic!("{} {}: {err}", template.name, template.channel));
        }
    }

    #[test]
    fn renders_with_variables_and_escapes_html_only() {
        let welcome = builtin("welcome", Channel::Email).expect("built-in");
        let rendered = render(&welcome, &json!({"name": "Ada <3"})).expect("render");
        assert_eq!(rendered.subject.as_deref(), Some("Welcome to the shop"));
        assert!(rendered.body.starts_with("Hi Ada <3,"));
        assert!(rendered.html.expect("html").contains("Ada &lt;3"));

        let order = builtin("order_confirmation", Channel::Sms).expect("built-in");
        let rendered = render(
            &order,
            &json!({"number": "1001", "total_cents": 1999, "currency": "EUR"}),
        )
        .expect("render");
        assert_eq!(
            rendered.body,
            "Order 1001 confirmed, total 19.99 EUR. Thank you!"
        );
        let rendered = render(&order, &json!({"number": "1001"})).expect("optional total");
        assert_eq!(rendered.body, "Order 1001 confirmed. Thank you!");
    }

    #[test]
    fn the_shipping_email_names_the_units_and_links_the_newest_shipment() {
        let shipped = |event_type: &str| {
            json!({
                "number": "ORD-001001",
                "event_type": event_type,
                "tracking_number": "00340434",
                "fulfillments": [
                    {"items": [{"sku": "A", "quantity": 1}], "carrier": "ups",
                     "tracking_number": "1Z9", "tracking_url": "https://ups.example/1Z9"},
                    {"items": [{"sku": "B", "quantity": 2}], "carrier": "dhl",
                     "tracking_number": "00340434", "tracking_url": "https://dhl.example/?a=1&b=2"}
                ]
            })
        };
        let email = builtin("order_shipped", Channel::Email).expect("built-in");
        let rendered = render(&email, &shipped("order.shipped")).expect("render");
        assert!(
            rendered
                .body
                .starts_with("Your order ORD-001001 is on its way.")
        );
        assert!(rendered.body.contains("- 2 x B"), "{}", rendered.body);
        assert!(!rendered.body.contains("1 x A"), "only the newest shipment");
        assert!(rendered.body.contains("Tracking: 00340434 (dhl)"));
        assert!(
            rendered
                .body
                .contains("Track it: https://dhl.example/?a=1&b=2")
        );
        let html = rendered.html.expect("html");
        // Escaped for an attribute (`/` as `&#x2f;`), which a browser reads back as the URL.
        assert!(
            html.contains("href=\"https:&#x2f;&#x2f;dhl.example&#x2f;?a=1&amp;b=2\""),
            "{html}"
        );
        let partial = render(&email, &shipped("order.partially_shipped")).expect("render");
        assert!(partial.body.starts_with("Part of your order ORD-001001"));
        let sms = builtin("order_shipped", Channel::Sms).expect("built-in");
        assert_eq!(
            render(&sms, &shipped("order.shipped"))
                .expect("render")
                .body,
            "Order ORD-001001 has shipped. Track it: https://dhl.example/?a=1&b=2"
        );
        // Sent by hand with only a tracking number, as before fulfilments.
        let by_hand =
            render(&email, &json!({"number": "1001", "tracking_number": "ZX9"})).expect("render");
        assert!(by_hand.body.ends_with("Tracking: ZX9"), "{}", by_hand.body);
        let delivered = builtin("order_delivered", Channel::Email).expect("built-in");
        let rendered = render(&delivered, &json!({"number": "ORD-001001"})).expect("render");
        assert_eq!(
            rendered.subject.as_deref(),
            Some("Order ORD-001001 was delivered")
        );
    }

    #[test]
    fn a_missing_variable_is_an_error_not_a_blank() {
        let welcome = builtin("welcome", Channel::Email).expect("built-in");
        let err = render(&welcome, &json!({})).unwrap_err();
        assert_eq!(err.part, "body");
        assert!(err.message.contains("undefined"), "{err}");
        let template = Template {
            body: "Hello {{ user.name }}".into(),
            ..builtin("welcome", Channel::Sms).expect("built-in")
        };
        let err = render(&template, &json!({"user": {}})).unwrap_err();
        assert!(err.message.contains("undefined"), "{err}");
    }

    #[test]
    fn a_syntax_error_names_the_part_and_line() {
        let template = Template {
            subject: Some("fine".into()),
            body: "line one\n{% if x %}\nunclosed".into(),
            ..builtin("welcome", Channel::Email).expect("built-in")
        };
        let err = check(&template).unwrap_err();
        assert_eq!(err.part, "body");
        assert!(err.line.is_some(), "{err:?}");
        assert!(err.to_string().contains("line"), "{err}");
        let sms_with_subject = Template {
            subject: Some("x".into()),
            ..builtin("welcome", Channel::Sms).expect("built-in")
        };
        assert_eq!(check(&sms_with_subject).unwrap_err().part, "subject");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let template = Template {
            body: "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}"
                .into(),
            ..builtin("welcome", Channel::Push).expect("built-in")
        };
        check(&template).expect("compiles");
        assert!(render(&template, &json!({"name": "x"})).is_err());
    }

    #[test]
    fn sms_is_cut_on_a_word_boundary_at_160_characters() {
        let short = "a short text";
        assert_eq!(cut_on_word(short, SMS_LIMIT), short);
        let exact = "x".repeat(160);
        assert_eq!(cut_on_word(&exact, SMS_LIMIT), exact);
        let words = "lorem ipsum dolor ".repeat(20);
        let cut = cut_on_word(words.trim(), SMS_LIMIT);
        assert!(cut.chars().count() <= SMS_LIMIT, "{}", cut.chars().count());
        assert!(cut.ends_with('…'));
        let without = cut.trim_end_matches('…');
        assert!(
            words.starts_with(without) && words[without.len()..].starts_with(' '),
            "{cut}"
        );
        // Multi-byte characters count as one each and are never split.
        let umlauts = "äöü ".repeat(60);
        let cut = cut_on_word(umlauts.trim(), SMS_LIMIT);
        assert!(cut.chars().count() <= SMS_LIMIT);
        // One giant word is cut mid-word rather than sent whole.
        assert_eq!(
            cut_on_word(&"y".repeat(300), SMS_LIMIT).chars().count(),
            SMS_LIMIT
        );

        let template = Template {
            body: "{{ text }}\n\n   with   template   whitespace".into(),
            ..builtin("welcome", Channel::Sms).expect("built-in")
        };
        let rendered = render(&template, &json!({"text": "word ".repeat(50)})).expect("render");
        assert!(rendered.body.chars().count() <= SMS_LIMIT);
        assert!(!rendered.body.contains("  "));
    }
}
