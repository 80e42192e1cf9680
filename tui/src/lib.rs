//! `shop dashboard`: a live terminal view of a shop server.
//!
//! Built as state + components + one event enum:
//! - [`app::App`] is the whole state, changed only by [`app::App::apply`]
//!   (data), [`app::App::act`] (keys) and [`app::App::tick`] (time), which
//!   it routes to the areas;
//! - each area in [`area`] owns its state, its drawing and its action keys;
//! - [`ui`] draws the frame around them, from state only;
//! - [`feed`] runs in the background, polling and following the server's
//!   event stream, and sends [`event::Update`]s over a channel;
//! - the loop here selects over terminal input, data, ticks and signals
//!   ([`event::AppEvent`]) and redraws when something changed, at most
//!   every [`FRAME`] for data, at once for keys.
//!
//! It talks to the server only over HTTP, through the same API client and
//! login rules as every other command (`--url`, `--profile`, `--token`), and
//! never links the server.

pub mod actions;
pub mod app;
pub mod area;
pub mod event;
pub mod feed;
pub mod interact;
pub mod keymap;
pub mod metrics;
pub mod ring;
pub mod sample;
pub mod terminal;
pub mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as Input, EventStream};
use futures::StreamExt;
use shop_cli::commands::dashboard::DashboardArgs;
use shop_cli::context::Context;
use shop_cli::{CliError, GlobalArgs};
use time::OffsetDateTime;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::actions::Request;
use crate::app::App;
use crate::event::AppEvent;
use crate::keymap::{map_key, map_mouse};
use crate::ui::{Drawn, Theme};

/// Shortest time between two frames drawn for data; a burst of events
/// becomes one frame, which keeps the CPU low under load.
pub const FRAME: Duration = Duration::from_millis(100);
/// How often the clock and ages on screen move on with no news.
pub const TICK: Duration = Duration::from_secs(1);

/// Runs the dashboard until the user quits; returns the exit code.
pub fn run(global: GlobalArgs, args: DashboardArgs) -> ExitCode {
    shop_cli::exit_code(run_checked(global, args))
}

fn run_checked(global: GlobalArgs, args: DashboardArgs) -> Result<(), CliError> {
    // crossterm's event reader panics without a terminal; say what is wrong instead.
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "shop dashboard needs a terminal; to watch from a script use `shop events --follow`"
                .into(),
        ));
    }
    let theme = Theme::new(colors_wanted(global.no_color));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| CliError::Other(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(async move {
        let context = Context::new(global)?;
        // Log in (or refresh the stored login) before taking the screen, so a
        // missing login is an ordinary error message and exit code.
        let session = context.session().await?;
        let url = context.server();
        let (tx, rx) = mpsc::channel(1024);
        let (wake, woken) = mpsc::channel(1);
        let (requests, requested) = mpsc::channel(16);
        let feed = tokio::spawn(feed::run(
            context,
            session,
            args.refresh(),
            tx,
            woken,
            requested,
        ));
        let mut app = App::new(OffsetDateTime::now_utc());
        app.url = url;
        app.readonly = args.readonly;
        let result = ui_loop(app, theme, rx, wake, requests).await;
        feed.abort();
        result
    })
}

/// Colour unless `--no-color` or a non-empty `NO_COLOR` (no-color.org).
pub fn colors_wanted(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

async fn ui_loop(
    mut app: App,
    theme: Theme,
    mut data: mpsc::Receiver<AppEvent>,
    wake: mpsc::Sender<()>,
    requests: mpsc::Sender<Request>,
) -> Result<(), CliError> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut screen = terminal::Screen::enter()?;
    let mut input = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut drawn = Drawn::default();
    let mut dirty = true;
    loop {
        let event = tokio::select! {
            read = input.next() => match read {
                Some(Ok(read)) => AppEvent::Input(read),
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(()),
            },
            Some(event) = data.recv() => event,
            _ = tick.tick() => AppEvent::Tick,
            _ = frame.tick() => {
                if dirty {
                    screen.terminal.draw(|f| drawn = ui::draw(f, &app, theme))?;
                    app.fit(drawn.list_rows);
                    dirty = false;
                }
                continue;
            }
            _ = terminate.recv() => AppEvent::Signal,
            _ = interrupt.recv() => AppEvent::Signal,
            _ = hangup.recv() => AppEvent::Signal,
        };
        let draw_now = handle(&mut app, event, &drawn);
        if app.should_quit {
            return Ok(());
        }
        if app.refresh_requested {
            app.refresh_requested = false;
            // Full means one is already queued, which is as good.
            let _ = wake.try_send(());
        }
        let pending: Vec<Request> = app.requests.drain(..).collect();
        for request in pending {
            // The keys never wait on the network: a full queue is said, not awaited.
            if requests.try_send(request).is_err() {
                let busy = "still sending the last commands; try again in a moment";
                app.apply(event::Update::Problem(busy.to_owned()));
            }
        }
        dirty = true;
        if draw_now {
            screen.terminal.draw(|f| drawn = ui::draw(f, &app, theme))?;
            app.fit(drawn.list_rows);
            dirty = false;
        }
    }
}

/// Applies one event; true when the screen should follow at once (the user
/// did something) rather than with the next frame (data arrived).
pub fn handle(app: &mut App, event: AppEvent, drawn: &Drawn) -> bool {
    match event {
        AppEvent::Input(Input::Key(key)) => {
            if let Some(action) = map_key(app.mode(), key) {
                app.act(action);
            }
            true
        }
        AppEvent::Input(Input::Mouse(mouse)) => {
            if let (Some(by), Some(area)) = (map_mouse(mouse), drawn.hit(mouse.column, mouse.row)) {
                app.scroll_area(area, by);
                return true;
            }
            false
        }
        AppEvent::Input(_) => true,
        AppEvent::Tick => {
            app.tick(OffsetDateTime::now_utc());
            false
        }
        AppEvent::Data(update) => {
            app.apply(update);
            false
        }
        AppEvent::Signal => {
            app.should_quit = true;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
    use ratatui::layout::Rect;

    use super::*;
    use crate::app::Area;
    use crate::event::Update;

    #[test]
    fn keys_draw_at_once_data_waits_for_the_next_frame() {
        let mut app = sample::normal(sample::noon());
        let drawn = Drawn::default();
        let tab = AppEvent::Input(Input::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        assert!(handle(&mut app, tab, &drawn));
        assert_eq!(app.focus, Area::Stock);
        assert!(!handle(&mut app, AppEvent::Data(Update::Reachable), &drawn));
        assert!(!handle(&mut app, AppEvent::Signal, &drawn));
        assert!(app.should_quit, "a signal ends the loop like q");
    }

    #[test]
    fn the_wheel_scrolls_the_list_under_the_mouse_not_the_focused_one() {
        let mut app = sample::normal(sample::noon());
        let mut drawn = Drawn::default();
        drawn.areas[Area::Orders.index()] = Rect::new(0, 12, 40, 11);
        let wheel = AppEvent::Input(Input::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 3,
            row: 15,
            modifiers: KeyModifiers::NONE,
        }));
        assert!(handle(&mut app, wheel, &drawn));
        assert_eq!(app.focus, Area::Health);
        assert_eq!(app.scroll(Area::Orders), 3);
        assert_eq!(app.scroll(Area::Health), 0);
    }
}
