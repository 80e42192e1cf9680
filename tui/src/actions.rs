//! What the dashboard can do to the shop, k9s-style: a selected order is
//! shipped, cancelled or refunded, a selected SKU's stock adjusted, a
//! selected notification sent again. Each
//! command is built from a small form, spelled out in a confirmation
//! ("exactly what will happen"), and only then sent by the feed task; the
//! change itself reaches the screen through the event stream like any other.
//!
//! Pure except [`execute`]: forms, validation and descriptions are plain
//! functions the tests call.

use shop_cli::CliError;
use shop_cli::client::ApiClient;
use shop_wire::inventory::{AdjustStock, Movement, Stock};
use shop_wire::money::{Currency, format_amount, parse_amount};
use shop_wire::notifications::{Channel, Notification, NotificationStatus};
use shop_wire::orders::{Order, OrderStatus, ShipOrder, Transition};
use shop_wire::payments::{Refund, RefundRequest};
use shop_wire::search::SearchResponse;
use shop_wire::{NotificationId, OrderId, Page};

use crate::event::Update;

/// The order a command is about, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTarget {
    pub id: OrderId,
    pub number: String,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub currency: Currency,
    pub customer: String,
}

impl OrderTarget {
    fn who(&self) -> String {
        let customer = if self.customer.is_empty() {
            String::new()
        } else {
            format!(", {}", self.customer)
        };
        format!(
            "{} ({}, {}{customer})",
            self.number,
            self.status,
            money(self.total_cents, self.currency),
        )
    }
}

/// The SKU a command is about.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuTarget {
    pub sku: String,
    pub on_hand: i64,
    pub available: i64,
}

/// The notification a command is about.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationTarget {
    pub id: NotificationId,
    pub status: NotificationStatus,
    pub channel: Channel,
    pub template: String,
    pub recipient: String,
    pub attempts: u32,
    pub error: Option<String>,
}

/// A change to the shop, ready to send once confirmed.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ship {
        order: OrderTarget,
        tracking: Option<String>,
    },
    Cancel {
        order: OrderTarget,
    },
    /// `amount_cents: None` refunds all that is left.
    Refund {
        order: OrderTarget,
        amount_cents: Option<i64>,
        reason: Option<String>,
    },
    Adjust {
        stock: SkuTarget,
        delta: i64,
        reason: String,
    },
    Resend {
        notification: NotificationTarget,
    },
}

/// Something to look at, fetched on demand; allowed when read-only.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Ledger {
        sku: String,
    },
    Search {
        query: String,
    },
    /// A notification with its rendered text and attempts.
    Notification {
        id: NotificationId,
    },
}

/// What the feed task is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Run(Command),
    Fetch(Lookup),
}

