//! Typo tolerance: which indexed terms are within one or two edits of a
//! query word, found without comparing the word to the whole vocabulary.
//!
//! This is the symmetric-delete method (SymSpell): every term is filed
//! under the hashes of the strings made by deleting up to its allowed
//! number of characters, and a query word looks up its own deletions; two
//! strings within `d` edits always share a deletion of at most `d`
//! characters. Candidates are then checked with the real edit distance.
//! A word of 9 letters makes 45 two-character deletions and nearly all of
//! them are filed under no term, so a Bloom filter of the filed hashes
//! answers those in a few nanoseconds instead of a binary search each.
//!
//! The entries are one sorted vector of (hash, term) pairs (16 bytes each,
//! no per-key allocation). Additions go to a tail that [`TypoIndex::merge`]
//! sorts and merges in (one linear pass); the index calls it after each
//! batch of changes, before any search can see the tail.

use std::hash::{BuildHasher, Hasher};

use fastbloom::BloomFilter;
use rustc_hash::FxBuildHasher;

use super::text::allowed_typos;

/// Terms shorter than this are never reached by a typo: a query word needs
/// 5 letters for one edit, so a term within one edit has at least 4.
const MIN_TERM: usize = 4;
/// A term needs this many letters to be within two edits of a 9-letter word.
const MIN_TERM_TWO_EDITS: usize = 7;

fn hash(text: &str) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// Every string made by deleting up to `max` characters of `word`, and the
/// word itself, as hashes; duplicates are possible and harmless.
fn deletions(word: &str, max: usize, out: &mut Vec<u64>) {
    fn walk(chars: &[char], from: usize, left: usize, buf: &mut String, out: &mut Vec<u64>) {
        if left == 0 {
            return;
        }
        for skip in from..chars.len() {
            buf.clear();
            for (i, c) in chars.iter().enumerate() {
                if i != skip {
                    buf.push(*c);
                }
            }
            out.push(hash(buf));
            if left > 1 {
                let shorter: Vec<char> = buf.chars().collect();
                walk(&shorter, skip, left - 1, &mut String::new(), out);
            }
        }
    }
    out.push(hash(word));
    let chars: Vec<char> = word.chars().collect();
    walk(&chars, 0, max, &mut String::new(), out);
}

/// Bloom filter statistics for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BloomStats {
    /// The rate the filter was sized for.
    pub configured_false_positive_rate: f64,
    /// The rate its current fill implies.
    pub estimated_false_positive_rate: f64,
    pub items: usize,
    pub bits: usize,
}

pub struct TypoIndex {
    sorted: Vec<(u64, u32)>,
    tail: Vec<(u64, u32)>,
    bloom: BloomFilter<FxBuildHasher>,
    bloom_items: usize,
    bloom_capacity: usize,
    false_positive_rate: f64,
}

impl TypoIndex {
    pub fn new(false_positive_rate: f64) -> Self {
        let capacity = 1 << 16;
        TypoIndex {
            sorted: Vec::new(),
            tail: Vec::new(),
            bloom: Self::bloom(false_positive_rate, capacity),
            bloom_items: 0,
            bloom_capacity: capacity,
            false_positive_rate,
        }
    }

    fn bloom(rate: f64, capacity: usize) -> BloomFilter<FxBuildHasher> {
        BloomFilter::with_false_pos(rate)
            .hasher(FxBuildHasher)
            .expected_items(capacity)
    }

    /// Files a new term under its deletions.
    pub fn add(&mut self, term: u32, text: &str) {
        let chars = text.chars().count();
        if chars < MIN_TERM {
            return;
        }
        let max = if chars >= MIN_TERM_TWO_EDITS { 2 } else { 1 };
        let mut hashes = Vec::new();
        deletions(text, max, &mut hashes);
        hashes.sort_unstable();
        hashes.dedup();
        for h in hashes {
            self.tail.push((h, term));
            self.bloom.insert_hash(h);
            self.bloom_items += 1;
        }
    }

