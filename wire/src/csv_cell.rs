//! Spreadsheet formula guarding for CSV cells.
//!
//! A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
//! run as a formula by spreadsheet programs (CSV injection: a customer named
//! `=HYPERLINK(...)` reaches an admin's spreadsheet). Such a cell is written
//! with a leading `'`, which spreadsheets show as text. So that reading our
//! own CSV back gives the value that was written, a cell that already starts
//! with `'` before such a character gets one more `'`, and reading removes
//! exactly one `'` from a cell that [`guard`] would have produced.

use std::borrow::Cow;

const GUARD: char = '\'';

/// Whether a spreadsheet would run `cell` as a formula. A plain number such
/// as `-3` (a stock movement) is only a number, and stays as it is.
fn starts_a_formula(cell: &str) -> bool {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => cell.parse::<f64>().is_err(),
        Some(GUARD) => starts_a_formula(&cell[GUARD.len_utf8()..]),
        _ => false,
    }
}

/// The cell as it is written to a CSV file.
pub fn guard(cell: &str) -> Cow<'_, str> {
    if starts_a_formula(cell) {
        Cow::Owned(format!("{GUARD}{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The value of a cell read from a CSV file, undoing [`guard`].
pub fn unguard(cell: &str) -> &str {
    match cell.strip_prefix(GUARD) {
        Some(rest) if starts_a_formula(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_guarded_and_read_back_unchanged() {
        for value in [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+1",
            "-5+cmd|' /C calc'!A0",
            "-5",
            "'-5",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=already",
            "''+twice",
            "'plain apostrophe",
            "'",
            "plain",
            "",
            "a=b",
        ] {
            let written = guard(value);
            let formula_char = matches!(
                written.chars().next(),
                Some('=' | '+' | '-' | '@' | '\t' | '\r')
            );
            assert!(
                !formula_char || written.parse::<f64>().is_ok(),
                "{written:?}"
            );
            assert_eq!(unguard(&written), value, "{value:?} -> {written:?}");
        }
        assert_eq!(guard("=1"), "'=1");
        assert_eq!(guard("-3"), "-3", "a negative number is not a formula");
        assert_eq!(
            guard("'Tis"),
            "'Tis",
            "an apostrophe before text is left alone"
        );
        assert_eq!(unguard("'Tis"), "'Tis");
    }
}