impl Command {
    /// Exactly what will happen, in the words the confirmation shows: the
    /// request, and what the server will do because of it.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Command::Ship { order, tracking } => vec![
                format!("Ship {}", order.who()),
                match tracking {
                    Some(tracking) => format!("with tracking number {tracking}."),
                    None => "without a tracking number.".to_owned(),
                },
                "The order becomes shipped and the customer gets the shipping email.".to_owned(),
                format!("POST /api/orders/{}/ship", order.number),
            ],
            Command::Cancel { order } => vec![
                format!("Cancel {}.", order.who()),
                if order.status == OrderStatus::Paid {
                    "It is paid: what is left of its payment is refunded and its stock restocked."
                        .to_owned()
                } else {
                    "Its reserved stock goes back on sale.".to_owned()
                },
                "The customer gets the cancellation email.".to_owned(),
                format!("POST /api/orders/{}/cancel", order.number),
            ],
            Command::Refund {
                order,
                amount_cents,
                reason,
            } => vec![
                format!("Refund {}", order.who()),
                match amount_cents {
                    Some(cents) => format!(
                        "{} back to the payment method.",
                        money(*cents, order.currency)
                    ),
                    None => {
                        "all that is left of its payment, back to the payment method.".to_owned()
                    }
                },
                match reason {
                    Some(reason) => format!("Reason: {reason}. The order keeps its status."),
                    None => "No reason given. The order keeps its status.".to_owned(),
                },
                format!("POST /api/orders/{}/refund", order.number),
            ],
            Command::Adjust {
                stock,
                delta,
                reason,
            } => vec![
                format!(
                    "Adjust {}: on hand {} → {} ({delta:+}), available {} → {}.",
                    stock.sku,
                    stock.on_hand,
                    stock.on_hand + delta,
                    stock.available,
                    stock.available + delta
                ),
                format!("Reason in the ledger: {reason}."),
                format!("POST /api/inventory/{}/adjustments", stock.sku),
            ],
            Command::Resend { notification: n } => {
                let attempts = match n.attempts {
                    1 => "1 attempt".to_owned(),
                    more => format!("{more} attempts"),
                };
                let error = n
                    .error
                    .as_ref()
                    .map_or_else(String::new, |error| format!(" ({error})"));
                vec![
                    format!(
                        "Send {} again: {} {} to {}.",
                        n.id, n.channel, n.template, n.recipient
                    ),
                    format!("Status: {} after {attempts}{error}.", n.status),
                    if n.status == NotificationStatus::Sent {
                        "It was sent already: a copy is queued as a new notification.".to_owned()
                    } else {
                        "It is queued again as it is, with the same id; its attempts start over."
                            .to_owned()
                    },
                    format!("POST /api/notifications/{}/resend", n.id),
                ]
            }
        }
    }
}

/// A form: the fields a command needs, typed one at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub kind: FormKind,
    pub values: Vec<String>,
    /// The field being typed.
    pub at: usize,
    /// Why the last Enter was refused.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FormKind {
    Ship(OrderTarget),
    Refund(OrderTarget),
    Adjust(SkuTarget),
}

impl Form {
    pub fn new(kind: FormKind) -> Form {
        let fields = kind.labels().len();
        Form {
            kind,
            values: vec![String::new(); fields],
            at: 0,
            error: None,
        }
    }

    pub fn title(&self) -> String {
        match &self.kind {
            FormKind::Ship(order) => format!("Ship {}", order.number),
            FormKind::Refund(order) => format!("Refund {}", order.number),
            FormKind::Adjust(stock) => format!("Adjust stock of {}", stock.sku),
        }
    }

    pub fn labels(&self) -> &'static [&'static str] {
        self.kind.labels()
    }

    /// The command the fields make, or why they do not make one.
    pub fn build(&self) -> Result<Command, String> {
        let value = |at: usize| {
            let value = self.values[at].trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        match &self.kind {
            FormKind::Ship(order) => Ok(Command::Ship {
                order: order.clone(),
                tracking: value(0),
            }),
            FormKind::Refund(order) => {
                let amount_cents = match value(0) {
                    None => None,
                    Some(amount) => {
                        let cents = parse_amount(&amount, order.currency)?;
                        if cents <= 0 {
                            return Err("the amount must be more than 0".to_owned());
                        }
                        Some(cents)
                    }
                };
                Ok(Command::Refund {
                    order: order.clone(),
                    amount_cents,
                    reason: value(1),
                })
            }
            FormKind::Adjust(stock) => {
                let delta: i64 = value(0)
                    .ok_or("the change is needed, e.g. +5 or -2")?
                    .trim_start_matches('+')
                    .parse()
                    .map_err(|_| "the change is a whole number, e.g. +5 or -2".to_owned())?;
                if delta == 0 {
                    return Err("a change of 0 changes nothing".to_owned());
                }
                if stock.available + delta < 0 {
                    return Err(format!(
                        "only {} available: the change cannot take more",
                        stock.available
                    ));
                }
                let reason = value(1).ok_or("a reason is needed for the ledger")?;
                Ok(Command::Adjust {
                    stock: stock.clone(),
                    delta,
                    reason,
                })
            }
        }
    }
}

