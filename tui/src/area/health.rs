//! Services: each of the eight with its health, request rate, p99 latency
//! and error rate, and (when there is room) a sparkline of its traffic.

use std::collections::BTreeMap;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use shop_wire::health::SERVICES;
use shop_wire::{HealthStatus, SystemHealth};

use super::{ListState, Panel, View, matches};
use crate::metrics::Rates;
use crate::ring::{Ring, SERIES_CAP};
use crate::ui::{Theme, put, rate, rows, spark};

/// One service's row: its health and its recent traffic.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: &'static str,
    pub status: Option<HealthStatus>,
    /// A failing check's message, when the service is not ok.
    pub note: Option<String>,
    pub rates: Option<Rates>,
    /// Requests per second × 10 per poll, for the sparkline (which takes integers).
    pub rps_series: Ring<u64>,
}

#[derive(Debug, Clone)]
pub struct Services {
    /// In [`SERVICES`] order.
    pub items: Vec<ServiceView>,
    list: ListState,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            items: SERVICES
                .iter()
                .map(|name| ServiceView {
                    name,
                    status: None,
                    note: None,
                    rates: None,
                    rps_series: Ring::new(SERIES_CAP),
                })
                .collect(),
            list: ListState::default(),
        }
    }
}

impl Services {
    pub fn apply_health(&mut self, health: &SystemHealth) {
        for service in &mut self.items {
            let report = health.services.iter().find(|s| s.service == service.name);
            service.status = report.map(|r| r.status);
            service.note = report.and_then(|r| {
                r.checks
                    .iter()
                    .find(|(_, check)| check.status != HealthStatus::Ok)
                    .map(|(name, check)| match &check.message {
                        Some(message) => format!("{name}: {message}"),
                        None => name.clone(),
                    })
            });
        }
    }

    pub fn apply_rates(&mut self, rates: &BTreeMap<String, Rates>) {
        for service in &mut self.items {
            let rate = rates.get(service.name).copied().unwrap_or_default();
            service
                .rps_series
                .push((rate.requests_per_second * 10.0).round() as u64);
            service.rates = Some(rate);
        }
    }

    /// The services after the filter (a name substring).
    pub fn rows(&self) -> impl Iterator<Item = &ServiceView> {
        let needle = self.list.needle();
        self.items
            .iter()
            .filter(move |s| matches(&needle, [s.name]))
    }
}

impl Panel for Services {
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
        draw(buf, rect, self, theme, view.wide)
    }
}

/// Draws the area; returns how many services it had room for.
fn draw(buf: &mut Buffer, rect: Rect, services: &Services, theme: Theme, wide: bool) -> usize {
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
    // At 80x24 a heading row would leave the last service (webhooks) below
    // the panel; the heading then takes the panel's top border, its
    // "service" column standing in for the title.
    let list = if rect.height as usize <= services.row_count() && rect.y > 0 {
        put(
            buf,
            Rect {
                y: rect.y - 1,
                ..top
            },
            &heading,
            theme.heading(),
        );
        rect
    } else {
        put(buf, top, &heading, theme.heading());
        Rect {
            y: rect.y + 1,
            height: rect.height - 1,
            ..rect
        }
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
    let rows = services.row_count();
    let shown_services = services.rows().skip(services.list.scroll(rows));
    for (slot, service) in slots.into_iter().zip(shown_services) {
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

#[cfg(test)]
mod tests {
    use shop_wire::health::{Check, ServiceHealth};

    use super::*;

    #[test]
    fn a_failing_check_is_spelled_out_and_the_sparkline_is_bounded() {
        let mut services = Services::default();
        let mut checks = BTreeMap::new();
        checks.insert(
            "provider".to_owned(),
            Check {
                status: HealthStatus::Degraded,
                message: Some("slow".to_owned()),
            },
        );
        let health = SystemHealth {
            status: HealthStatus::Degraded,
            version: "0.1.0".into(),
            uptime_seconds: 5,
            services: vec![ServiceHealth {
                service: "payments".into(),
                status: HealthStatus::Degraded,
                checks,
            }],
        };
        services.apply_health(&health);
        let payments = services
            .rows()
            .find(|s| s.name == "payments")
            .expect("payments");
        assert_eq!(payments.note.as_deref(), Some("provider: slow"));
        let users = services.rows().find(|s| s.name == "users").expect("users");
        assert_eq!(users.status, None, "not in the report: not run here");
        let mut rates = BTreeMap::new();
        rates.insert("users".to_owned(), Rates::default());
        for _ in 0..(SERIES_CAP + 5) {
            services.apply_rates(&rates);
        }
        assert_eq!(services.items[0].rps_series.len(), SERIES_CAP);
    }
}
