//! Notifications: the emails, SMS and push messages the shop sent or is
//! sending, newest first, with the failed and dead ones marked. Not in the
//! grid: `:notifications` shows it zoomed. On the selected notification,
//! `R` sends it again (the server's resend: a failed or dead one is queued
//! again as it is, a sent one is copied into a new notification) and `d`
//! shows it whole: its text and every attempt.

use std::collections::VecDeque;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use shop_wire::NotificationId;
use shop_wire::events::{EventData, NotificationEvent};
use shop_wire::notifications::{Channel, Notification, NotificationStatus};
use time::OffsetDateTime;

use super::{Act, ListState, Load, Panel, View, matches};
use crate::actions::{Command, Lookup, NotificationTarget, Request};
use crate::app::FEED_CAP;
use crate::interact::Overlay;
use crate::keymap::Verb;
use crate::ui::{Theme, clock, cut, placeholder, put, rows};

/// The statuses the server sends again (`POST /api/notifications/{id}/resend`).
const RESENDABLE: [NotificationStatus; 3] = [
    NotificationStatus::Failed,
    NotificationStatus::Dead,
    NotificationStatus::Sent,
];

/// A notification as far as the dashboard knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    pub id: NotificationId,
    pub channel: Channel,
    pub recipient: String,
    pub template: String,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub error: Option<String>,
    pub created: OffsetDateTime,
    /// When its status last changed.
    pub at: OffsetDateTime,
}