impl FormKind {
    fn labels(&self) -> &'static [&'static str] {
        match self {
            FormKind::Ship(_) => &["tracking number (optional)"],
            FormKind::Refund(_) => &["amount (empty: all that is left)", "reason (optional)"],
            FormKind::Adjust(_) => &["change (+5, -2)", "reason"],
        }
    }
}

/// Sends a confirmed command or a lookup; the answer as an update for the screen.
pub async fn execute(client: &ApiClient, request: Request) -> Update {
    match request {
        Request::Run(command) => {
            let done = run(client, &command).await;
            Update::Outcome(done.map_err(|err| err.to_string()))
        }
        Request::Fetch(Lookup::Ledger { sku }) => {
            let movements = client
                .get(&format!("/api/inventory/{sku}/movements"))
                .query("limit", "100")
                .send::<Page<Movement>>()
                .await;
            match movements {
                Ok(page) => Update::Ledger {
                    sku,
                    movements: page.items,
                },
                Err(err) => Update::Outcome(Err(err.to_string())),
            }
        }
        Request::Fetch(Lookup::Notification { id }) => {
            let found = client
                .get(&format!("/api/notifications/{id}"))
                .send::<Notification>()
                .await;
            match found {
                Ok(notification) => Update::Notification(Box::new(notification)),
                Err(err) => Update::Outcome(Err(err.to_string())),
            }
        }
        Request::Fetch(Lookup::Search { query }) => {
            let found = client
                .get("/api/search")
                .query("q", query.clone())
                .query("limit", "50")
                .send::<SearchResponse>()
                .await;
            match found {
                Ok(results) => Update::SearchResults(results),
                Err(err) => Update::Outcome(Err(err.to_string())),
            }
        }
    }
}

async fn run(client: &ApiClient, command: &Command) -> Result<String, CliError> {
    match command {
        Command::Ship { order, tracking } => {
            let body = ShipOrder {
                tracking_number: tracking.clone(),
                note: Some("shipped from the dashboard".to_owned()),
                ..ShipOrder::default()
            };
            let shipped: Order = client
                .post(&format!("/api/orders/{}/ship", order.number))
                .json(&body)?
                .send()
                .await?;
            Ok(format!("{} is {}", shipped.number, shipped.status))
        }
        Command::Cancel { order } => {
            let body = Transition {
                note: Some("cancelled from the dashboard".to_owned()),
            };
            let cancelled: Order = client
                .post(&format!("/api/orders/{}/cancel", order.number))
                .json(&body)?
                .send()
                .await?;
            Ok(format!("{} is {}", cancelled.number, cancelled.status))
        }
        Command::Refund {
            order,
            amount_cents,
            reason,
        } => {
            let body = RefundRequest {
                amount_cents: *amount_cents,
                reason: reason.clone(),
            };
            let refund: Refund = client
                .post(&format!("/api/orders/{}/refund", order.number))
                .json(&body)?
                .send()
                .await?;
            Ok(format!(
                "refunded {} of {} ({})",
                money(refund.amount_cents, order.currency),
                order.number,
                refund.status
            ))
        }
        Command::Adjust {
            stock,
            delta,
            reason,
        } => {
            let body = AdjustStock {
                delta: *delta,
                reason: reason.clone(),
            };
            let after: Stock = client
                .post(&format!("/api/inventory/{}/adjustments", stock.sku))
                .json(&body)?
                .send()
                .await?;
            Ok(format!(
                "{} on hand {} → {} ({delta:+})",
                after.sku,
                after.on_hand - delta,
                after.on_hand
            ))
        }
        Command::Resend { notification } => {
            let queued: Notification = client
                .post(&format!("/api/notifications/{}/resend", notification.id))
                .send()
                .await?;
            Ok(if queued.id == notification.id {
                format!("{} is {} again", queued.id, queued.status)
            } else {
                format!(
                    "{} is copied as {}, {}",
                    notification.id, queued.id, queued.status
                )
            })
        }
    }
}

