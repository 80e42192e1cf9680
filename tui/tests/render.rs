//! Snapshot tests of the whole screen, rendered into ratatui's TestBackend
//! at the smallest supported size (80x24, condensed) and a large one
//! (160x48), for the states that matter: normal, empty, low stock and
//! server unreachable. The clock is fixed, and times of day are filtered
//! anyway so that a change in sample timing does not churn every snapshot.
//! Accept changes with `cargo insta review` or `INSTA_UPDATE=always`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use shop_tui::app::{App, Area};
use shop_tui::keymap::Action;
use shop_tui::sample;
use shop_tui::ui::{self, Theme};

fn render(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| {
            ui::draw(frame, app, Theme::new(true));
        })
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let width = buffer.area.width as usize;
    buffer
        .content
        .chunks(width)
        .map(|row| {
            let line: String = row.iter().map(|cell| cell.symbol()).collect();
            format!("{}\n", line.trim_end())
        })
        .collect()
}

macro_rules! snapshot {
    ($name:expr, $app:expr, $width:expr, $height:expr) => {
        insta::with_settings!({
            filters => vec![(r"\b\d\d:\d\d:\d\d\b", "[time]")],
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, text(&render(&$app, $width, $height)));
        });
    };
}

#[test]
fn normal_small() {
    snapshot!("normal_80x24", sample::normal(sample::noon()), 80, 24);
}

#[test]
fn normal_large() {
    snapshot!("normal_160x48", sample::normal(sample::noon()), 160, 48);
}

#[test]
fn normal_medium() {
    snapshot!("normal_120x30", sample::normal(sample::noon()), 120, 30);
}

/// Zoomed on a wide terminal, the orders show who, what and how it was paid.
#[test]
fn zoomed_orders_large() {
    let mut app = sample::normal(sample::noon());
    app.act(Action::Focus(shop_tui::app::Direction::Down));
    app.act(Action::ToggleZoom);
    snapshot!("zoomed_orders_160x48", app, 160, 48);
}

/// Started with the server down: nothing to grey, and the banner says so.
#[test]
fn down_from_the_start_small() {
    let mut app = App::new(sample::noon());
    app.url = "http://127.0.0.1:7467".into();
    app.apply(shop_tui::event::Update::Unreachable(
        "Connection refused (os error 111)".into(),
    ));
    let screen = text(&render(&app, 80, 24));
    assert!(screen.contains("no data yet"), "{screen}");
    assert!(!screen.contains("greyed"), "{screen}");
}

#[test]
fn empty_small() {
    snapshot!("empty_80x24", sample::empty(sample::noon()), 80, 24);
}

#[test]
fn empty_large() {
    snapshot!("empty_160x48", sample::empty(sample::noon()), 160, 48);
}

#[test]
fn low_stock_small() {
    snapshot!("low_stock_80x24", sample::low_stock(sample::noon()), 80, 24);
}

#[test]
fn low_stock_large() {
    snapshot!(
        "low_stock_160x48",
        sample::low_stock(sample::noon()),
        160,
        48
    );
}

#[test]
fn unreachable_small() {
    snapshot!(
        "unreachable_80x24",
        sample::unreachable(sample::noon()),
        80,
        24
    );
}

#[test]
fn unreachable_large() {
    snapshot!(
        "unreachable_160x48",
        sample::unreachable(sample::noon()),
        160,
        48
    );
}

#[test]
fn zoomed_stock_small() {
    let mut app = sample::normal(sample::noon());
    app.act(Action::FocusNext);
    app.act(Action::ToggleZoom);
    snapshot!("zoomed_stock_80x24", app, 80, 24);
}

#[test]
fn help_and_filter_small() {
    let mut app = sample::normal(sample::noon());
    app.act(Action::Focus(shop_tui::app::Direction::Right));
    app.act(Action::StartFilter);
    for c in "00".chars() {
        app.act(Action::FilterChar(c));
    }
    snapshot!("filtering_stock_80x24", app, 80, 24);
    app.act(Action::FilterDone);
    app.act(Action::ToggleHelp);
    snapshot!("help_80x24", app, 80, 24);
}

/// Styles are not in the text snapshots: check the ones that carry meaning.
#[test]
fn low_stock_rows_are_highlighted_even_without_colour() {
    let app = sample::low_stock(sample::noon());
    for theme in [Theme::new(true), Theme::new(false)] {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal
            .draw(|frame| {
                ui::draw(frame, &app, theme);
            })
            .expect("draw");
        let buffer = terminal.backend().buffer();
        let screen = text(buffer);
        let (row, line) = screen
            .lines()
            .enumerate()
            .find(|(_, line)| line.contains("! SKU-0000"))
            .expect("a low SKU on screen");
        let column = line.find("! SKU").expect("marker") as u16;
        // The line has box-drawing characters before it: count cells, not bytes.
        let column = line[..column as usize].chars().count() as u16;
        let cell = &buffer[(column + 2, row as u16)];
        assert!(
            cell.modifier.contains(Modifier::BOLD),
            "{theme:?}: {cell:?}"
        );
    }
}

#[test]
fn unreachable_greys_the_last_data() {
    let app = sample::unreachable(sample::noon());
    assert!(app.is_down());
    let buffer = render(&app, 80, 24);
    // Row 2 is the first row of the areas, under the header and the banner.
    let cell = &buffer[(3, 3)];
    assert!(cell.modifier.contains(Modifier::DIM), "{cell:?}");
    assert!(text(&buffer).contains("server unreachable"));
}

