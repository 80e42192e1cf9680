//! Acting from the dashboard: the action keys on a selected row, the forms
//! and confirmations they open, the `:` command line, and the views shown
//! on top of the grid (an order's details, a SKU's ledger, search results).
//!
//! The state lives in [`App::overlay`]; the loop hands [`App::requests`] to
//! the feed task, whose answer comes back as an [`crate::event::Update`].

use shop_wire::inventory::Movement;
use shop_wire::orders::OrderStatus;
use shop_wire::search::SearchResponse;

use crate::actions::{Command, Form, FormKind, Lookup, OrderTarget, Request, SkuTarget};
use crate::app::{App, Area};
use crate::keymap::{Action, Verb};

/// What is on top of the grid.
#[derive(Debug, Clone)]
pub enum Overlay {
    Form(Form),
    /// The command, spelled out; `y` sends it.
    Confirm(Command),
    /// `:` and what was typed after it.
    CommandLine(String),
    /// An order's details, by id: drawn from live state, so they move on.
    Order(String),
    Ledger {
        sku: String,
        movements: Vec<Movement>,
    },
    Search(SearchResponse),
}

/// What `:` understands, for the help line and the refusal.
pub const COMMANDS: &str = ":orders  :stock  :stock low  :services  :search <words>  :q";

impl App {
    /// An action key on the selected row.
    pub(crate) fn verb(&mut self, verb: Verb) {
        let changes = !matches!(verb, Verb::Details);
        if changes && self.readonly {
            return self.refuse("read-only (--readonly): actions are off");
        }
        match (verb, self.focus) {
            (Verb::Details, Area::Orders) => match self.selected_order() {
                Some(order) => self.overlay = Some(Overlay::Order(order.id)),
                None => self.refuse("no order selected"),
            },
            (Verb::Details, Area::Stock) => match self.selected_sku() {
                Some(stock) => {
                    self.requests
                        .push(Request::Fetch(Lookup::Ledger { sku: stock.sku }));
                }
                None => self.refuse("no SKU selected"),
            },
            (Verb::Adjust, Area::Stock) => match self.selected_sku() {
                Some(stock) => {
                    self.overlay = Some(Overlay::Form(Form::new(FormKind::Adjust(stock))))
                }
                None => self.refuse("no SKU selected"),
            },
            (Verb::Ship | Verb::Cancel | Verb::Refund, Area::Orders) => {
                let Some(order) = self.selected_order() else {
                    return self.refuse("no order selected");
                };
                if let Some(why) = not_allowed(verb, &order) {
                    return self.refuse(&why);
                }
                self.overlay = Some(match verb {
                    Verb::Ship => Overlay::Form(Form::new(FormKind::Ship(order))),
                    Verb::Refund => Overlay::Form(Form::new(FormKind::Refund(order))),
                    _ => Overlay::Confirm(Command::Cancel { order }),
                });
            }
            (Verb::Adjust, _) => self.refuse("select a SKU in Stock first (Tab moves there)"),
            (_, _) => self.refuse("select an order in Orders first (Tab moves there)"),
        }
    }

    /// Keys while a form, confirmation, command line or view is open.
    pub(crate) fn overlay_key(&mut self, action: Action) {
        let Some(overlay) = self.overlay.take() else {
            return;
        };
        if action == Action::Dismiss {
            return;
        }
        self.overlay = match (overlay, action) {
            (Overlay::Form(mut form), Action::Type(c)) => {
                form.values[form.at].push(c);
                form.error = None;
                Some(Overlay::Form(form))
            }
            (Overlay::Form(mut form), Action::TypeBackspace) => {
                form.values[form.at].pop();
                Some(Overlay::Form(form))
            }
            (Overlay::Form(mut form), Action::NextField) => {
                form.at = (form.at + 1) % form.values.len();
                Some(Overlay::Form(form))
            }
            // Enter moves through the fields, and from the last one asks to confirm.
            (Overlay::Form(mut form), Action::Submit) if form.at + 1 < form.values.len() => {
                form.at += 1;
                Some(Overlay::Form(form))
            }
            (Overlay::Form(mut form), Action::Submit) => match form.build() {
                Ok(command) => Some(Overlay::Confirm(command)),
                Err(error) => {
                    form.error = Some(error);
                    Some(Overlay::Form(form))
                }
            },
            (Overlay::Confirm(command), Action::Confirm) => {
                self.requests.push(Request::Run(command));
                None
            }
            (Overlay::CommandLine(mut line), Action::Type(c)) => {
                line.push(c);
                Some(Overlay::CommandLine(line))
            }
            (Overlay::CommandLine(mut line), Action::TypeBackspace) => {
                line.pop();
                Some(Overlay::CommandLine(line))
            }
            (Overlay::CommandLine(line), Action::Submit) => {
                self.command_line(&line);
                // A command that opens a view has set one already.
                self.overlay.take()
            }
            (overlay, _) => Some(overlay),
        };
    }