fn money(minor: i64, currency: Currency) -> String {
    format!("{} {}", format_amount(minor, currency), currency.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: OrderStatus) -> OrderTarget {
        OrderTarget {
            id: OrderId::generate(),
            number: "ORD-001042".into(),
            status,
            total_cents: 2500,
            currency: Currency::USD,
            customer: "ann@example.com".into(),
        }
    }

    fn mug() -> SkuTarget {
        SkuTarget {
            sku: "MUG-01".into(),
            on_hand: 25,
            available: 20,
        }
    }

    #[test]
    fn an_adjustment_needs_a_whole_change_and_a_reason() {
        let mut form = Form::new(FormKind::Adjust(mug()));
        assert!(form.build().unwrap_err().contains("needed"));
        form.values[0] = "two".into();
        assert!(form.build().unwrap_err().contains("whole number"));
        form.values[0] = "-21".into();
        assert!(form.build().unwrap_err().contains("only 20 available"));
        form.values[0] = "+5".into();
        assert!(form.build().unwrap_err().contains("reason"));
        form.values[1] = " delivery ".into();
        let command = form.build().expect("a command");
        assert_eq!(
            command,
            Command::Adjust {
                stock: mug(),
                delta: 5,
                reason: "delivery".into()
            }
        );
        assert_eq!(
            command.describe()[0],
            "Adjust MUG-01: on hand 25 → 30 (+5), available 20 → 25."
        );
    }

    #[test]
    fn a_refund_amount_is_in_the_orders_currency() {
        let mut form = Form::new(FormKind::Refund(order(OrderStatus::Paid)));
        let all = form.build().expect("all that is left");
        assert!(all.describe()[1].starts_with("all that is left"));
        form.values[0] = "12.5".into();
        form.values[1] = "damaged".into();
        let command = form.build().expect("a command");
        let Command::Refund { amount_cents, .. } = &command else {
            panic!("{command:?}");
        };
        assert_eq!(*amount_cents, Some(1250));
        assert!(command.describe()[1].contains("12.50 USD"));
        form.values[0] = "0".into();
        assert!(form.build().is_err());
        form.values[0] = "1.234".into();
        assert!(form.build().is_err(), "USD has two decimals");
    }

    #[test]
    fn resending_says_whether_it_is_the_same_notification_or_a_copy() {
        let mut target = NotificationTarget {
            id: NotificationId::generate(),
            status: NotificationStatus::Failed,
            channel: Channel::Sms,
            template: "order_shipped".into(),
            recipient: "+4915112345678".into(),
            attempts: 1,
            error: Some("timeout".into()),
        };
        let failed = Command::Resend {
            notification: target.clone(),
        }
        .describe();
        assert_eq!(
            failed[0],
            format!(
                "Send {} again: sms order_shipped to +4915112345678.",
                target.id
            )
        );
        assert_eq!(failed[1], "Status: failed after 1 attempt (timeout).");
        assert!(failed[2].contains("same id"));
        assert_eq!(
            failed[3],
            format!("POST /api/notifications/{}/resend", target.id)
        );
        target.status = NotificationStatus::Sent;
        target.error = None;
        let sent = Command::Resend {
            notification: target,
        }
        .describe();
        assert_eq!(sent[1], "Status: sent after 1 attempt.");
        assert!(sent[2].contains("a copy is queued as a new notification"));
    }

    #[test]
    fn cancelling_says_what_happens_to_the_money() {
        let paid = Command::Cancel {
            order: order(OrderStatus::Paid),
        };
        assert!(paid.describe()[1].contains("refunded"));
        let pending = Command::Cancel {
            order: order(OrderStatus::Pending),
        };
        assert!(pending.describe()[1].contains("stock goes back"));
        assert_eq!(
            pending.describe()[0],
            "Cancel ORD-001042 (pending, 25.00 USD, ann@example.com)."
        );
    }
}
