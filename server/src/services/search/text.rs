//! How text becomes terms: the one tokenizer the index, the queries and the
//! highlighter share, so a word is found exactly when it was indexed.
//!
//! A word is a run of letters and digits (an apostrophe inside a word is
//! dropped, so `chef's` is `chefs`); everything else separates words, which
//! is also why query syntax characters (`"`, `*`, `:`, `(`) mean nothing.
//! Words are lower-cased and lose their accents (NFKD, combining marks
//! dropped, plus the letters NFKD leaves alone such as `ß` and `ø`), then
//! stemmed with Snowball's English stemmer, so `Chairs`, `chair` and
//! `CHAIR'S` are one term and `café` matches `cafe`.

use std::borrow::Cow;
use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Words longer than this are cut: nothing real is longer, and a 10 KB
/// "word" must not cost 10 KB of work per step downstream.
pub const MAX_WORD: usize = 48;

static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// Words that say little about a product: a query does not require them to
/// match (they still score), so "chair for office" finds office chairs.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "at", "by", "for", "from", "in", "is", "it", "of", "on", "or", "the", "to",
    "with",
];

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// A word of a text: where it is (byte offsets into the text) and its
/// normalized form (lower case, no accents), before stemming.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub start: usize,
    pub end: usize,
    pub normalized: String,
}

/// Appends `c` lower-cased and without accents.
fn push_folded(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    // Letters NFKD does not decompose into a base letter and a mark.
    let special = match c {
        'ß' | 'ẞ' => Some("ss"),
        'æ' | 'Æ' => Some("ae"),
        'œ' | 'Œ' => Some("oe"),
        'ø' | 'Ø' => Some("o"),
        'ł' | 'Ł' => Some("l"),
        'đ' | 'Đ' => Some("d"),
        'þ' | 'Þ' => Some("th"),
        'ı' => Some("i"),
        _ => None,
    };
    if let Some(text) = special {
        out.push_str(text);
        return;
    }
    for d in std::iter::once(c).nfkd() {
        if !is_combining_mark(d) {
            out.extend(d.to_lowercase());
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Calls `each` with every word of `text`, in order.
pub fn for_each_word(text: &str, mut each: impl FnMut(Word)) {
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_word_char(c) {
            continue;
        }
        let mut normalized = String::new();
        push_folded(&mut normalized, c);
        let mut end = start + c.len_utf8();
        while let Some(&(at, next)) = chars.peek() {
            if is_word_char(next) {
                push_folded(&mut normalized, next);
            } else if matches!(next, '\'' | '’') {
                // Inside a word only: `chef's` is one word, a closing quote is not.
                let mut ahead = chars.clone();
                ahead.next();
                if !ahead.peek().is_some_and(|&(_, c)| is_word_char(c)) {
                    break;
                }
            } else {
                break;
            }
            end = at + next.len_utf8();
            chars.next();
        }
        if normalized.len() > MAX_WORD {
            let mut cut = MAX_WORD;
            while !normalized.is_char_boundary(cut) {
                cut -= 1;
            }
            normalized.truncate(cut);
        }
        each(Word {
            start,
            end,
            normalized,
        });
    }
}

/// The words of `text`, normalized, in order.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for_each_word(text, |w| out.push(w));
    out
}

/// The stem of a normalized word: the form the index keeps.
pub fn stem(normalized: &str) -> Cow<'_, str> {
    // Numbers and codes are not English words; the stemmer would cut `100s`.
    if normalized.chars().any(|c| c.is_ascii_digit()) || normalized.chars().count() < 3 {
        return Cow::Borrowed(normalized);
    }
    STEMMER.stem(normalized)
}

/// `text` lower-cased, without accents, its words separated by one space:
/// the form suggestions and analytics compare queries in.
pub fn normalize_phrase(text: &str) -> String {
    let mut out = String::new();
    for_each_word(text, |w| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&w.normalized);
    });
    out
}

/// Escapes text for the HTML a highlight is (`<em>` marks the matches).
pub fn escape_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
}

/// Optimal string alignment distance (Levenshtein plus swapping two
/// neighbours as one edit, so `chiar` is one edit from `chair`), or `None`
/// once it is certainly above `max`.
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let width = b.len() + 1;
    let mut rows = vec![vec![0usize; width]; 3];
    for (j, cell) in rows[1].iter_mut().enumerate() {
        *cell = j;
    }
    // rows[0]: two rows up, rows[1]: previous, rows[2]: current.
    for i in 1..=a.len() {
        rows[2][0] = i;
        let mut best = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut value = (rows[1][j] + 1)
                .min(rows[2][j - 1] + 1)
                .min(rows[1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                value = value.min(rows[0][j - 2] + 1);
            }
            rows[2][j] = value;
            best = best.min(value);
        }
        if best > max {
            return None;
        }
        rows.rotate_left(1);
    }
    // After the last rotation the final row is rows[1].
    let distance = rows[1][b.len()];
    (distance <= max).then_some(distance)
}

/// How many edits a query word of this many characters may have, as
/// Meilisearch allows them: none under 5, one from 5, two from 9.
pub fn allowed_typos(chars: usize) -> usize {
    match chars {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.normalized).collect()
    }

    #[test]
    fn words_fold_case_accents_and_punctuation() {
        assert_eq!(
            normalized("Café Atelier: CHEF'S Knife (20 cm), Müller-Haus; Fjällstrand ß"),
            [
                "cafe",
                "atelier",
                "chefs",
                "knife",
                "20",
                "cm",
                "muller",
                "haus",
                "fjallstrand",
                "ss"
            ]
        );
        assert_eq!(
            normalized("\"oak\" AND (chair*) -x:y 'quoted'"),
            ["oak", "and", "chair", "x", "y", "quoted"]
        );
        assert!(normalized("!!! --- ***").is_empty());
    }

    #[test]
    fn word_offsets_point_into_the_original_text() {
        let text = "Zoë's  café";
        let found = words(text);
        assert_eq!(&text[found[0].start..found[0].end], "Zoë's");
        assert_eq!(&text[found[1].start..found[1].end], "café");
    }

    #[test]
    fn plurals_and_forms_share_a_stem() {
        assert_eq!(stem("chairs"), stem("chair"));
        assert_eq!(stem("dresses"), stem("dress"));
        assert_eq!(stem("tables"), stem("table"));
        assert_eq!(stem("running"), "run");
        assert_eq!(stem("100s"), "100s", "codes are left alone");
    }

    #[test]
    fn a_huge_word_is_cut() {
        let long = "x".repeat(10_000);
        assert_eq!(normalized(&long)[0].len(), MAX_WORD);
        let accented = "é".repeat(100);
        assert!(normalized(&accented)[0].len() <= MAX_WORD);
    }

    #[test]
    fn transpositions_are_one_edit() {
        assert_eq!(edit_distance("chiar", "chair", 1), Some(1));
        assert_eq!(edit_distance("chair", "chair", 1), Some(0));
        assert_eq!(edit_distance("chr", "chair", 1), None);
        assert_eq!(edit_distance("kitten", "sitting", 3), Some(3));
        assert_eq!(edit_distance("kitten", "sitting", 2), None);
        assert_eq!(edit_distance("", "ab", 2), Some(2));
    }

    #[test]
    fn phrases_normalize_for_comparison() {
        assert_eq!(normalize_phrase("  Oak   CHAIRS! "), "oak chairs");
        let mut html = String::new();
        escape_html(&mut html, "<b>&\"");
        assert_eq!(html, "&lt;b&gt;&amp;&quot;");
    }
}
