//! Frame time of the full dashboard, for `bench/run.sh` (a measurement,
//! never a test: nothing here asserts a time).
//!
//! The state holds 1,000 orders and 500 SKUs (plus searches, stock
//! movements and 60 samples per service sparkline). Before each frame one
//! new order event is applied, as when the dashboard runs live, so every
//! frame has changes to diff and write. A frame is what the UI loop pays
//! per draw: building the widgets, rendering into the buffer, diffing it
//! against the previous one, and encoding the changes as crossterm escape
//! sequences (into memory rather than a terminal, so the terminal
//! emulator's own speed is left out).
//!
//! Run: `cargo run --release -p shop-tui --example frame_bench [FRAMES]`.
//! Prints one line per terminal size:
//! `frame WIDTHxHEIGHT MEDIAN_US P99_US MEAN_BYTES` (zoomed and grid).

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use shop_tui::app::Area;
use shop_tui::event::Update;
use shop_tui::keymap::Action;
use shop_tui::sample;
use shop_tui::ui::{self, Theme};
use shop_wire::events::EventData;
use shop_wire::orders::{Order, OrderStatus};

/// Where the escape codes go: nowhere, but counted.
struct Sink(Rc<Cell<usize>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.set(self.0.get() + buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let frames: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let now = sample::noon();
    for (width, height) in [(80u16, 24u16), (160, 48)] {
        for zoomed in [false, true] {
            let mut app = sample::large(now, 1000, 500);
            assert_eq!(
                app.orders.orders.len(),
                1000,
                "the state the figure is about"
            );
            assert_eq!(app.stock.items.len(), 500, "the state the figure is about");
            if zoomed {
                app.focus = Area::Orders;
                app.act(Action::ToggleZoom);
            }
            let viewport = Viewport::Fixed(Rect::new(0, 0, width, height));
            let written = Rc::new(Cell::new(0));
            let mut terminal = Terminal::with_options(
                CrosstermBackend::new(Sink(written.clone())),
                TerminalOptions { viewport },
            )?;
            let theme = Theme::new(true);
            let mut times = Vec::with_capacity(frames);
            let mut bytes = 0usize;
            for i in 0..frames + 100 {
                let order = Order {
                    status: OrderStatus::Paid,
                    number: format!("#{}", 9000 + i),
                    ..sample::order(100_000 + i, now)
                };
                let paid = EventData::OrderPaid(order);
                app.apply(Update::Event(sample::event(100_000 + i as u64, now, paid)));
                written.set(0);
                let started = Instant::now();
                terminal.draw(|frame| {
                    ui::draw(frame, &app, theme);
                })?;
                let elapsed = started.elapsed();
                // The first frames fill the caches and write the whole screen.
                if i >= 100 {
                    times.push(elapsed.as_secs_f64() * 1e6);
                    bytes += written.get();
                }
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let p99 = times[times.len() * 99 / 100];
            println!(
                "frame {width}x{height} {} {median:.0} {p99:.0} {}",
                if zoomed { "zoomed" } else { "grid" },
                bytes / frames
            );
        }
    }
    Ok(())
}