impl From<&Notification> for NotificationRow {
    fn from(n: &Notification) -> Self {
        NotificationRow {
            id: n.id.clone(),
            channel: n.channel,
            recipient: n.recipient.clone(),
            template: n.template.clone(),
            status: n.status,
            attempts: n.attempts,
            error: n.last_error.clone(),
            created: n.created_at,
            at: n.updated_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NotificationsView {
    pub load: Load,
    /// Newest first, at most [`FEED_CAP`].
    pub items: VecDeque<NotificationRow>,
    list: ListState,
}

impl Default for NotificationsView {
    fn default() -> Self {
        NotificationsView {
            load: Load::Waiting,
            items: VecDeque::new(),
            list: ListState::default(),
        }
    }
}

impl NotificationsView {
    /// The latest notifications and the dead ones, as the server lists them.
    pub fn apply_list(&mut self, notifications: &[Notification]) {
        self.load = Load::Ready;
        for notification in notifications {
            self.upsert(notification.into());
        }
    }

    /// The notifications route answered 404; rows already shown stay.
    pub fn apply_missing(&mut self) {
        if self.items.is_empty() {
            self.load = Load::Missing;
        }
    }

    /// The list after the filter (recipient, template, status, channel or id).
    pub fn rows(&self) -> impl Iterator<Item = &NotificationRow> {
        let needle = self.list.needle();
        self.items.iter().filter(move |n| {
            matches(
                &needle,
                [
                    n.recipient.as_str(),
                    n.template.as_str(),
                    n.status.as_str(),
                    n.channel.as_str(),
                    n.id.as_str(),
                ],
            )
        })
    }

    pub fn selected(&self) -> Option<NotificationTarget> {
        let at = self.list.selected(self.row_count());
        let row = self.rows().nth(at)?;
        Some(NotificationTarget {
            id: row.id.clone(),
            status: row.status,
            channel: row.channel,
            template: row.template.clone(),
            recipient: row.recipient.clone(),
            attempts: row.attempts,
            error: row.error.clone(),
        })
    }

    /// How many of the kept notifications are in this status.
    pub fn count(&self, status: NotificationStatus) -> usize {
        self.items.iter().filter(|n| n.status == status).count()
    }

    fn status_event(
        &mut self,
        at: OffsetDateTime,
        event: &NotificationEvent,
        status: NotificationStatus,
    ) {
        self.load = Load::Ready;
        self.upsert(NotificationRow {
            id: event.id.clone(),
            channel: event.channel,
            recipient: event.recipient.clone(),
            template: event.template.clone(),
            status,
            attempts: event.attempts,
            error: event.error.clone(),
            created: at,
            at,
        });
    }

    /// Adds a notification or updates the one with its id; the newest stay.
    fn upsert(&mut self, row: NotificationRow) {
        if let Some(known) = self.items.iter_mut().find(|n| n.id == row.id) {
            // A list answer may be older than an event already seen.
            if row.at >= known.at {
                let created = known.created.min(row.created);
                *known = NotificationRow { created, ..row };
            }
            return;
        }
        let at = self
            .items
            .iter()
            .position(|n| n.created <= row.created)
            .unwrap_or(self.items.len());
        self.items.insert(at, row);
        self.items.truncate(FEED_CAP);
    }
}

impl Panel for NotificationsView {
    fn list(&self) -> &ListState {
        &self.list
    }

    fn list_mut(&mut self) -> &mut ListState {
        &mut self.list
    }

    fn row_count(&self) -> usize {
        self.rows().count()
    }

    fn draw(&self, buf: &mut Buffer, rect: Rect, view: &View, theme: Theme) -> usize {
        draw(buf, rect, self, view, theme)
    }

    fn verb(&self, verb: Verb) -> Option<Act> {
        if !matches!(verb, Verb::Resend | Verb::Details) {
            return None;
        }
        let Some(notification) = self.selected() else {
            return Some(Act::Refuse("no notification selected".to_owned()));
        };
        if verb == Verb::Details {
            let id = notification.id;
            return Some(Act::Ask(Request::Fetch(Lookup::Notification { id })));
        }
        if !RESENDABLE.contains(&notification.status) {
            return Some(Act::Refuse(format!(
                "{} is {}: only a failed, dead or sent notification can be sent again",
                notification.id, notification.status
            )));
        }
        Some(Act::Open(Overlay::Confirm(Command::Resend {
            notification,
        })))
    }

    fn event(&mut self, at: OffsetDateTime, data: &EventData) {
        let (event, status) = match data {
            EventData::NotificationQueued(e) => (e, NotificationStatus::Queued),
            EventData::NotificationSent(e) => (e, NotificationStatus::Sent),
            EventData::NotificationFailed(e) => (e, NotificationStatus::Failed),
            EventData::NotificationDead(e) => (e, NotificationStatus::Dead),
            _ => return,
        };
        self.status_event(at, event, status);
    }
}

/// A notification whole, for the view `d` opens: where it stands, what was
/// sent, and every attempt.
pub fn details_lines(n: &Notification, theme: Theme) -> Vec<Line<'static>> {
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!(" {name:<9} "), theme.heading()),
            Span::raw(value),
        ])
    };
    let attempts = match n.attempts {
        1 => "1 attempt".to_owned(),
        more => format!("{more} attempts"),
    };
    let when = match (n.status, n.sent_at) {
        (NotificationStatus::Sent, Some(sent)) => format!("sent at {} UTC", clock(sent)),
        (NotificationStatus::Queued | NotificationStatus::Failed, _) => {
            format!("next try at {} UTC", clock(n.send_at))
        }
        _ => format!("last change at {} UTC", clock(n.updated_at)),
    };
    let mut lines = vec![
        field("status", format!("{} after {attempts}, {when}", n.status)),
        field("to", format!("{} by {}", n.recipient, n.channel)),
        field(
            "template",
            format!("{} · priority {}", n.template, n.priority),
        ),
        field("created", format!("{} UTC", clock(n.created_at))),
    ];
    if let Some(error) = &n.last_error {
        lines.push(field("error", error.clone()));
    }
    if let Some(from) = &n.resent_from {
        lines.push(field("resends", from.to_string()));
    }
    if let Some(rendered) = &n.rendered {
        if let Some(subject) = &rendered.subject {
            lines.push(field("subject", subject.clone()));
        }
        let mut body = rendered.body.lines();
        lines.push(field("text", body.next().unwrap_or_default().to_owned()));
        lines.extend(body.map(|line| Line::raw(format!("           {line}"))));
    }
    lines.push(Line::styled(" attempts:", theme.heading()));
    if n.history.is_empty() {
        lines.push(Line::styled("   none yet", theme.muted()));
    }
    lines.extend(n.history.iter().map(|attempt| {
        let error = attempt
            .error
            .as_ref()
            .map_or_else(String::new, |error| format!(" · {error}"));
        Line::raw(format!(
            "   {} {} {} in {} ms{error}",
            attempt.number,
            clock(attempt.at),
            attempt.outcome,
            attempt.duration_ms
        ))
    }));
    lines
}

