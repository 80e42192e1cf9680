//! Email over SMTP with lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Outgoing, SendError};

/// Turns the documented URL forms into lettre's: plain `smtp://` means
/// STARTTLS required (credentials never cross in clear by accident);
/// `?tls=none` means plain, for a local relay; `?tls=opportunistic` and
/// `smtps://` pass through. The URL is then checked by lettre itself.
pub fn check_url(raw: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(raw).map_err(|err| format!("not a URL: {err}"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err("the scheme must be smtp:// or smtps://".to_owned());
    }
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "tls")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !others.is_empty() {
        return Err("the only query parameter is tls=required|opportunistic|none".to_owned());
    }
    match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => {
            url.set_query(Some("tls=required"));
        }
        ("smtp", Some("none")) => url.set_query(None),
        ("smtp", Some("required" | "opportunistic")) | ("smtps", None) => {}
        (_, Some(other)) => {
            return Err(format!(
                "tls={other} is not one of required, opportunistic, none"
            ));
        }
        _ => return Err("unsupported URL".to_owned()),
    }
    let url = url.to_string();
    AsyncSmtpTransport::<Tokio1Executor>::from_url(&url).map_err(|err| err.to_string())?;
    Ok(url)
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Self, String> {
        let url = check_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|err| err.to_string())?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse()
            .map_err(|err| format!("the From address: {err}"))?;
        Ok(SmtpSender { transport, from })
    }

    pub async fn send(&self, message: &Outgoing<'_>) -> Result<(), SendError> {
        let to: Mailbox = message
            .recipient
            .parse()
            .map_err(|err| SendError::Permanent(format!("bad recipient address: {err}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.rendered.subject.clone().unwrap_or_default())
            // The notification id is the Message-ID: a redelivery after a crash
            // carries the same one, so receivers can drop the duplicate.
            .message_id(Some(format!("<{}@shop.notifications>", message.id)));
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(message.rendered.body.clone());
        let email = match &message.rendered.html {
            Some(html) => builder.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.clone()),
                ),
            ),
            None => builder.singlepart(text),
        }
        .map_err(|err| SendError::Permanent(format!("cannot build the message: {err}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() => Err(SendError::Permanent(format!("smtp: {err}"))),
            Err(err) => Err(SendError::Transient(format!("smtp: {err}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            check_url("smtp://u:p@mail.example.com:587").expect("starttls"),
            "smtp://u:p@mail.example.com:587?tls=required"
        );
        assert_eq!(
            check_url("smtp://127.0.0.1:2525?tls=none").expect("plain"),
            "smtp://127.0.0.1:2525"
        );
        assert!(check_url("smtps://mail.example.com").is_ok());
        assert!(check_url("smtp://h?tls=opportunistic").is_ok());
        assert!(check_url("http://mail.example.com").is_err());
        assert!(check_url("smtp://h?tls=maybe").is_err());
        assert!(check_url("not a url").is_err());
    }
}
