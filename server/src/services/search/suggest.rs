//! Autocomplete: the phrases a prefix can complete to, most popular first.
//!
//! The phrases are every tail of every product name ("Oakhurst Oak Dining
//! Chair", "Oak Dining Chair", "Dining Chair", "Chair"), so a prefix
//! completes from any word of a name, plus the queries people searched
//! that found something. A phrase scores by how popular its products are
//! (purchases and views), how many products share it, and how often it was
//! searched.
//!
//! The normalized phrases are the keys of an FST (the `fst` crate) whose
//! value is the key's position in sorted order, so the keys a prefix
//! completes to are one contiguous range of positions, found by two range
//! lookups in the FST. A max segment tree over the scores in that order then
//! yields the best k of the range without visiting the rest: answering is
//! O(k log n) whatever the prefix, typically a few microseconds.

use std::collections::{BinaryHeap, HashMap};

use fst::{IntoStreamer, Map, MapBuilder, Streamer};

use super::text;

/// Phrases are made from names of at most this many words (a longer name
/// still gives its last ones).
const MAX_PHRASE_WORDS: usize = 12;

/// What one phrase contributes before the suggester is built.
#[derive(Debug, Default)]
pub struct Phrases {
    entries: HashMap<String, (String, f32)>,
}

impl Phrases {
    /// Adds `score` to a phrase (normalized key), keeping the first display text seen.
    fn add(&mut self, key: String, display: &str, score: f32) {
        let entry = self
            .entries
            .entry(key)
            .or_insert_with(|| (display.to_owned(), 0.0));
        entry.1 += score;
    }

