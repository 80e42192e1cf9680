//! Styles by meaning, in colour or (under `NO_COLOR` / `--no-color`) in
//! bold, reverse and dim only, so nothing depends on seeing colour.

use ratatui::style::{Color, Modifier, Style};
use shop_wire::HealthStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Self {
        Theme { color }
    }

    fn pick(self, colored: Style, plain: Style) -> Style {
        if self.color { colored } else { plain }
    }

    pub fn plain(self) -> Style {
        Style::new()
    }

    pub fn header(self) -> Style {
        self.pick(
            Style::new().fg(Color::Black).bg(Color::Cyan),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    /// Column headings.
    pub fn heading(self) -> Style {
        self.pick(
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn border(self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            (true, false) => Style::new().add_modifier(Modifier::BOLD),
            (false, _) => Style::new(),
        }
    }

    pub fn muted(self) -> Style {
        self.pick(
            Style::new().fg(Color::DarkGray),
            Style::new().add_modifier(Modifier::DIM),
        )
    }

    pub fn good(self) -> Style {
        self.pick(Style::new().fg(Color::Green), Style::new())
    }

    pub fn warn(self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn bad(self) -> Style {
        self.pick(
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
    }

    pub fn status(self, status: Option<HealthStatus>) -> Style {
        match status {
            Some(HealthStatus::Ok) => self.good(),
            Some(HealthStatus::Degraded) => self.warn(),
            Some(HealthStatus::Down) => self.bad(),
            None => self.muted(),
        }
    }

    /// A SKU at or below its low-stock threshold.
    pub fn low_stock(self) -> Style {
        self.pick(
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    /// The selected row of the focused list: reversed, which reads the
    /// same with or without colour.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn spark(self) -> Style {
        self.pick(Style::new().fg(Color::Cyan), Style::new())
    }

    pub fn money(self) -> Style {
        self.pick(Style::new().fg(Color::Green), Style::new())
    }

    /// The "server unreachable" banner.
    pub fn alarm(self) -> Style {
        self.pick(
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
    }

    /// Laid over the last data while the server is away: still readable, clearly old.
    pub fn stale(self) -> Style {
        self.pick(
            Style::new().fg(Color::DarkGray).add_modifier(Modifier::DIM),
            Style::new().add_modifier(Modifier::DIM),
        )
    }
}
