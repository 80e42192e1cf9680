//! Keys and mouse to actions. Pure: the same key means the same thing in the
//! same mode, which the tests pin down, and the help screen lists.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

use crate::app::Direction;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    FocusNext,
    FocusPrev,
    Focus(Direction),
    /// Enter: the focused area full screen, or back to the grid.
    ToggleZoom,
    /// Esc while zoomed: back to the grid (Esc quits only from the grid).
    Unzoom,
    ToggleHelp,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    /// Enter while filtering: keep the filter, stop typing.
    FilterDone,
    /// Esc while filtering: drop the filter.
    FilterCancel,
    Refresh,
    /// Scroll the focused list by this many rows (negative: up).
    Scroll(i32),
    ScrollTop,
    ScrollBottom,
    /// Act on the selected row.
    Verb(Verb),
    /// `:`: type a command (`:orders`, `:stock low`, `:search chair`).
    StartCommand,
    /// Typing into a form or the command line.
    Type(char),
    TypeBackspace,
    /// Tab in a form: the next field.
    NextField,
    /// Enter in a form or the command line.
    Submit,
    /// `y` on a confirmation.
    Confirm,
    /// Esc (or `n`): close the form, confirmation or view without doing anything.
    Dismiss,
}

/// What can be done to the selected row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// An order: ship it, with a tracking number.
    Ship,
    Cancel,
    Refund,
    /// An order's or a notification's details, or a SKU's ledger.
    Details,
    /// A SKU: adjust its stock with a reason.
    Adjust,
    /// A notification: send it again.
    Resend,
}

impl Verb {
    /// Whether it changes the shop (refused with `--readonly`), rather than
    /// only looking.
    pub fn changes(self) -> bool {
        !matches!(self, Verb::Details)
    }

    /// Where to go for it, when the focused area has no such action.
    pub fn where_to(self) -> &'static str {
        match self {
            Verb::Adjust => "select a SKU in Stock first (Tab moves there)",
            Verb::Resend => "select a notification first (:notifications lists them)",
            _ => "select an order in Orders first (Tab moves there)",
        }
    }
}

/// What keys mean depends on what is on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal {
        zoomed: bool,
    },
    Filtering,
    Help,
    /// A form or the command line takes the keys.
    Typing,
    /// A confirmation: y or n.
    Confirming,
    /// A details view on top: Esc closes it.
    Viewing,
}

/// The rows a page key scrolls.
pub const PAGE: i32 = 10;

pub fn map_key(mode: Mode, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    // Raw mode turns Ctrl-C into a key; it must still stop the program.
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Help => match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => Some(Action::ToggleHelp),
            _ => None,
        },
        Mode::Typing => match key.code {
            KeyCode::Esc => Some(Action::Dismiss),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Tab => Some(Action::NextField),
            KeyCode::Backspace => Some(Action::TypeBackspace),
            KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
            _ => None,
        },
        Mode::Confirming => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirm),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(Action::Dismiss),
            _ => None,
        },
        Mode::Viewing => match key.code {
            KeyCode::Char('q') | KeyCode::Esc | KeyCode::Enter => Some(Action::Dismiss),
            _ => None,
        },
        Mode::Filtering => match key.code {
            KeyCode::Esc => Some(Action::FilterCancel),
            KeyCode::Enter => Some(Action::FilterDone),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) if !ctrl => Some(Action::FilterChar(c)),
            _ => None,
        },
        Mode::Normal { zoomed } => match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Esc if zoomed => Some(Action::Unzoom),
            KeyCode::Esc => Some(Action::Quit),
            KeyCode::Tab => Some(Action::FocusNext),
            KeyCode::BackTab => Some(Action::FocusPrev),
            KeyCode::Enter => Some(Action::ToggleZoom),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Char('/') => Some(Action::StartFilter),
            KeyCode::Char('r') => Some(Action::Refresh),
            // Zoomed there is one area: the arrows scroll it instead.
            KeyCode::Up if zoomed => Some(Action::Scroll(-1)),
            KeyCode::Down if zoomed => Some(Action::Scroll(1)),
            KeyCode::Left if zoomed => Some(Action::FocusPrev),
            KeyCode::Right if zoomed => Some(Action::FocusNext),
            KeyCode::Up => Some(Action::Focus(Direction::Up)),
            KeyCode::Down => Some(Action::Focus(Direction::Down)),
            KeyCode::Left => Some(Action::Focus(Direction::Left)),
            KeyCode::Right => Some(Action::Focus(Direction::Right)),
            KeyCode::Char('j') => Some(Action::Scroll(1)),
            KeyCode::Char('k') => Some(Action::Scroll(-1)),
            KeyCode::PageDown => Some(Action::Scroll(PAGE)),
            KeyCode::PageUp => Some(Action::Scroll(-PAGE)),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::ScrollTop),
            KeyCode::End | KeyCode::Char('G') => Some(Action::ScrollBottom),
            KeyCode::Char(':') => Some(Action::StartCommand),
            KeyCode::Char('s') => Some(Action::Verb(Verb::Ship)),
            KeyCode::Char('c') => Some(Action::Verb(Verb::Cancel)),
            KeyCode::Char('f') => Some(Action::Verb(Verb::Refund)),
            KeyCode::Char('d') | KeyCode::Char('l') => Some(Action::Verb(Verb::Details)),
            KeyCode::Char('a') => Some(Action::Verb(Verb::Adjust)),
            KeyCode::Char('R') => Some(Action::Verb(Verb::Resend)),
            _ => None,
        },
    }
}