#[test]
fn the_mouse_finds_the_area_it_is_over() {
    let app = sample::normal(sample::noon());
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut drawn = ui::Drawn::default();
    terminal
        .draw(|frame| drawn = ui::draw(frame, &app, Theme::new(false)))
        .expect("draw");
    assert_eq!(drawn.hit(5, 5), Some(Area::Health));
    assert_eq!(drawn.hit(60, 5), Some(Area::Stock));
    assert_eq!(drawn.hit(5, 18), Some(Area::Orders));
    assert_eq!(drawn.hit(60, 18), Some(Area::Search));
    assert_eq!(drawn.hit(5, 0), None);
}

/// The keymap as a person meets it: select an order, `s`, type a tracking
/// number, Enter: the confirmation says exactly what will happen.
#[test]
fn shipping_from_the_dashboard_small() {
    use shop_tui::keymap::map_key;
    let mut app = sample::normal(sample::noon());
    let press = |app: &mut App, code: KeyCode| {
        let key = KeyEvent::new(code, KeyModifiers::NONE);
        if let Some(action) = map_key(app.mode(), key) {
            app.act(action);
        }
    };
    press(&mut app, KeyCode::Down);
    // Nine lines down the feed is ORD-001020, which is paid.
    for _ in 0..9 {
        press(&mut app, KeyCode::Char('j'));
    }
    press(&mut app, KeyCode::Char('s'));
    for c in "1Z999AA1".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    snapshot!("ship_form_80x24", app, 80, 24);
    press(&mut app, KeyCode::Enter);
    snapshot!("ship_confirm_80x24", app, 80, 24);
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.requests.len(), 1);
    assert!(app.overlay.is_none());
}

#[test]
fn adjusting_stock_from_the_dashboard_large() {
    let mut app = sample::normal(sample::noon());
    app.act(Action::FocusNext);
    app.act(Action::Scroll(2));
    app.act(Action::Verb(shop_tui::keymap::Verb::Adjust));
    for c in "+12".chars() {
        app.act(Action::Type(c));
    }
    app.act(Action::Submit);
    for c in "delivery".chars() {
        app.act(Action::Type(c));
    }
    app.act(Action::Submit);
    snapshot!("adjust_confirm_160x48", app, 160, 48);
}

#[test]
fn the_command_line_and_read_only_small() {
    let mut app = sample::normal(sample::noon());
    app.readonly = true;
    app.act(Action::StartCommand);
    for c in "stock low".chars() {
        app.act(Action::Type(c));
    }
    snapshot!("command_line_80x24", app, 80, 24);
}

/// `:notifications` shows the queue zoomed; `R` on the dead one spells out
/// what the server will do before anything is sent.
#[test]
fn resending_a_notification_small() {
    use shop_tui::keymap::map_key;
    let mut app = sample::normal(sample::noon());
    let press = |app: &mut App, code: KeyCode| {
        let key = KeyEvent::new(code, KeyModifiers::NONE);
        if let Some(action) = map_key(app.mode(), key) {
            app.act(action);
        }
    };
    for c in ":notifications".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    // As the loop does after each frame: the list knows how many rows it shows.
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut drawn = ui::Drawn::default();
    terminal
        .draw(|frame| drawn = ui::draw(frame, &app, Theme::new(true)))
        .expect("draw");
    app.fit(drawn.list_rows);
    // Newest first: the dead one is sixth.
    for _ in 0..5 {
        press(&mut app, KeyCode::Char('j'));
    }
    snapshot!("notifications_80x24", app, 80, 24);
    press(&mut app, KeyCode::Char('R'));
    snapshot!("resend_confirm_80x24", app, 80, 24);
    press(&mut app, KeyCode::Char('y'));
    assert_eq!(app.requests.len(), 1);
    assert!(app.overlay.is_none());
}

#[test]
fn notifications_large() {
    let mut app = sample::normal(sample::noon());
    app.act(Action::StartCommand);
    for c in "notifications".chars() {
        app.act(Action::Type(c));
    }
    app.act(Action::Submit);
    snapshot!("notifications_160x48", app, 160, 48);
}

/// `d` on a notification: its text and every attempt, as the server keeps them.
#[test]
fn notification_details_small() {
    use shop_wire::notifications::{Attempt, Rendered};
    let now = sample::noon();
    let mut app = sample::normal(now);
    let mut notification = sample::notifications(now)
        .into_iter()
        .find(|n| n.last_error.is_some())
        .expect("a failed one");
    notification.rendered = Some(Rendered {
        subject: Some("Your order ORD-001012".into()),
        body: "Thanks for your order.\nWe will write again when it ships.".into(),
        html: None,
    });
    notification.history = (1..=2)
        .map(|number| Attempt {
            number,
            at: now,
            outcome: "transient_error".into(),
            error: Some("smtp: connection reset".into()),
            duration_ms: 12,
        })
        .collect();
    app.apply(shop_tui::event::Update::Notification(Box::new(
        notification,
    )));
    snapshot!("notification_details_80x24", app, 80, 24);
}

#[test]
fn the_orders_area_counts_the_open_returns() {
    use shop_tui::event::{Section, Update};
    let mut app = sample::normal(sample::noon());
    let before = text(&render(&app, 160, 48));
    assert!(!before.contains("returns open"), "{before}");
    app.apply(Update::OpenReturns(Section::Ready(3)));
    let after = text(&render(&app, 160, 48));
    assert!(after.contains("returns open 3"), "{after}");
    // On the smallest terminal they come first, so they are never cut off.
    let small = text(&render(&app, 80, 24));
    assert!(small.contains("rtn 3"), "{small}");
}