    /// Every tail of a product name, each scored with the product's popularity.
    pub fn add_name(&mut self, name: &str, popularity: f32) {
        let words = text::words(name);
        let skip = words.len().saturating_sub(MAX_PHRASE_WORDS);
        let words = &words[skip..];
        // A product counts for a little even unsold, so common phrases rank
        // above rare ones until sales say otherwise.
        let score = 0.1 + popularity;
        for (i, first) in words.iter().enumerate() {
            let key = words[i..]
                .iter()
                .map(|w| w.normalized.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            self.add(key, name[first.start..].trim_end(), score);
        }
    }

    /// A query people searched `count` times that found something.
    pub fn add_query(&mut self, query: &str, count: u64) {
        let key = text::normalize_phrase(query);
        if !key.is_empty() {
            self.add(key.clone(), &key, 2.0 * count as f32);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

pub struct Suggester {
    keys: Map<Vec<u8>>,
    display: Vec<Box<str>>,
    scores: Vec<f32>,
    /// A max segment tree over positions: `tree[size + i]` is position i;
    /// each inner node holds the position of the best score below it.
    tree: Vec<u32>,
    size: usize,
}

impl Suggester {
    pub fn empty() -> Self {
        Self::build(Phrases::default())
    }

    pub fn build(phrases: Phrases) -> Self {
        let mut entries: Vec<(String, String, f32)> = phrases
            .entries
            .into_iter()
            .map(|(key, (display, score))| (key, display, score))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut builder = MapBuilder::memory();
        for (position, (key, _, _)) in entries.iter().enumerate() {
            // Keys are sorted and unique (they were map keys): insert cannot fail.
            if let Err(err) = builder.insert(key.as_bytes(), position as u64) {
                tracing::error!(error = %err, "suggestion key refused; skipped");
            }
        }
        let keys = builder.into_map();
        let n = entries.len();
        let size = n.next_power_of_two().max(1);
        let mut scores: Vec<f32> = entries.iter().map(|e| e.2).collect();
        let display = entries
            .into_iter()
            .map(|(_, display, _)| display.into_boxed_str())
            .collect();
        scores.shrink_to_fit();
        let mut tree = vec![u32::MAX; 2 * size];
        for i in 0..n {
            tree[size + i] = i as u32;
        }
        for node in (1..size).rev() {
            tree[node] = Self::better(&scores, tree[2 * node], tree[2 * node + 1]);
        }
        Suggester {
            keys,
            display,
            scores,
            tree,
            size,
        }
    }

    /// Of two positions, the one with the higher score (the earlier on a
    /// tie, whichever is passed first, so ties come out alphabetically).
    fn better(scores: &[f32], a: u32, b: u32) -> u32 {
        match (a, b) {
            (u32::MAX, _) => b,
            (_, u32::MAX) => a,
            _ => match scores[b as usize].total_cmp(&scores[a as usize]) {
                std::cmp::Ordering::Greater => b,
                std::cmp::Ordering::Less => a,
                std::cmp::Ordering::Equal => a.min(b),
            },
        }
    }

    /// The best position in `lo..hi`, or `u32::MAX` when empty.
    fn best(&self, lo: usize, hi: usize) -> u32 {
        let (mut l, mut r) = (lo + self.size, hi + self.size);
        let mut best = u32::MAX;
        while l < r {
            if l & 1 == 1 {
                best = Self::better(&self.scores, best, self.tree[l]);
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                best = Self::better(&self.scores, best, self.tree[r]);
            }
            l /= 2;
            r /= 2;
        }
        best
    }

    /// The first position whose key is at least `bound`, or the count.
    fn position(&self, bound: &[u8]) -> usize {
        let mut stream = self.keys.range().ge(bound).into_stream();
        stream
            .next()
            .map_or(self.display.len(), |(_, position)| position as usize)
    }

    pub fn len(&self) -> usize {
        self.display.len()
    }

    pub fn is_empty(&self) -> bool {
        self.display.is_empty()
    }

    /// Up to `k` completions of `prefix`, most popular first.
    pub fn suggest(&self, prefix: &str, k: usize) -> Vec<String> {
        let mut key = text::normalize_phrase(prefix);
        if key.is_empty() || k == 0 {
            return Vec::new();
        }
        // "oak " completes to "oak chair" but not to "oakhurst".
        if prefix.ends_with(char::is_whitespace) {
            key.push(' ');
        }
        let lo = self.position(key.as_bytes());
        let mut upper = key.into_bytes();
        // No UTF-8 text has the byte 0xFF: every key with the prefix sorts below this.
        upper.push(0xFF);
        let hi = self.position(&upper);
        if lo >= hi {
            return Vec::new();
        }
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<(Score, std::cmp::Reverse<u32>, usize, usize)>,
                    lo: usize,
                    hi: usize| {
            if lo < hi {
                let at = self.best(lo, hi);
                heap.push((
                    Score(self.scores[at as usize]),
                    std::cmp::Reverse(at),
                    lo,
                    hi,
                ));
            }
        };
        push(&mut heap, lo, hi);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let Some((_, std::cmp::Reverse(at), lo, hi)) = heap.pop() else {
                break;
            };
            out.push(self.display[at as usize].to_string());
            push(&mut heap, lo, at as usize);
            push(&mut heap, at as usize + 1, hi);
        }
        out
    }

    pub fn heap_bytes(&self) -> usize {
        self.keys.as_fst().as_bytes().len()
            + self.display.iter().map(|d| d.len() + 16).sum::<usize>()
            + self.scores.len() * 4
            + self.tree.len() * 4
    }
}

/// An f32 ordered totally, for the heap.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggester() -> Suggester {
        let mut phrases = Phrases::default();
        phrases.add_name("Oakhurst Oak Dining Chair", 0.0);
        phrases.add_name("Halden Oak Dining Table", 5.0);
        phrases.add_name("Café Atelier Espresso Cup", 0.0);
        phrases.add_query("oak desk", 1);
        Suggester::build(phrases)
    }

    #[test]
    fn completes_from_any_word_of_a_name_most_popular_first() {
        let s = suggester();
        assert_eq!(
            s.suggest("oak d", 10),
            ["Oak Dining Table", "oak desk", "Oak Dining Chair"]
        );
        assert_eq!(s.suggest("din", 1), ["Dining Table"]);
        assert_eq!(s.suggest("CAFE", 10), ["Café Atelier Espresso Cup"]);
        assert_eq!(s.suggest("oak ", 10).len(), 3, "not oakhurst");
        assert_eq!(s.suggest("oak", 10).len(), 4, "oakhurst too");
        assert!(s.suggest("zzz", 10).is_empty());
        assert!(s.suggest("  ", 10).is_empty());
        assert!(Suggester::empty().suggest("a", 5).is_empty());
    }

    #[test]
    fn the_best_k_match_a_full_sort() {
        let mut phrases = Phrases::default();
        for i in 0..500u32 {
            phrases.add_name(&format!("Item {i:03}"), (i * 7919 % 113) as f32);
        }
        let s = Suggester::build(phrases);
        let got = s.suggest("item", 20);
        let mut all: Vec<(f32, String)> = (0..500u32)
            .map(|i| ((i * 7919 % 113) as f32 + 0.1, format!("Item {i:03}")))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let expected: Vec<String> = all.into_iter().take(20).map(|(_, d)| d).collect();
        assert_eq!(got, expected);
    }
}
