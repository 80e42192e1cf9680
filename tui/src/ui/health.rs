//! Services: each of the eight with its health, request rate, p99 latency
//! and error rate, and (when there is room) a sparkline of its traffic.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use shop_wire::HealthStatus;

use super::{Theme, put, rate, rows, spark};
use crate::app::{App, Area, SERVICES};

/// Draws the area; returns how many services it had room for.
pub fn draw(buf: &mut Buffer, rect: Rect, app: &App, theme: Theme, wide: bool) -> usize {
    // Condensed, the five columns take the 38 columns a quarter of 80x24 has.
    let status_width = if wide { 9 } else { 6 };
    let heading = format!(
        "{:<13} {:<status_width$}{:>5} {:>6} {:>5}{}",
        "service",
        if wide { "status" } else { "state" },
        "req/s",
        "p99 ms",
        "err%",
        if wide { "  requests/s" } else { "" }
    );
    let Some(top) = rows(rect).next() else {
        return 0;
    };
    put(buf, top, &heading, theme.heading());
    let list = Rect {
        y: rect.y + 1,
        height: rect.height - 1,
        ..rect
    };
    // With room to spare (a tall terminal), each service gets up to three
    // rows: a taller sparkline, and the failing check spelled out.
    let per_service = if wide {
        (list.height as usize / SERVICES.len()).clamp(1, 3) as u16
    } else {
        1
    };
    let slots = (list.y..list.bottom())
        .step_by(per_service as usize)
        .map(|y| Rect {
            y,
            height: per_service.min(list.bottom() - y),
            ..list
        })
        .collect::<Vec<_>>();
    let shown = slots.len();
    let services = app.service_rows().skip(app.scroll(Area::Health));
    for (slot, service) in slots.into_iter().zip(services) {
        let row = Rect { height: 1, ..slot };
        let status = match (service.status, wide) {
            (Some(HealthStatus::Ok), _) => "ok",
            (Some(HealthStatus::Degraded), true) => "degraded",
            (Some(HealthStatus::Degraded), false) => "degr",
            (Some(HealthStatus::Down), _) => "down",
            // Not in the health report: this server does not run it (yet).
            (None, _) => "-",
        };
        let (rps, p99, errors) = match service.rates {
            Some(r) => (
                rate(r.requests_per_second),
                r.p99_ms.map_or_else(|| "-".to_owned(), rate),
                format!("{:.1}", r.error_ratio * 100.0),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let error_style = match service.rates {
            Some(r) if r.error_ratio >= 0.05 => theme.bad(),
            Some(r) if r.error_ratio > 0.0 => theme.warn(),
            _ => theme.plain(),
        };
        let line = Line::from(vec![
            Span::raw(format!("{:<13} ", service.name)),
            Span::styled(
                format!("{status:<status_width$}"),
                theme.status(service.status),
            ),
            Span::raw(format!("{rps:>5} {p99:>6} ")),
            Span::styled(format!("{errors:>5}"), error_style),
        ]);
        buf.set_line(row.x, row.y, &line, row.width);
        let used = 13 + 1 + status_width as u16 + 5 + 1 + 6 + 1 + 5 + 2;
        if wide && row.width > used {
            let chart = Rect {
                x: slot.x + used,
                width: slot.width - used,
                ..slot
            };
            let values: Vec<u64> = service.rps_series.iter().copied().collect();
            spark(buf, chart, &values, theme);
        }
        if let (Some(note), true) = (&service.note, slot.height > 1) {
            let below = Rect {
                y: slot.y + 1,
                height: 1,
                width: used.min(slot.width),
                ..slot
            };
            put(buf, below, &format!("  {note}"), theme.warn());
        }
    }
    shown
}