/// Draws the area; returns how many rows it had room for.
fn draw(
    buf: &mut Buffer,
    rect: Rect,
    notifications: &NotificationsView,
    view: &View,
    theme: Theme,
) -> usize {
    match notifications.load {
        Load::Waiting => {
            placeholder(buf, rect, "waiting for notifications…", theme);
            return 0;
        }
        Load::Missing => {
            placeholder(buf, rect, "no data yet (no notifications API)", theme);
            return 0;
        }
        Load::Ready => {}
    }
    let mut lines = rows(rect);
    let Some(summary) = lines.next() else {
        return 0;
    };
    let dead = notifications.count(NotificationStatus::Dead);
    let failed = notifications.count(NotificationStatus::Failed);
    let text = format!(
        "{} notifications · {dead} dead · {failed} failed · {} queued · R resends",
        notifications.items.len(),
        notifications.count(NotificationStatus::Queued),
    );
    let style = if dead + failed > 0 {
        theme.warn()
    } else {
        theme.plain()
    };
    put(buf, summary, &text, style);
    let Some(heading) = lines.next() else {
        return 0;
    };
    // Condensed (80 columns), the time loses its seconds and the columns
    // shrink so that the last error keeps some room.
    let wide = view.wide && rect.width >= 110;
    let (time_width, status_width, via_width, template_width, recipient_width) = if wide {
        (8, 8, 6, 22, 32)
    } else {
        (5, 7, 5, 18, 20)
    };
    put(
        buf,
        heading,
        &format!(
            "{:<time_width$} {:<status_width$} {:<via_width$} {:<template_width$} {:<recipient_width$} {:>3}  {}",
            "time", "status", "via", "template", "recipient", "try", "last error",
        ),
        theme.heading(),
    );
    let list = Rect {
        y: rect.y + 2,
        height: rect.height.saturating_sub(2),
        ..rect
    };
    let count = notifications.row_count();
    if count == 0 && list.height > 1 {
        placeholder(buf, list, "no notifications yet", theme);
    }
    let first = notifications.list.scroll(count);
    let selected = view.focused.then(|| notifications.list.selected(count));
    // The last error takes what the other columns leave, cut with an ellipsis.
    let used = time_width + status_width + via_width + template_width + recipient_width + 10;
    let room = (rect.width as usize).saturating_sub(used);
    for (at, (row, n)) in rows(list).zip(notifications.rows().skip(first)).enumerate() {
        if selected == Some(first + at) {
            buf.set_style(row, theme.selected());
        }
        let time = if wide {
            clock(n.at)
        } else {
            clock(n.at)[..5].to_owned()
        };
        let status_style = match n.status {
            NotificationStatus::Dead | NotificationStatus::Failed => theme.bad(),
            NotificationStatus::Sent => theme.good(),
            _ => theme.plain(),
        };
        let line = Line::from(vec![
            Span::styled(format!("{time} "), theme.muted()),
            Span::styled(
                format!("{:<status_width$} ", n.status.as_str()),
                status_style,
            ),
            Span::raw(format!(
                "{:<via_width$} {:<template_width$} {:<recipient_width$} {:>3}  ",
                n.channel.as_str(),
                cut(&n.template, template_width),
                cut(&n.recipient, recipient_width),
                n.attempts
            )),
            Span::styled(
                cut(n.error.as_deref().unwrap_or_default(), room),
                theme.warn(),
            ),
        ]);
        buf.set_line(row.x, row.y, &line, row.width);
    }
    list.height as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Request;
    use crate::app::App;
    use crate::event::Update;
    use crate::keymap::{Action, Mode};
    use crate::sample;

    /// The sample on the notifications view, the dead one selected.
    fn on_the_dead_one() -> App {
        let mut app = sample::normal(sample::noon());
        app.act(Action::StartCommand);
        for c in "notifications".chars() {
            app.act(Action::Type(c));
        }
        app.act(Action::Submit);
        while app.notifications.selected().expect("a notification").status
            != NotificationStatus::Dead
        {
            app.act(Action::Scroll(1));
        }
        app
    }

    #[test]
    fn a_dead_notification_is_sent_again_after_confirmation() {
        let mut app = on_the_dead_one();
        assert_eq!(
            (app.focus, app.zoomed),
            (crate::app::Area::Notifications, true)
        );
        let target = app.notifications.selected().expect("the dead one");
        app.act(Action::Verb(Verb::Resend));
        assert_eq!(app.mode(), Mode::Confirming);
        let Some(Overlay::Confirm(command)) = &app.overlay else {
            panic!("{:?}", app.overlay);
        };
        assert_eq!(
            *command,
            Command::Resend {
                notification: target.clone()
            }
        );
        let said = command.describe().join(" ");
        assert!(said.contains("dead after 5 attempts (smtp: 550"), "{said}");
        assert!(said.contains("queued again as it is"), "{said}");
        assert!(app.requests.is_empty(), "nothing is sent before y");
        app.act(Action::Confirm);
        assert_eq!(
            app.requests,
            [Request::Run(Command::Resend {
                notification: target
            })]
        );
    }

    #[test]
    fn a_queued_notification_is_not_sent_again_and_read_only_refuses() {
        let mut app = on_the_dead_one();
        while app.notifications.selected().expect("a notification").status
            != NotificationStatus::Queued
        {
            app.act(Action::Scroll(-1));
        }
        app.act(Action::Verb(Verb::Resend));
        assert!(app.overlay.is_none());
        let why = app.current_problem().expect("a refusal");
        assert!(
            why.ends_with("is queued: only a failed, dead or sent notification can be sent again"),
            "{why}"
        );
        let mut app = on_the_dead_one();
        app.readonly = true;
        app.act(Action::Verb(Verb::Resend));
        assert!(app.overlay.is_none() && app.requests.is_empty());
        assert!(
            app.current_problem()
                .is_some_and(|p| p.contains("read-only"))
        );
    }

    #[test]
    fn d_asks_for_the_whole_notification() {
        let mut app = on_the_dead_one();
        let id = app.notifications.selected().expect("the dead one").id;
        app.readonly = true;
        app.act(Action::Verb(Verb::Details));
        assert_eq!(
            app.requests,
            [Request::Fetch(Lookup::Notification { id })],
            "looking is allowed read-only"
        );
    }

    #[test]
    fn resending_needs_the_notifications_view() {
        let mut app = sample::normal(sample::noon());
        app.act(Action::Verb(Verb::Resend));
        assert!(app.overlay.is_none());
        assert!(
            app.current_problem()
                .is_some_and(|p| p.contains(":notifications"))
        );
    }

    #[test]
    fn events_move_a_notification_on_and_add_new_ones() {
        let now = sample::noon();
        let mut app = sample::normal(now);
        let dead = app
            .notifications
            .items
            .iter()
            .find(|n| n.status == NotificationStatus::Dead)
            .expect("a dead one")
            .clone();
        let queued = NotificationEvent {
            id: dead.id.clone(),
            channel: dead.channel,
            recipient: dead.recipient.clone(),
            template: dead.template.clone(),
            priority: shop_wire::notifications::Priority::Normal,
            attempts: 0,
            error: None,
            event_id: None,
        };
        let kept = app.notifications.items.len();
        let event = sample::event(5000, now, EventData::NotificationQueued(queued.clone()));
        app.apply(Update::Event(event));
        let row = app
            .notifications
            .items
            .iter()
            .find(|n| n.id == dead.id)
            .expect("kept");
        assert_eq!(
            (row.status, row.attempts, row.error.clone()),
            (NotificationStatus::Queued, 0, None)
        );
        assert_eq!(row.created, dead.created, "still where it was in the list");
        let fresh = NotificationEvent {
            id: sample::id_of("ntf", 99),
            ..queued
        };
        let event = sample::event(5001, now, EventData::NotificationSent(fresh));
        app.apply(Update::Event(event));
        assert_eq!(app.notifications.items.len(), kept + 1);
        assert_eq!(
            app.notifications.items[0].status,
            NotificationStatus::Sent,
            "newest first"
        );
        // A poll answer older than what the events said does not undo it.
        app.apply(Update::Notifications(crate::event::Section::Ready(
            sample::notifications(now - time::Duration::minutes(1)),
        )));
        let row = app
            .notifications
            .items
            .iter()
            .find(|n| n.id == dead.id)
            .expect("kept");
        assert_eq!(row.status, NotificationStatus::Queued);
    }
}