/// The mouse wheel scrolls the list it is over; the caller finds which.
pub fn map_mouse(mouse: MouseEvent) -> Option<i32> {
    match mouse.kind {
        MouseEventKind::ScrollDown => Some(3),
        MouseEventKind::ScrollUp => Some(-3),
        _ => None,
    }
}

/// The lines of the help screen: key, meaning.
pub const HELP: &[(&str, &str)] = &[
    ("Tab / Shift-Tab", "next / previous area"),
    ("arrows", "move between areas (zoomed: scroll)"),
    ("Enter", "zoom the focused area / back to all four"),
    ("/", "filter the focused list (Enter keeps, Esc clears)"),
    (
        "j k PgUp PgDn g G",
        "scroll the focused list (or the mouse wheel)",
    ),
    ("j k", "select a row in Orders, Stock or Notifications"),
    ("s c f", "order: ship (tracking), cancel, refund"),
    ("a", "SKU: adjust stock with a reason"),
    ("d or l", "order or notification details / SKU ledger"),
    ("R", "notification: send again (:notifications)"),
    (":", ":orders  :stock low  :search chair  :q"),
    ("r", "refresh now"),
    ("?", "this help"),
    ("q, Esc, Ctrl-C", "quit (Esc first leaves zoom)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    const GRID: Mode = Mode::Normal { zoomed: false };
    const ZOOMED: Mode = Mode::Normal { zoomed: true };

    #[test]
    fn navigation_keys_in_the_grid() {
        assert_eq!(map_key(GRID, key(KeyCode::Tab)), Some(Action::FocusNext));
        assert_eq!(
            map_key(GRID, key(KeyCode::BackTab)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            map_key(GRID, key(KeyCode::Right)),
            Some(Action::Focus(Direction::Right))
        );
        assert_eq!(
            map_key(GRID, key(KeyCode::Up)),
            Some(Action::Focus(Direction::Up))
        );
        assert_eq!(map_key(GRID, key(KeyCode::Enter)), Some(Action::ToggleZoom));
        assert_eq!(
            map_key(GRID, key(KeyCode::Char('r'))),
            Some(Action::Refresh)
        );
        assert_eq!(
            map_key(GRID, key(KeyCode::Char('?'))),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            map_key(GRID, key(KeyCode::Char('/'))),
            Some(Action::StartFilter)
        );
        assert_eq!(map_key(GRID, key(KeyCode::Char('x'))), None);
        assert_eq!(
            map_key(GRID, key(KeyCode::Char(':'))),
            Some(Action::StartCommand)
        );
    }

    #[test]
    fn quitting() {
        assert_eq!(map_key(GRID, key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(map_key(GRID, key(KeyCode::Esc)), Some(Action::Quit));
        assert_eq!(map_key(ZOOMED, key(KeyCode::Esc)), Some(Action::Unzoom));
        assert_eq!(
            map_key(Mode::Help, key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [GRID, ZOOMED, Mode::Filtering, Mode::Help] {
            assert_eq!(map_key(mode, ctrl_c), Some(Action::Quit), "{mode:?}");
        }
    }

    #[test]
    fn zoomed_arrows_scroll() {
        assert_eq!(map_key(ZOOMED, key(KeyCode::Down)), Some(Action::Scroll(1)));
        assert_eq!(map_key(ZOOMED, key(KeyCode::Up)), Some(Action::Scroll(-1)));
        assert_eq!(
            map_key(ZOOMED, key(KeyCode::PageDown)),
            Some(Action::Scroll(PAGE))
        );
    }

    #[test]
    fn g_goes_to_the_top_and_shift_g_to_the_bottom() {
        for mode in [GRID, ZOOMED] {
            assert_eq!(
                map_key(mode, key(KeyCode::Char('g'))),
                Some(Action::ScrollTop)
            );
            let shift_g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
            assert_eq!(map_key(mode, shift_g), Some(Action::ScrollBottom));
            assert_eq!(map_key(mode, key(KeyCode::End)), Some(Action::ScrollBottom));
        }
    }

    #[test]
    fn filtering_takes_every_character() {
        for c in ['q', '/', 'r', '?', 'A', '-'] {
            assert_eq!(
                map_key(Mode::Filtering, key(KeyCode::Char(c))),
                Some(Action::FilterChar(c))
            );
        }
        assert_eq!(
            map_key(Mode::Filtering, key(KeyCode::Esc)),
            Some(Action::FilterCancel)
        );
        assert_eq!(
            map_key(Mode::Filtering, key(KeyCode::Enter)),
            Some(Action::FilterDone)
        );
        assert_eq!(
            map_key(Mode::Filtering, key(KeyCode::Backspace)),
            Some(Action::FilterBackspace)
        );
    }

    #[test]
    fn help_closes_with_esc_or_question_mark() {
        assert_eq!(
            map_key(Mode::Help, key(KeyCode::Esc)),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            map_key(Mode::Help, key(KeyCode::Char('?'))),
            Some(Action::ToggleHelp)
        );
        assert_eq!(map_key(Mode::Help, key(KeyCode::Tab)), None);
    }

    #[test]
    fn actions_on_the_selected_row() {
        for (c, verb) in [
            ('s', Verb::Ship),
            ('c', Verb::Cancel),
            ('f', Verb::Refund),
            ('d', Verb::Details),
            ('l', Verb::Details),
            ('a', Verb::Adjust),
            ('R', Verb::Resend),
        ] {
            assert_eq!(
                map_key(GRID, key(KeyCode::Char(c))),
                Some(Action::Verb(verb))
            );
            assert_eq!(
                map_key(ZOOMED, key(KeyCode::Char(c))),
                Some(Action::Verb(verb))
            );
        }
    }

    #[test]
    fn a_confirmation_takes_only_yes_or_no() {
        let confirming = Mode::Confirming;
        assert_eq!(
            map_key(confirming, key(KeyCode::Char('y'))),
            Some(Action::Confirm)
        );
        assert_eq!(
            map_key(confirming, key(KeyCode::Char('n'))),
            Some(Action::Dismiss)
        );
        assert_eq!(
            map_key(confirming, key(KeyCode::Esc)),
            Some(Action::Dismiss)
        );
        // Enter does not confirm: a change needs a deliberate `y`.
        assert_eq!(map_key(confirming, key(KeyCode::Enter)), None);
        assert_eq!(map_key(confirming, key(KeyCode::Char('q'))), None);
    }

    #[test]
    fn forms_take_every_character_and_tab_moves_on() {
        for c in ['q', 's', ':', '-', '5'] {
            assert_eq!(
                map_key(Mode::Typing, key(KeyCode::Char(c))),
                Some(Action::Type(c))
            );
        }
        assert_eq!(
            map_key(Mode::Typing, key(KeyCode::Tab)),
            Some(Action::NextField)
        );
        assert_eq!(
            map_key(Mode::Typing, key(KeyCode::Enter)),
            Some(Action::Submit)
        );
        assert_eq!(
            map_key(Mode::Typing, key(KeyCode::Esc)),
            Some(Action::Dismiss)
        );
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(map_key(GRID, release), None);
    }

    #[test]
    fn the_wheel_scrolls() {
        let wheel = |kind| MouseEvent {
            kind,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        };
        assert_eq!(map_mouse(wheel(MouseEventKind::ScrollDown)), Some(3));
        assert_eq!(map_mouse(wheel(MouseEventKind::ScrollUp)), Some(-3));
        assert_eq!(map_mouse(wheel(MouseEventKind::Moved)), None);
    }
}
