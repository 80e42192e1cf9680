//! Acting from the dashboard: the action keys on a selected row, the forms
//! and confirmations they open, the `:` command line, and the views shown
//! on top of the grid (an order's or notification's details, a SKU's
//! ledger, search results).
//!
//! Which action a key leads to on a selected row is up to its area (see
//! [`crate::area::Panel::verb`]); the state of what it opens lives in
//! [`App::overlay`]; the loop hands [`App::requests`] to the feed task,
//! whose answer comes back as an [`crate::event::Update`].

use shop_wire::OrderId;
use shop_wire::inventory::Movement;
use shop_wire::notifications::Notification;
use shop_wire::search::SearchResponse;

use crate::actions::{Command, Form, Lookup, Request};
use crate::app::{App, Area};
use crate::keymap::Action;

/// What is on top of the grid.
#[derive(Debug, Clone)]
pub enum Overlay {
    Form(Form),
    /// The command, spelled out; `y` sends it.
    Confirm(Command),
    /// `:` and what was typed after it.
    CommandLine(String),
    /// An order's details, by id: drawn from live state, so they move on.
    Order(OrderId),
    Ledger {
        sku: String,
        movements: Vec<Movement>,
    },
    Search(SearchResponse),
    /// A notification as `GET /api/notifications/{id}` answered.
    Notification(Box<Notification>),
}

/// What `:` understands, for the help line and the refusal.
pub const COMMANDS: &str =
    ":orders  :stock  :stock low  :services  :search <words>  :notifications  :q";

impl App {
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
        match (command, rest.as_slice()) {
            ("orders" | "o", []) => self.show(Area::Orders),
            ("stock" | "inventory", []) => {
                self.stock.low_only = false;
                self.show(Area::Stock);
            }
            ("stock" | "inventory", ["low"]) => {
                self.stock.low_only = true;
                self.show(Area::Stock);
            }
            ("services" | "health", []) => self.show(Area::Health),
            ("search", []) => self.show(Area::Search),
            ("notifications" | "notification" | "n", []) => self.show(Area::Notifications),
            ("search", words) => self.requests.push(Request::Fetch(Lookup::Search {
                query: words.join(" "),
            })),
            ("q" | "quit", []) => self.should_quit = true,
            _ => self.refuse(&format!("unknown command :{line}; try {COMMANDS}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use shop_wire::orders::OrderStatus;

    use super::*;
    use crate::app::Direction;
    use crate::keymap::{Mode, Verb};
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
        while app.orders.selected().expect("an order").number != "ORD-001020" {
            app.act(Action::Scroll(1));
        }
        let target = app.orders.selected().expect("an order");
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
        while app.orders.selected().expect("an order").status != OrderStatus::Pending {
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
        assert!(app.stock.rows().all(|s| s.is_low()));
        assert!(app.stock.rows().count() < app.stock.items.len());
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