    /// `:orders`, `:stock low`, `:search chair`...
    fn command_line(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(command) = words.next() else {
            return;
        };
        let rest: Vec<&str> = words.collect();
        let show = |app: &mut App, area: Area| {
            app.focus = area;
            app.zoomed = true;
        };
        match (command, rest.as_slice()) {
            ("orders" | "o", []) => show(self, Area::Orders),
            ("stock" | "inventory", []) => {
                self.stock_low_only = false;
                show(self, Area::Stock);
            }
            ("stock" | "inventory", ["low"]) => {
                self.stock_low_only = true;
                show(self, Area::Stock);
            }
            ("services" | "health", []) => show(self, Area::Health),
            ("search", []) => show(self, Area::Search),
            ("search", words) => self.requests.push(Request::Fetch(Lookup::Search {
                query: words.join(" "),
            })),
            ("q" | "quit", []) => self.should_quit = true,
            _ => self.refuse(&format!("unknown command :{line}; try {COMMANDS}")),
        }
    }

    fn refuse(&mut self, why: &str) {
        self.problem = Some((why.to_owned(), self.now));
    }

    /// The order of the selected feed line, with its current status.
    pub fn selected_order(&self) -> Option<OrderTarget> {
        let line = self.feed_rows().nth(self.selected(Area::Orders))?;
        let order = self.order(&line.order_id);
        Some(OrderTarget {
            id: line.order_id.clone(),
            number: line.number.clone(),
            status: order.map_or_else(|| line.status.clone(), |o| o.status.clone()),
            total_cents: order.and_then(|o| o.total_cents).or(line.total_cents),
            currency: line.currency.clone(),
            customer: line.customer.clone(),
        })
    }

    pub fn selected_sku(&self) -> Option<SkuTarget> {
        let stock = self.stock_rows().nth(self.selected(Area::Stock))?;
        Some(SkuTarget {
            sku: stock.sku.clone(),
            on_hand: stock.on_hand,
            available: stock.available,
        })
    }
}

