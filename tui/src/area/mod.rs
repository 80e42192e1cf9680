//! The dashboard's areas, gitui style: each one owns its state (what the
//! feed told it, and its list's filter, scroll and selection), its drawing,
//! and what the action keys do on its selected row. [`crate::app::App`]
//! only routes data, keys and frames to them through [`Panel`].

pub mod health;
pub mod notifications;
pub mod orders;
pub mod search;
pub mod stock;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use shop_wire::events::EventData;
use time::OffsetDateTime;

use crate::actions::Request;
use crate::interact::Overlay;
use crate::keymap::Verb;
use crate::ui::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    Health,
    Stock,
    Orders,
    Search,
    /// Not in the grid: `:notifications` shows it zoomed.
    Notifications,
}

impl Area {
    pub const COUNT: usize = 5;
    /// Every area, in tab order while zoomed.
    pub const ALL: [Area; Area::COUNT] = [
        Area::Health,
        Area::Stock,
        Area::Orders,
        Area::Search,
        Area::Notifications,
    ];
    /// The 2x2 grid, in tab and reading order.
    pub const GRID: [Area; 4] = [Area::Health, Area::Stock, Area::Orders, Area::Search];

    pub fn index(self) -> usize {
        match self {
            Area::Health => 0,
            Area::Stock => 1,
            Area::Orders => 2,
            Area::Search => 3,
            Area::Notifications => 4,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Area::Health => "Services",
            Area::Stock => "Stock",
            Area::Orders => "Orders",
            Area::Search => "Search",
            Area::Notifications => "Notifications",
        }
    }

    /// The next or previous area: the grid's four, and zoomed also the
    /// areas that only show zoomed.
    pub(crate) fn step(self, by: isize, zoomed: bool) -> Area {
        let cycle: &[Area] = if zoomed { &Area::ALL } else { &Area::GRID };
        let here = cycle.iter().position(|a| *a == self).unwrap_or(0);
        let at = (here as isize + by).rem_euclid(cycle.len() as isize) as usize;
        cycle[at]
    }

    /// The neighbour in the 2x2 grid (Health Stock / Orders Search); the
    /// edges wrap, so every arrow always moves somewhere.
    pub(crate) fn towards(self, direction: Direction) -> Area {
        let Some(at) = Area::GRID.iter().position(|a| *a == self) else {
            return Area::Health;
        };
        let (row, col) = (at / 2, at % 2);
        let (row, col) = match direction {
            Direction::Up | Direction::Down => (1 - row, col),
            Direction::Left | Direction::Right => (row, 1 - col),
        };
        Area::GRID[row * 2 + col]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Left,
    Right,
}

/// Where a part of the server's data stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Not asked yet, or no answer yet.
    Waiting,
    /// The server has no such route yet (404): "no data yet".
    Missing,
    Ready,
}

/// An area's list as the user moves through it: the filter typed with `/`,
/// the first row shown, the selected row (what action keys act on), and how
/// many rows the last frame showed, so that scrolling stops with the last
/// row at the bottom, not at the top. Positions count rows after the filter.
#[derive(Debug, Clone)]
pub struct ListState {
    filter: String,
    scroll: usize,
    cursor: usize,
    viewport: usize,
}

impl Default for ListState {
    fn default() -> Self {
        ListState {
            filter: String::new(),
            scroll: 0,
            cursor: 0,
            viewport: 1,
        }
    }
}

impl ListState {
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The filter as the rows are matched against it (case-insensitive).
    pub fn needle(&self) -> String {
        self.filter.to_lowercase()
    }

    pub(crate) fn type_char(&mut self, c: char) {
        self.filter.push(c);
        self.scroll = 0;
    }

    pub(crate) fn backspace(&mut self) {
        self.filter.pop();
    }

    pub(crate) fn clear(&mut self) {
        self.filter.clear();
    }

    /// The first row shown out of `rows`: the list never scrolls past its
    /// last page, even when it shrank (a filter, fresh data) since the user scrolled.
    pub fn scroll(&self, rows: usize) -> usize {
        self.scroll.min(self.last_page(rows))
    }

    fn last_page(&self, rows: usize) -> usize {
        rows.saturating_sub(self.viewport.max(1))
    }

    /// The selected row out of `rows`.
    pub fn selected(&self, rows: usize) -> usize {
        self.cursor.min(rows.saturating_sub(1))
    }

    /// What the last frame had room for.
    pub(crate) fn fit(&mut self, shown: usize) {
        self.viewport = shown;
    }

    /// Moves the selection; the view follows it, and stops with the last
    /// row at the bottom.
    pub(crate) fn move_cursor(&mut self, by: i64, rows: usize) {
        let last = rows.saturating_sub(1) as i64;
        let cursor = (self.selected(rows) as i64)
            .saturating_add(by)
            .clamp(0, last) as usize;
        self.cursor = cursor;
        let shown = self.viewport.max(1);
        let top = self.scroll(rows);
        if cursor < top {
            self.scroll = cursor;
        } else if cursor >= top + shown {
            self.scroll = cursor + 1 - shown;
        }
    }

    /// The mouse wheel: the view moves, and the selection stays in it.
    pub(crate) fn scroll_by(&mut self, by: i32, rows: usize) {
        let last = self.last_page(rows) as i64;
        let top = (self.scroll(rows) as i64 + i64::from(by)).clamp(0, last) as usize;
        self.scroll = top;
        let shown = self.viewport.max(1);
        self.cursor = self.cursor.clamp(top, top + shown - 1);
    }
}

/// What drawing an area needs besides its own state.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub now: OffsetDateTime,
    /// The area has the keys: its selected row is marked.
    pub focused: bool,
    pub zoomed: bool,
    /// Room for the full layout (see [`crate::ui::WIDE`]).
    pub wide: bool,
}

/// What an action key on an area's selected row leads to.
#[derive(Debug, Clone)]
pub enum Act {
    /// A form, a confirmation or a view on top of the grid.
    Open(Overlay),
    /// A lookup for the feed task (nothing changes in the shop).
    Ask(Request),
    /// Why not, for the status line.
    Refuse(String),
}

/// One area, as the app routes to it.
pub trait Panel {
    fn list(&self) -> &ListState;
    fn list_mut(&mut self) -> &mut ListState;
    /// Rows of the area's list after its filter.
    fn row_count(&self) -> usize;
    /// Draws into the area's inner rect; returns how many list rows it had room for.
    fn draw(&self, buf: &mut Buffer, rect: Rect, view: &View, theme: Theme) -> usize;
    /// An action key on the selected row; None when the area has no such action.
    fn verb(&self, _verb: Verb) -> Option<Act> {
        None
    }
    /// An event from the log or the live stream, decoded; each area takes
    /// the kinds it shows and leaves the rest.
    fn event(&mut self, _at: OffsetDateTime, _data: &EventData) {}
}

/// Whether a row matches a list's filter: any of its fields contains the
/// (lower-cased) needle.
pub(crate) fn matches<'a>(needle: &str, fields: impl IntoIterator<Item = &'a str>) -> bool {
    needle.is_empty()
        || fields
            .into_iter()
            .any(|field| field.to_lowercase().contains(needle))
}