    /// Folds the tail into the sorted entries and, when the filter holds
    /// more than it was sized for (its real false-positive rate would
    /// climb), sizes a new one for twice as many.
    pub fn merge(&mut self) {
        if !self.tail.is_empty() {
            self.tail.sort_unstable();
            let old = std::mem::take(&mut self.sorted);
            let mut merged = Vec::with_capacity(old.len() + self.tail.len());
            let (mut a, mut b) = (old.into_iter().peekable(), self.tail.drain(..).peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x <= y => a.next(),
                    (Some(_), Some(_)) => b.next(),
                    (Some(_), None) => a.next(),
                    (None, _) => b.next(),
                };
                match next {
                    Some(entry) => merged.push(entry),
                    None => break,
                }
            }
            self.sorted = merged;
        }
        if self.bloom_items > self.bloom_capacity {
            self.bloom_capacity = self.bloom_items * 2;
            self.bloom = Self::bloom(self.false_positive_rate, self.bloom_capacity);
            for (h, _) in &self.sorted {
                self.bloom.insert_hash(*h);
            }
            self.bloom_items = self.sorted.len();
        }
    }

    /// Terms that may be within the allowed typos of `word` (to be checked
    /// with the real distance), appended to `out`. Counts Bloom outcomes.
    pub fn candidates(&self, word: &str, out: &mut Vec<u32>, stats: &mut LookupStats) {
        let max = allowed_typos(word.chars().count());
        if max == 0 {
            return;
        }
        let mut hashes = Vec::new();
        deletions(word, max, &mut hashes);
        hashes.sort_unstable();
        hashes.dedup();
        for h in hashes {
            if !self.bloom.contains_hash(h) {
                stats.skipped += 1;
                continue;
            }
            let before = out.len();
            let from = self.sorted.partition_point(|(k, _)| *k < h);
            out.extend(
                self.sorted[from..]
                    .iter()
                    .take_while(|(k, _)| *k == h)
                    .map(|(_, t)| *t),
            );
            if out.len() == before {
                stats.false_positives += 1;
            } else {
                stats.found += 1;
            }
        }
    }

    pub fn bloom_stats(&self) -> BloomStats {
        BloomStats {
            configured_false_positive_rate: self.false_positive_rate,
            estimated_false_positive_rate: self.bloom.expected_false_pos(self.bloom_items),
            items: self.bloom_items,
            bits: self.bloom.num_bits(),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        (self.sorted.capacity() + self.tail.capacity()) * std::mem::size_of::<(u64, u32)>()
            + self.bloom.num_bits() / 8
    }
}

/// What the Bloom filter did for the lookups of one query.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LookupStats {
    /// Definitely absent: the lookup was skipped.
    pub skipped: u64,
    /// Possibly present and present.
    pub found: u64,
    /// Possibly present but absent: a wasted lookup.
    pub false_positives: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::search::text::edit_distance;

    fn index(terms: &[&str]) -> TypoIndex {
        let mut index = TypoIndex::new(0.01);
        for (i, t) in terms.iter().enumerate() {
            index.add(i as u32, t);
        }
        index
    }

    fn within(index: &TypoIndex, terms: &[&str], word: &str) -> Vec<String> {
        let mut out = Vec::new();
        index.candidates(word, &mut out, &mut LookupStats::default());
        let max = allowed_typos(word.chars().count());
        let mut found: Vec<String> = out
            .into_iter()
            .map(|t| terms[t as usize].to_owned())
            .filter(|t| edit_distance(word, t, max).is_some())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn one_edit_from_five_letters_two_from_nine() {
        let terms = [
            "chair",
            "chain",
            "table",
            "armchair",
            "stainless",
            "stockpot",
        ];
        let mut index = index(&terms);
        index.merge();
        assert_eq!(within(&index, &terms, "chiar"), ["chair"]);
        assert_eq!(within(&index, &terms, "chaii"), ["chain", "chair"]);
        assert_eq!(
            within(&index, &terms, "tabl"),
            Vec::<String>::new(),
            "4 letters: exact only"
        );
        assert_eq!(within(&index, &terms, "stainlses"), ["stainless"]);
        assert_eq!(
            within(&index, &terms, "stanless"),
            ["stainless"],
            "8 letters: one edit"
        );
        assert_eq!(
            within(&index, &terms, "stinlessx"),
            ["stainless"],
            "9 letters: two edits"
        );
        assert_eq!(within(&index, &terms, "stockpt"), ["stockpot"]);
    }

    #[test]
    fn the_bloom_filter_skips_most_lookups_and_grows_with_the_terms() {
        let mut index = TypoIndex::new(0.01);
        for i in 0..5_000u32 {
            index.add(i, &format!("term{i:05}x"));
        }
        index.merge();
        let stats = index.bloom_stats();
        assert!(stats.items <= stats.bits, "{stats:?}");
        assert!(stats.estimated_false_positive_rate < 0.02, "{stats:?}");
        let mut lookups = LookupStats::default();
        index.candidates("qwxzvbnmkj", &mut Vec::new(), &mut lookups);
        assert!(lookups.skipped > 40, "{lookups:?}");
        assert!(lookups.false_positives < 5, "{lookups:?}");
        let mut out = Vec::new();
        index.candidates("term01234y", &mut out, &mut LookupStats::default());
        assert!(out.contains(&1234));
    }
}