/// Why the server would refuse this move of this order, said before asking
/// anything (the server checks again: the status may move meanwhile).
fn not_allowed(verb: Verb, order: &OrderTarget) -> Option<String> {
    let status: OrderStatus = order.status.parse().ok()?;
    let allowed = match verb {
        Verb::Ship => status.can_become(OrderStatus::Shipped),
        Verb::Cancel => status.can_become(OrderStatus::Cancelled),
        // Only a paid-for order has a payment to give back.
        Verb::Refund => status != OrderStatus::Pending && status != OrderStatus::Cancelled,
        Verb::Details | Verb::Adjust => true,
    };
    (!allowed).then(|| {
        let next: Vec<&str> = status.next().iter().map(|s| s.as_str()).collect();
        let next = if next.is_empty() {
            "nothing".to_owned()
        } else {
            next.join(" or ")
        };
        format!("{} is {status}: it can become {next}", order.number)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Direction;
    use crate::keymap::Mode;
    use crate::sample;

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            app.act(Action::Type(c));
        }
    }

    #[test]
    fn shipping_the_selected_order_asks_for_tracking_then_confirmation() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Focus(Direction::Down));
        // ORD-001023 is delivered: shipping it is refused at once.
        app.act(Action::Verb(Verb::Ship));
        assert!(app.overlay.is_none());
        let why = app.current_problem().expect("a refusal");
        assert_eq!(why, "ORD-001023 is delivered: it can become nothing");
        // ORD-001020 is paid.
        while app.selected_order().expect("an order").number != "ORD-001020" {
            app.act(Action::Scroll(1));
        }
        let target = app.selected_order().expect("an order");
        app.act(Action::Verb(Verb::Ship));
        assert_eq!(app.mode(), Mode::Typing);
        typed(&mut app, "1Z999");
        app.act(Action::Submit);
        assert_eq!(app.mode(), Mode::Confirming);
        let Some(Overlay::Confirm(command)) = &app.overlay else {
            panic!("{:?}", app.overlay);
        };
        assert_eq!(
            *command,
            Command::Ship {
                order: target,
                tracking: Some("1Z999".into())
            }
        );
        assert!(app.requests.is_empty(), "nothing is sent before y");
        app.act(Action::Confirm);
        assert!(app.overlay.is_none());
        assert!(matches!(
            app.requests.as_slice(),
            [Request::Run(Command::Ship { .. })]
        ));
    }

    #[test]
    fn n_or_esc_sends_nothing() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Focus(Direction::Down));
        // The first pending order down the feed.
        while app.selected_order().expect("an order").status != "pending" {
            app.act(Action::Scroll(1));
        }
        app.act(Action::Verb(Verb::Cancel));
        assert_eq!(app.mode(), Mode::Confirming);
        app.act(Action::Dismiss);
        assert!(app.overlay.is_none() && app.requests.is_empty());
    }

    #[test]
    fn an_adjustment_form_refuses_bad_input_and_stays_open() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::FocusNext);
        app.act(Action::Verb(Verb::Adjust));
        typed(&mut app, "lots");
        app.act(Action::Submit);
        app.act(Action::Submit);
        let Some(Overlay::Form(form)) = &app.overlay else {
            panic!("{:?}", app.overlay);
        };
        assert!(
            form.error
                .as_deref()
                .is_some_and(|e| e.contains("whole number"))
        );
        assert!(app.requests.is_empty());
    }

    #[test]
    fn read_only_refuses_every_change_but_allows_looking() {
        let mut app = sample::normal(sample::noon());
        app.readonly = true;
        app.act(Action::Focus(Direction::Down));
        for verb in [Verb::Ship, Verb::Cancel, Verb::Refund] {
            app.act(Action::Verb(verb));
            assert!(app.overlay.is_none(), "{verb:?}");
            assert!(
                app.current_problem()
                    .is_some_and(|p| p.contains("read-only"))
            );
        }
        app.act(Action::Verb(Verb::Details));
        assert!(matches!(app.overlay, Some(Overlay::Order(_))));
        app.act(Action::Dismiss);
        app.act(Action::Focus(Direction::Up));
        app.act(Action::Focus(Direction::Right));
        app.act(Action::Verb(Verb::Adjust));
        assert!(app.overlay.is_none());
        app.act(Action::Verb(Verb::Details));
        assert!(matches!(
            app.requests.as_slice(),
            [Request::Fetch(Lookup::Ledger { .. })]
        ));
    }

    #[test]
    fn order_actions_need_the_orders_area() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Verb(Verb::Ship));
        assert!(app.overlay.is_none());
        assert!(app.current_problem().is_some_and(|p| p.contains("Orders")));
    }

    #[test]
    fn the_command_line() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::StartCommand);
        typed(&mut app, "stock low");
        app.act(Action::Submit);
        assert_eq!((app.focus, app.zoomed), (Area::Stock, true));
        assert!(app.stock_rows().all(|s| s.is_low()));
        assert!(app.stock_rows().count() < app.stock.items.len());
        app.act(Action::StartCommand);
        typed(&mut app, "search oak chair");
        app.act(Action::Submit);
        assert_eq!(
            app.requests,
            [Request::Fetch(Lookup::Search {
                query: "oak chair".into()
            })]
        );
        app.act(Action::StartCommand);
        typed(&mut app, "orders");
        app.act(Action::Submit);
        assert_eq!(app.focus, Area::Orders);
        app.act(Action::StartCommand);
        typed(&mut app, "bogus");
        app.act(Action::Submit);
        assert!(
            app.current_problem()
                .is_some_and(|p| p.contains(":stock low"))
        );
    }
}
