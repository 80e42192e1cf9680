//! The in-memory inverted index: every active product's words, ranked with
//! BM25F, with typo tolerance, filters and facets in one pass.
//!
//! Four fields with their own weights (name 4, category 2.5, attributes
//! 1.5, description 1) and length normalization make up BM25F: a name
//! match beats a description-only match because the name's weight and its
//! shortness both count. A posting is 8 bytes (document slot plus the
//! term's count in each field). Queries are scored term at a time into
//! dense per-document accumulators kept per thread, so a query allocates
//! almost nothing and touches only the postings of its words.
//!
//! Ranking is lexicographic, as Meilisearch's rules are: more query words
//! matched first, then fewer typos, then the score (with a bonus when query
//! words stand next to each other in the name), then the product id, so
//! two equal scores always come out in the same order and paging neither
//! repeats nor skips a product.
//!
//! Each product has a slot. A slot outlives its product being archived or
//! deleted (it is marked dead with the version that removed it), so a
//! product re-read by the start-up build after a newer change was applied
//! is recognised as older and ignored.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};

use rustc_hash::FxHashMap;
use shop_wire::products::ProductId;

use super::text::{self, Word, allowed_typos, edit_distance, is_stop_word};
use super::typo::{BloomStats, LookupStats, TypoIndex};

pub const FIELDS: usize = 4;
const NAME: usize = 0;
const CATEGORY: usize = 1;
const ATTRIBUTES: usize = 2;
const DESCRIPTION: usize = 3;
const FIELD_WEIGHTS: [f32; FIELDS] = [4.0, 2.5, 1.5, 1.0];
const FIELD_B: [f32; FIELDS] = [0.75, 0.5, 0.75, 0.75];
const K1: f32 = 1.2;
/// How much of a word's score a match by typo or prefix keeps.
const ONE_TYPO: f32 = 0.5;
const TWO_TYPOS: f32 = 0.3;
const PREFIX: f32 = 0.6;
/// A query's words beyond this are ignored: bounded work for any input.
pub const MAX_QUERY_WORDS: usize = 10;
/// Prefix matches of the last word considered at most.
const MAX_PREFIX_TERMS: usize = 40;
/// Typo matches of one word considered at most (the most frequent).
const MAX_TYPO_TERMS: usize = 20;
/// Price facet buckets, in minor units: [0, 10.00), [10.00, 25.00), ...
pub const PRICE_BUCKETS: &[i64] = &[1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];
const DEAD_DELETED: u64 = u64::MAX;
/// Products that went in or out of stock remembered for cached pages to
/// check; a page older than this many flips is recomputed.
const FLIP_LOG: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Posting {
    doc: u32,
    tf: [u8; FIELDS],
}

struct Term {
    text: Box<str>,
    postings: Vec<Posting>,
}

struct Doc {
    id: ProductId,
    /// The id's ULID as a number: the tie-break, compared cheaply.
    key: u128,
    sku: Box<str>,
    name: Box<str>,
    category: Option<u32>,
    price_cents: i64,
    available: i64,
    /// The id of the last stock event applied, so an older one is ignored.
    stock_event: u64,
    popularity: f32,
    version: u64,
    live: bool,
    /// Distinct terms, to take the document out of their postings.
    terms: Box<[u32]>,
    /// The name's terms in order, for the phrase bonus.
    name_terms: Box<[u32]>,
}

pub use crate::store::SearchDocument as Document;

/// Categories by path, each with the ids of its ancestors (itself included).
#[derive(Default)]
struct Categories {
    paths: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
    lineage: Vec<Vec<u32>>,
}

impl Categories {
    fn intern(&mut self, path: &str) -> u32 {
        if let Some(id) = self.ids.get(path) {
            return *id;
        }
        let parent = path.rsplit_once('/').map(|(parent, _)| self.intern(parent));
        let id = self.paths.len() as u32;
        let mut lineage = parent.map_or_else(Vec::new, |p| self.lineage[p as usize].clone());
        lineage.push(id);
        self.paths.push(path.into());
        self.ids.insert(path.into(), id);
        self.lineage.push(lineage);
        id
    }

    /// For each category, whether it is `path` or below it.
    fn matching(&self, path: &str) -> Vec<bool> {
        let Some(&wanted) = self.ids.get(path) else {
            return vec![false; self.paths.len()];
        };
        self.lineage.iter().map(|l| l.contains(&wanted)).collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    /// A normalized category path; matches it and everything below it.
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matching {
    /// No words: every product passing the filters, most popular first.
    Browse,
    /// Every (non-stop) word matched.
    All,
    /// No product had every word; products with the most words first.
    Any,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: ProductId,
    pub score: f32,
    pub available: i64,
    /// Query words matched only by a typo or a prefix.
    pub typos: u8,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facets {
    /// Every category holding a result, with its ancestors, and how many results are in its subtree.
    pub categories: Vec<(String, u64)>,
    /// Per bucket of [`PRICE_BUCKETS`] (one more than bounds: the last is open).
    pub prices: Vec<u64>,
    pub in_stock: u64,
    pub out_of_stock: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    pub hits: Vec<Hit>,
    pub total: u64,
    pub facets: Facets,
    pub matching: Matching,
    /// Stems a result may have matched by (exact, typo or prefix), for highlighting.
    pub matched_terms: Vec<String>,
    pub bloom: LookupStats,
}

/// Per-thread scratch: dense accumulators indexed by slot, reset after use.
#[derive(Default)]
struct Scratch {
    score: Vec<f32>,
    mask: Vec<u16>,
    typos: Vec<u8>,
    touched: Vec<u32>,
    word_score: Vec<f32>,
    word_cost: Vec<u8>,
    word_touched: Vec<u32>,
}

impl Scratch {
    fn fit(&mut self, docs: usize) {
        if self.score.len() < docs {
            self.score.resize(docs, 0.0);
            self.mask.resize(docs, 0);
            self.typos.resize(docs, 0);
            self.word_score.resize(docs, 0.0);
            self.word_cost.resize(docs, u8::MAX);
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One way a query word matches: a term, and what matching it costs.
#[derive(Clone, Copy, Debug)]
struct WordMatch {
    term: u32,
    /// 0 exact, 1 or 2 typos, 1 for a prefix.
    cost: u8,
    weight: f32,
}

/// What a stock level did to an indexed product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockChange {
    /// It went in or out of stock: `in_stock` filters and facets may change.
    Flipped,
    /// Its level changed on the same side of zero.
    Level,
    /// An older event than the one applied; nothing changed.
    Older,
}

pub struct Index {
    docs: Vec<Doc>,
    lens: Vec<[u16; FIELDS]>,
    by_id: FxHashMap<ProductId, u32>,
    by_sku: FxHashMap<Box<str>, u32>,
    live: usize,
    field_totals: [u64; FIELDS],
    terms: Vec<Term>,
    /// Stems to terms.
    vocab: FxHashMap<Box<str>, u32>,
    /// Normalized words to their stem's term, in order for prefix lookups;
    /// also saves stemming a word seen before.
    words: BTreeMap<Box<str>, u32>,
    typos: TypoIndex,
    categories: Categories,
    /// The slots of the latest products to go in or out of stock, oldest
    /// first, at most [`FLIP_LOG`] of them.
    flipped: VecDeque<u32>,
    /// How many times a product went in or out of stock, in all.
    flips: u64,
}

/// A query's words as the index matches them.
struct Plan {
    /// How each word may match (see [`Index::expand`]).
    expansions: Vec<Vec<WordMatch>>,
    /// The words a product must match for `Matching::All` (the non-stop ones).
    required: u16,
    /// The product whose SKU the whole query is: it always matches.
    sku_hit: Option<u32>,
}

impl Plan {
    /// Whether the product in `slot`, with these (sorted) terms, is among
    /// the results, before filters, of a query whose words matched as
    /// `matching`.
    fn matches(&self, slot: u32, terms: &[u32], matching: Matching) -> bool {
        if self.sku_hit == Some(slot) {
            return true;
        }
        let mut mask: u16 = 0;
        for (i, matches) in self.expansions.iter().enumerate() {
            if matches.iter().any(|m| terms.binary_search(&m.term).is_ok()) {
                mask |= 1 << i;
            }
        }
        match matching {
            Matching::All => mask & self.required == self.required,
            Matching::Any => mask != 0,
            // A query with words never browses: be safe.
            Matching::Browse => true,
        }
    }
}

fn ulid_key(id: &ProductId) -> u128 {
    id.as_str()
        .split_once('_')
        .and_then(|(_, body)| ulid::Ulid::from_string(body).ok())
        .map_or(0, u128::from)
}

fn saturating_u8(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

impl Index {
    pub fn new(bloom_false_positive_rate: f64) -> Self {
        Index {
            docs: Vec::new(),
            lens: Vec::new(),
            by_id: FxHashMap::default(),
            by_sku: FxHashMap::default(),
            live: 0,
            field_totals: [0; FIELDS],
            terms: Vec::new(),
            vocab: FxHashMap::default(),
            words: BTreeMap::new(),
            typos: TypoIndex::new(bloom_false_positive_rate),
            categories: Categories::default(),
            flipped: VecDeque::new(),
            flips: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// The term of a normalized word, stemming (and remembering) it if new.
    fn term_for(&mut self, word: &str) -> u32 {
        if let Some(term) = self.words.get(word) {
            return *term;
        }
        let stem = text::stem(word).into_owned();
        let term = match self.vocab.get(stem.as_str()) {
            Some(term) => *term,
            None => {
                let term = self.terms.len() as u32;
                self.typos.add(term, &stem);
                self.terms.push(Term {
                    text: stem.clone().into(),
                    postings: Vec::new(),
                });
                self.vocab.insert(stem.into(), term);
                term
            }
        };
        self.words.insert(word.into(), term);
        term
    }

    /// The term a normalized word was indexed under, if any document had it.
    pub fn known_term(&self, word: &str) -> Option<&str> {
        let term = match self.words.get(word) {
            Some(term) => *term,
            None => *self.vocab.get(text::stem(word).as_ref())?,
        };
        Some(&self.terms[term as usize].text)
    }

    /// Adds or replaces a product. Returns false (and changes nothing) when
    /// the index already reflects a newer version of it.
    pub fn upsert(&mut self, document: Document) -> bool {
        let Document {
            product,
            available,
            popularity,
        } = document;
        if !product.active {
            self.remove(&product.id, product.version);
            return true;
        }
        let mut was_live = false;
        let slot = match self.by_id.get(&product.id) {
            Some(&slot) => {
                let doc = &self.docs[slot as usize];
                if doc.version > product.version {
                    return false;
                }
                was_live = doc.live;
                self.unlink(slot);
                Some(slot)
            }
            None => None,
        };
        let slot = slot.unwrap_or_else(|| self.new_slot(&product.id, 0));

        let mut counts: FxHashMap<u32, [u8; FIELDS]> = FxHashMap::default();
        let mut lens = [0u16; FIELDS];
        let mut name_terms = Vec::new();
        let mut add =
            |index: &mut Index, field: usize, text: &str, order: Option<&mut Vec<u32>>| {
                let mut order = order;
                text::for_each_word(text, |word: Word| {
                    let term = index.term_for(&word.normalized);
                    let tf = &mut counts.entry(term).or_insert([0; FIELDS])[field];
                    *tf = tf.saturating_add(1);
                    lens[field] = lens[field].saturating_add(1);
                    if let Some(order) = order.as_deref_mut() {
                        order.push(term);
                    }
                });
            };
        add(self, NAME, &product.name, Some(&mut name_terms));
        if let Some(category) = &product.category {
            add(self, CATEGORY, category, None);
        }
        for (key, value) in &product.attributes {
            add(self, ATTRIBUTES, key, None);
            add(self, ATTRIBUTES, value, None);
        }
        add(self, DESCRIPTION, &product.description, None);

        let mut terms: Vec<u32> = counts.keys().copied().collect();
        terms.sort_unstable();
        for &term in &terms {
            let postings = &mut self.terms[term as usize].postings;
            let posting = Posting {
                doc: slot,
                tf: counts[&term],
            };
            // Slots are mostly appended, so this is mostly a push.
            match postings.last() {
                Some(last) if last.doc > slot => {
                    let at = postings.partition_point(|p| p.doc < slot);
                    postings.insert(at, posting);
                }
                _ => postings.push(posting),
            }
        }
        let category = product
            .category
            .as_deref()
            .map(|path| self.categories.intern(path));
        for (total, len) in self.field_totals.iter_mut().zip(lens) {
            *total += u64::from(len);
        }
        self.lens[slot as usize] = lens;
        let doc = &mut self.docs[slot as usize];
        // A live product's stock is kept by stock events, which may be newer
        // than the copy read with the product.
        if !was_live {
            doc.available = available;
        }
        doc.name = product.name.as_str().into();
        doc.sku = product.sku.as_str().into();
        doc.category = category;
        doc.price_cents = product.price_cents;
        doc.popularity = popularity;
        doc.version = product.version;
        doc.live = true;
        doc.terms = terms.into_boxed_slice();
        doc.name_terms = name_terms.into_boxed_slice();
        self.by_sku.insert(product.sku.into(), slot);
        self.live += 1;
        true
    }

    /// A dead slot for a product not seen before, remembering `version`.
    fn new_slot(&mut self, id: &ProductId, version: u64) -> u32 {
        let slot = self.docs.len() as u32;
        self.docs.push(Doc {
            key: ulid_key(id),
            id: id.clone(),
            sku: "".into(),
            name: "".into(),
            category: None,
            price_cents: 0,
            available: 0,
            stock_event: 0,
            popularity: 0.0,
            version,
            live: false,
            terms: Box::new([]),
            name_terms: Box::new([]),
        });
        self.lens.push([0; FIELDS]);
        self.by_id.insert(id.clone(), slot);
        slot
    }

    /// Takes a live document out of its postings and the totals.
    fn unlink(&mut self, slot: u32) {
        let doc = &mut self.docs[slot as usize];
        if !doc.live {
            return;
        }
        doc.live = false;
        let terms = std::mem::take(&mut doc.terms);
        if self.by_sku.get(&doc.sku) == Some(&slot) {
            self.by_sku.remove(&doc.sku);
        }
        for term in terms.iter() {
            let postings = &mut self.terms[*term as usize].postings;
            if let Ok(at) = postings.binary_search_by_key(&slot, |p| p.doc) {
                postings.remove(at);
            }
        }
        for (total, len) in self.field_totals.iter_mut().zip(self.lens[slot as usize]) {
            *total -= u64::from(len);
        }
        self.live -= 1;
    }

    /// Takes a product out (archived at `version`, or deleted with
    /// `u64::MAX`), remembering the version so an older copy is not re-added.
    pub fn remove(&mut self, id: &ProductId, version: u64) {
        match self.by_id.get(id) {
            Some(&slot) => {
                if self.docs[slot as usize].version > version {
                    return;
                }
                self.unlink(slot);
                self.docs[slot as usize].version = version;
            }
            None => {
                self.new_slot(id, version);
            }
        }
    }

    pub fn delete(&mut self, id: &ProductId) {
        self.remove(id, DEAD_DELETED);
    }

    /// Applies a stock level from an `inventory.*` event; `None` when the
    /// SKU is not indexed (the caller may keep it for later).
    pub fn set_available(
        &mut self,
        sku: &str,
        available: i64,
        event_id: u64,
    ) -> Option<StockChange> {
        let &slot = self.by_sku.get(sku)?;
        let doc = &mut self.docs[slot as usize];
        if event_id <= doc.stock_event {
            return Some(StockChange::Older);
        }
        let flipped = (doc.available > 0) != (available > 0);
        doc.available = available;
        doc.stock_event = event_id;
        Some(if flipped {
            if self.flipped.len() == FLIP_LOG {
                self.flipped.pop_front();
            }
            self.flipped.push_back(slot);
            self.flips += 1;
            StockChange::Flipped
        } else {
            StockChange::Level
        })
    }

    pub fn set_popularity(&mut self, id: &ProductId, popularity: f32) {
        if let Some(&slot) = self.by_id.get(id) {
            self.docs[slot as usize].popularity = popularity;
        }
    }

    /// Folds pending typo entries in; call after a burst of additions.
    pub fn settle(&mut self) {
        self.typos.merge();
    }

    /// Gives back what the build's growing vectors over-allocated (up to
    /// half of the postings); after the build, when they stop growing.
    pub fn compact(&mut self) {
        for term in &mut self.terms {
            term.postings.shrink_to_fit();
        }
        self.docs.shrink_to_fit();
        self.lens.shrink_to_fit();
    }

    pub fn contains(&self, id: &ProductId) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|slot| self.docs[*slot as usize].live)
    }

    pub fn id_of_sku(&self, sku: &str) -> Option<&ProductId> {
        self.by_sku
            .get(sku)
            .map(|slot| &self.docs[*slot as usize].id)
    }

    pub fn available(&self, id: &ProductId) -> Option<i64> {
        let slot = *self.by_id.get(id)?;
        let doc = &self.docs[slot as usize];
        doc.live.then_some(doc.available)
    }

    pub fn category_of(&self, id: &ProductId) -> Option<&str> {
        let slot = *self.by_id.get(id)?;
        let doc = &self.docs[slot as usize];
        doc.category
            .filter(|_| doc.live)
            .map(|c| &*self.categories.paths[c as usize])
    }

    pub fn bloom_stats(&self) -> BloomStats {
        self.typos.bloom_stats()
    }

    /// The names of live products with their popularity, for suggestions.
    pub fn for_each_name(&self, mut each: impl FnMut(&str, f32)) {
        for doc in self.docs.iter().filter(|d| d.live) {
            each(&doc.name, doc.popularity);
        }
    }

    /// Roughly what the index holds on the heap, in bytes.
    pub fn heap_bytes(&self) -> usize {
        let postings: usize = self
            .terms
            .iter()
            .map(|t| t.postings.capacity() * std::mem::size_of::<Posting>() + t.text.len() + 32)
            .sum();
        let docs: usize = self
            .docs
            .iter()
            .map(|d| {
                std::mem::size_of::<Doc>()
                    + d.id.as_str().len()
                    + d.sku.len()
                    + d.name.len()
                    + (d.terms.len() + d.name_terms.len()) * 4
            })
            .sum();
        let words: usize = self.words.keys().map(|w| w.len() + 48).sum();
        let maps =
            (self.by_id.capacity() + self.by_sku.capacity()) * 48 + self.vocab.capacity() * 32;
        postings
            + docs
            + self.lens.capacity() * std::mem::size_of::<[u16; FIELDS]>()
            + words
            + maps
            + self.typos.heap_bytes()
    }

    /// How a query word may match: its term exactly, terms within its
    /// allowed typos, and (the last word, while it is being typed) terms
    /// of words it begins.
    fn expand(&self, word: &str, prefix: bool, stats: &mut LookupStats) -> Vec<WordMatch> {
        let mut matches: Vec<WordMatch> = Vec::new();
        let stem = text::stem(word);
        let exact = self
            .words
            .get(word)
            .or_else(|| self.vocab.get(stem.as_ref()))
            .copied();
        if let Some(term) = exact {
            matches.push(WordMatch {
                term,
                cost: 0,
                weight: 1.0,
            });
        }
        let max = allowed_typos(word.chars().count());
        if max > 0 {
            let mut candidates = Vec::new();
            self.typos.candidates(&stem, &mut candidates, stats);
            if stem.as_ref() != word {
                self.typos.candidates(word, &mut candidates, stats);
            }
            candidates.sort_unstable();
            candidates.dedup();
            let mut typo_matches: Vec<WordMatch> = candidates
                .into_iter()
                .filter(|t| Some(*t) != exact)
                .filter_map(|term| {
                    let text = &self.terms[term as usize].text;
                    let distance = edit_distance(&stem, text, max)
                        .into_iter()
                        .chain(edit_distance(word, text, max))
                        .min()?;
                    (distance > 0).then_some(WordMatch {
                        term,
                        cost: distance as u8,
                        weight: if distance == 1 { ONE_TYPO } else { TWO_TYPOS },
                    })
                })
                .filter(|m| !self.terms[m.term as usize].postings.is_empty())
                .collect();
            typo_matches.sort_by_key(|m| {
                (
                    m.cost,
                    std::cmp::Reverse(self.terms[m.term as usize].postings.len()),
                )
            });
            typo_matches.truncate(MAX_TYPO_TERMS);
            matches.extend(typo_matches);
        }
        if prefix && word.chars().count() >= 2 {
            let mut prefixed: Vec<WordMatch> = self
                .words
                .range::<str, _>((std::ops::Bound::Excluded(word), std::ops::Bound::Unbounded))
                .take_while(|(w, _)| w.starts_with(word))
                .map(|(_, term)| *term)
                .filter(|term| !matches.iter().any(|m| m.term == *term))
                .map(|term| WordMatch {
                    term,
                    cost: 1,
                    weight: PREFIX,
                })
                .collect();
            prefixed.sort_by_key(|m| {
                (
                    std::cmp::Reverse(self.terms[m.term as usize].postings.len()),
                    m.term,
                )
            });
            prefixed.dedup_by_key(|m| m.term);
            prefixed.truncate(MAX_PREFIX_TERMS);
            matches.extend(prefixed);
        }
        matches
    }

    fn passes(&self, doc: &Doc, filters: &Filters, categories: Option<&[bool]>) -> bool {
        if let Some(categories) = categories
            && !doc.category.is_some_and(|c| categories[c as usize])
        {
            return false;
        }
        if filters.min_price.is_some_and(|min| doc.price_cents < min)
            || filters.max_price.is_some_and(|max| doc.price_cents > max)
        {
            return false;
        }
        match filters.in_stock {
            Some(true) => doc.available > 0,
            Some(false) => doc.available <= 0,
            None => true,
        }
    }

    /// How `query`'s words match; `None` when it has none (a browse).
    fn plan(&self, query: &str, bloom: &mut LookupStats) -> Option<Plan> {
        let parsed = text::words(query);
        let words: Vec<&Word> = parsed.iter().take(MAX_QUERY_WORDS).collect();
        if words.is_empty() {
            return None;
        }
        // The last word may be half typed, unless the query ends in a separator.
        let typing = words.len() == parsed.len()
            && query.chars().last().is_some_and(|c| c.is_alphanumeric());
        let expansions: Vec<Vec<WordMatch>> = words
            .iter()
            .enumerate()
            .map(|(i, w)| self.expand(&w.normalized, typing && i + 1 == words.len(), bloom))
            .collect();
        let all_stop = words.iter().all(|w| is_stop_word(&w.normalized));
        let mut required: u16 = 0;
        for (i, w) in words.iter().enumerate() {
            if all_stop || !is_stop_word(&w.normalized) {
                required |= 1 << i;
            }
        }
        let sku_hit = self
            .by_sku
            .get(query.trim().to_ascii_uppercase().as_str())
            .copied();
        Some(Plan {
            expansions,
            required,
            sku_hit,
        })
    }

    /// Ranks the products matching `query` and `filters` and returns the
    /// page `offset..offset + limit` with the total and the facets.
    pub fn search(&self, query: &str, filters: &Filters, offset: usize, limit: usize) -> Ranked {
        let categories_matching = filters
            .category
            .as_deref()
            .map(|c| self.categories.matching(c));
        let categories = categories_matching.as_deref();
        let mut bloom = LookupStats::default();
        let Some(Plan {
            expansions,
            required,
            sku_hit,
        }) = self.plan(query, &mut bloom)
        else {
            return self.browse(filters, categories, offset, limit);
        };
        let mut matched_terms: Vec<String> = expansions
            .iter()
            .flatten()
            .map(|m| self.terms[m.term as usize].text.to_string())
            .collect();
        matched_terms.sort();
        matched_terms.dedup();

        let live = self.live.max(1) as f32;
        let averages: [f32; FIELDS] =
            std::array::from_fn(|f| (self.field_totals[f] as f32 / live).max(1.0));

        SCRATCH.with(|scratch| {
            let mut s = scratch.borrow_mut();
            let s = &mut *s;
            s.fit(self.docs.len());
            for (i, matches) in expansions.iter().enumerate() {
                for m in matches {
                    let postings = &self.terms[m.term as usize].postings;
                    let df = postings.len() as f32;
                    let idf = (1.0 + (live - df + 0.5) / (df + 0.5)).ln();
                    for p in postings {
                        let lens = &self.lens[p.doc as usize];
                        let mut tf = 0.0f32;
                        for f in 0..FIELDS {
                            if p.tf[f] > 0 {
                                let norm = 1.0 - FIELD_B[f]
                                    + FIELD_B[f] * f32::from(lens[f]) / averages[f];
                                tf += FIELD_WEIGHTS[f] * f32::from(p.tf[f]) / norm;
                            }
                        }
                        let score = m.weight * idf * tf * (K1 + 1.0) / (tf + K1);
                        let d = p.doc as usize;
                        if s.word_cost[d] == u8::MAX {
                            s.word_touched.push(p.doc);
                            s.word_score[d] = score;
                            s.word_cost[d] = m.cost;
                        } else {
                            s.word_score[d] = s.word_score[d].max(score);
                            s.word_cost[d] = s.word_cost[d].min(m.cost);
                        }
                    }
                }
                for &d in &s.word_touched {
                    let d = d as usize;
                    if s.mask[d] == 0 {
                        s.touched.push(d as u32);
                    }
                    s.mask[d] |= 1 << i;
                    s.score[d] += s.word_score[d];
                    s.typos[d] = s.typos[d].saturating_add(s.word_cost[d]);
                    s.word_score[d] = 0.0;
                    s.word_cost[d] = u8::MAX;
                }
                s.word_touched.clear();
            }
            if let Some(slot) = sku_hit {
                let d = slot as usize;
                if s.mask[d] == 0 {
                    s.touched.push(slot);
                }
                s.mask[d] = u16::MAX;
                s.score[d] += 100.0;
            }

            // The exact query words per position, for the phrase bonus.
            let exact: Vec<Option<u32>> = expansions
                .iter()
                .map(|m| m.iter().find(|m| m.cost == 0).map(|m| m.term))
                .collect();
            let all_required = s
                .touched
                .iter()
                .any(|&d| s.mask[d as usize] & required == required);
            let matching = if all_required {
                Matching::All
            } else {
                Matching::Any
            };
            let mut candidates: Vec<(u32, u8, u8, f32)> = Vec::new();
            for &d in &s.touched {
                let doc = &self.docs[d as usize];
                let mask = s.mask[d as usize];
                if (all_required && mask & required != required)
                    || !self.passes(doc, filters, categories)
                {
                    continue;
                }
                let mut score = s.score[d as usize];
                if exact.len() > 1 {
                    let pairs = doc
                        .name_terms
                        .windows(2)
                        .filter(|pair| {
                            exact
                                .windows(2)
                                .any(|q| q[0] == Some(pair[0]) && q[1] == Some(pair[1]))
                        })
                        .count();
                    score *= 1.0 + 0.25 * pairs as f32;
                }
                let matched = saturating_u8((mask & required).count_ones());
                candidates.push((d, matched, s.typos[d as usize], score));
            }
            for &d in &s.touched {
                let d = d as usize;
                s.score[d] = 0.0;
                s.mask[d] = 0;
                s.typos[d] = 0;
            }
            s.touched.clear();

            let facets = self.facets(candidates.iter().map(|c| c.0));
            let total = candidates.len() as u64;
            let order = |a: &(u32, u8, u8, f32), b: &(u32, u8, u8, f32)| {
                b.1.cmp(&a.1)
                    .then(a.2.cmp(&b.2))
                    .then(b.3.total_cmp(&a.3))
                    .then(
                        self.docs[a.0 as usize]
                            .key
                            .cmp(&self.docs[b.0 as usize].key),
                    )
            };
            let page = top(&mut candidates, offset, limit, order);
            let hits = page
                .iter()
                .map(|&(d, _, typos, score)| {
                    let doc = &self.docs[d as usize];
                    Hit {
                        id: doc.id.clone(),
                        score,
                        available: doc.available,
                        typos,
                    }
                })
                .collect();
            Ranked {
                hits,
                total,
                facets,
                matching,
                matched_terms,
                bloom,
            }
        })
    }

    /// How many times a product went in or out of stock so far.
    pub fn flips(&self) -> u64 {
        self.flips
    }

    /// Whether a product that went in or out of stock after the
    /// `since`-th flip may change a page of `query` under `filters`, whose
    /// words matched as `matching`: whether one of them is a result
    /// whatever its stock, so that the `in_stock` facet or filter counts it
    /// differently now. True when the flips since are too many to tell.
    /// Sound only while the catalog is the one the page was computed from
    /// (which words match, and how, depends on it; not on stock).
    pub fn flips_change(
        &self,
        since: u64,
        query: &str,
        filters: &Filters,
        matching: Matching,
    ) -> bool {
        let Ok(behind) = usize::try_from(self.flips.saturating_sub(since)) else {
            return true;
        };
        if behind == 0 {
            return false;
        }
        if behind > self.flipped.len() {
            return true;
        }
        let any_stock = Filters {
            in_stock: None,
            ..filters.clone()
        };
        let categories_matching = filters
            .category
            .as_deref()
            .map(|c| self.categories.matching(c));
        let plan = self.plan(query, &mut LookupStats::default());
        self.flipped
            .iter()
            .skip(self.flipped.len() - behind)
            .any(|&slot| {
                let doc = &self.docs[slot as usize];
                doc.live
                    && self.passes(doc, &any_stock, categories_matching.as_deref())
                    && plan
                        .as_ref()
                        .is_none_or(|plan| plan.matches(slot, &doc.terms, matching))
            })
    }

    fn browse(
        &self,
        filters: &Filters,
        categories: Option<&[bool]>,
        offset: usize,
        limit: usize,
    ) -> Ranked {
        let mut candidates: Vec<u32> = (0..self.docs.len() as u32)
            .filter(|&d| {
                let doc = &self.docs[d as usize];
                doc.live && self.passes(doc, filters, categories)
            })
            .collect();
        let facets = self.facets(candidates.iter().copied());
        let total = candidates.len() as u64;
        let order = |a: &u32, b: &u32| {
            let (a, b) = (&self.docs[*a as usize], &self.docs[*b as usize]);
            b.popularity
                .total_cmp(&a.popularity)
                .then(a.key.cmp(&b.key))
        };
        let hits = top(&mut candidates, offset, limit, order)
            .iter()
            .map(|&d| {
                let doc = &self.docs[d as usize];
                Hit {
                    id: doc.id.clone(),
                    score: doc.popularity,
                    available: doc.available,
                    typos: 0,
                }
            })
            .collect();
        Ranked {
            hits,
            total,
            facets,
            matching: Matching::Browse,
            matched_terms: Vec::new(),
            bloom: LookupStats::default(),
        }
    }

    fn facets(&self, docs: impl Iterator<Item = u32>) -> Facets {
        let mut by_category = vec![0u64; self.categories.paths.len()];
        let mut prices = vec![0u64; PRICE_BUCKETS.len() + 1];
        let (mut in_stock, mut out_of_stock) = (0, 0);
        for d in docs {
            let doc = &self.docs[d as usize];
            if let Some(c) = doc.category {
                for &ancestor in &self.categories.lineage[c as usize] {
                    by_category[ancestor as usize] += 1;
                }
            }
            prices[PRICE_BUCKETS.partition_point(|b| *b <= doc.price_cents)] += 1;
            if doc.available > 0 {
                in_stock += 1;
            } else {
                out_of_stock += 1;
            }
        }
        let mut categories: Vec<(String, u64)> = by_category
            .into_iter()
            .enumerate()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (self.categories.paths[c].to_string(), n))
            .collect();
        categories.sort_by(|a, b| a.0.cmp(&b.0));
        Facets {
            categories,
            prices,
            in_stock,
            out_of_stock,
        }
    }

    /// Live products in `category` or, failing enough, its ancestors'
    /// subtrees (nearest first), most popular and closest to `price` first,
    /// leaving out `exclude`.
    pub fn similar(
        &self,
        category: &str,
        price: i64,
        exclude: &[ProductId],
        limit: usize,
    ) -> Vec<ProductId> {
        let Some(&category) = self.categories.ids.get(category) else {
            return Vec::new();
        };
        let lineage = &self.categories.lineage[category as usize];
        // How deep the shared part of the category path goes.
        let shared = |c: u32| {
            let other = &self.categories.lineage[c as usize];
            lineage
                .iter()
                .zip(other)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let mut candidates: Vec<(usize, &Doc)> = self
            .docs
            .iter()
            .filter(|d| d.live && !exclude.contains(&d.id))
            .filter_map(|d| {
                let depth = shared(d.category?);
                (depth > 0).then_some((depth, d))
            })
            .collect();
        let order = |a: &(usize, &Doc), b: &(usize, &Doc)| {
            b.0.cmp(&a.0)
                .then(b.1.popularity.total_cmp(&a.1.popularity))
                .then(
                    a.1.price_cents
                        .abs_diff(price)
                        .cmp(&b.1.price_cents.abs_diff(price)),
                )
                .then(a.1.key.cmp(&b.1.key))
        };
        top(&mut candidates, 0, limit, order)
            .iter()
            .map(|(_, d)| d.id.clone())
            .collect()
    }
}

/// The items `offset..offset + limit` of `items` in `order`, without
/// sorting the rest: a partial selection, then a sort of the page's prefix.
fn top<T: Copy>(
    items: &mut [T],
    offset: usize,
    limit: usize,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let end = offset.saturating_add(limit).min(items.len());
    if offset >= end {
        return Vec::new();
    }
    if end < items.len() {
        items.select_nth_unstable_by(end - 1, &order);
    }
    let head = &mut items[..end];
    head.sort_unstable_by(&order);
    head[offset..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_wire::products::{Product, ProductRequest};

    fn product(sku: &str, name: &str, category: &str, description: &str, price: i64) -> Product {
        crate::services::products::domain::product_from(ProductRequest {
            sku: sku.to_owned(),
            name: name.to_owned(),
            category: Some(category.to_owned()),
            description: description.to_owned(),
            price_cents: price,
            active: true,
            ..ProductRequest::default()
        })
        .expect("valid")
        .0
    }

    fn doc(product: Product, available: i64) -> Document {
        Document {
            product,
            available,
            popularity: 0.0,
        }
    }

    fn sample() -> (Index, Vec<Product>) {
        let products = vec![
            product(
                "CHAIR-1",
                "Oak Dining Chair",
                "furniture/chairs",
                "A solid seat.",
                12_900,
            ),
            product(
                "CHAIR-2",
                "Walnut Lounge Chair",
                "furniture/chairs",
                "Deep and soft.",
                45_000,
            ),
            product(
                "TABLE-1",
                "Oak Dining Table",
                "furniture/tables",
                "Seats six; pairs with any chair.",
                89_000,
            ),
            product(
                "MUG-1",
                "Stoneware Mug",
                "kitchen/mugs",
                "Holds 350 ml of café au lait.",
                1_800,
            ),
            product(
                "LAMP-1",
                "Desk Lamp",
                "lighting",
                "Brass, with a linen shade.",
                6_500,
            ),
        ];
        let mut index = Index::new(0.01);
        for (i, p) in products.iter().enumerate() {
            assert!(index.upsert(doc(p.clone(), i as i64)));
        }
        index.settle();
        (index, products)
    }

    fn skus(index: &Index, products: &[Product], ranked: &Ranked) -> Vec<String> {
        let _ = index;
        ranked
            .hits
            .iter()
            .map(|h| {
                products
                    .iter()
                    .find(|p| p.id == h.id)
                    .map(|p| p.sku.clone())
                    .expect("a known product")
            })
            .collect()
    }

    #[test]
    fn a_name_match_outranks_a_description_only_match() {
        let (index, products) = sample();
        let ranked = index.search("chair", &Filters::default(), 0, 10);
        let found = skus(&index, &products, &ranked);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found.last().map(String::as_str), Some("TABLE-1"));
        assert_eq!(ranked.matching, Matching::All);
    }

    #[test]
    fn typos_find_the_word_below_exact_matches() {
        let (index, products) = sample();
        let ranked = index.search("chaor", &Filters::default(), 0, 10);
        let found = skus(&index, &products, &ranked);
        assert!(
            found.starts_with(&["CHAIR-1".to_owned()])
                || found.starts_with(&["CHAIR-2".to_owned()]),
            "{found:?}"
        );
        assert!(ranked.hits.iter().all(|h| h.typos == 1));
        assert!(ranked.matched_terms.contains(&"chair".to_owned()));
        assert!(
            index
                .search("chr", &Filters::default(), 0, 10)
                .hits
                .is_empty(),
            "no typo under 5 letters"
        );
    }

    #[test]
    fn accents_plurals_and_case_do_not_matter() {
        let (index, products) = sample();
        assert_eq!(
            skus(
                &index,
                &products,
                &index.search("CAFE", &Filters::default(), 0, 10)
            ),
            ["MUG-1"]
        );
        assert_eq!(
            skus(
                &index,
                &products,
                &index.search("mugs", &Filters::default(), 0, 10)
            ),
            ["MUG-1"]
        );
        assert_eq!(
            skus(
                &index,
                &products,
                &index.search("lamp!!", &Filters::default(), 0, 10)
            ),
            ["LAMP-1"]
        );
    }

    #[test]
    fn filters_and_facets_agree() {
        let (index, products) = sample();
        let filters = Filters {
            category: Some("furniture".to_owned()),
            max_price: Some(50_000),
            ..Filters::default()
        };
        let ranked = index.search("oak", &filters, 0, 10);
        assert_eq!(skus(&index, &products, &ranked), ["CHAIR-1"]);
        assert_eq!(
            ranked.facets.categories,
            [
                ("furniture".to_owned(), 1),
                ("furniture/chairs".to_owned(), 1)
            ]
        );
        let all = index.search("", &Filters::default(), 0, 10);
        assert_eq!(all.matching, Matching::Browse);
        assert_eq!(all.total, 5);
        assert_eq!(all.facets.prices.iter().sum::<u64>(), 5);
        assert_eq!(all.facets.in_stock, 4, "the first product has none");
        let stocked = index.search(
            "",
            &Filters {
                in_stock: Some(true),
                ..Filters::default()
            },
            0,
            10,
        );
        assert_eq!(stocked.total, 4);
        assert!(stocked.hits.iter().all(|h| h.available > 0));
    }

    #[test]
    fn words_together_in_the_name_get_the_phrase_bonus() {
        let (index, products) = sample();
        let ranked = index.search("oak dining", &Filters::default(), 0, 10);
        assert_eq!(skus(&index, &products, &ranked).len(), 2);
        let ranked = index.search("dining chair", &Filters::default(), 0, 10);
        assert_eq!(skus(&index, &products, &ranked)[0], "CHAIR-1");
    }

    #[test]
    fn paging_is_a_stable_total_order() {
        let mut index = Index::new(0.01);
        for i in 0..50 {
            index.upsert(doc(
                product(&format!("SAME-{i}"), "Same Name", "x", "", 100),
                1,
            ));
        }
        let whole: Vec<ProductId> = index
            .search("same", &Filters::default(), 0, 50)
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        let mut paged = Vec::new();
        for page in 0..10 {
            paged.extend(
                index
                    .search("same", &Filters::default(), page * 5, 5)
                    .hits
                    .into_iter()
                    .map(|h| h.id),
            );
        }
        assert_eq!(paged, whole);
        let mut sorted = whole.clone();
        sorted.sort();
        assert_eq!(whole, sorted, "equal scores in id order");
    }

    #[test]
    fn changes_apply_and_older_versions_are_ignored() {
        let (mut index, products) = sample();
        let mut renamed = products[4].clone();
        renamed.name = "Floor Lantern".to_owned();
        renamed.version += 1;
        assert!(index.upsert(doc(renamed.clone(), 3)));
        assert!(
            index
                .search("desk", &Filters::default(), 0, 10)
                .hits
                .is_empty()
        );
        assert_eq!(index.search("lantern", &Filters::default(), 0, 10).total, 1);
        assert!(
            !index.upsert(doc(products[4].clone(), 3)),
            "an older copy is refused"
        );
        assert_eq!(index.search("lantern", &Filters::default(), 0, 10).total, 1);

        index.delete(&products[3].id);
        assert_eq!(index.search("mug", &Filters::default(), 0, 10).total, 0);
        assert!(
            !index.upsert(doc(products[3].clone(), 1)),
            "a deleted product stays deleted"
        );
        let mut archived = renamed;
        archived.active = false;
        archived.version += 1;
        index.upsert(doc(archived, 3));
        assert_eq!(index.search("lantern", &Filters::default(), 0, 10).total, 0);
        assert_eq!(index.len(), 3);
        assert_eq!(
            index.set_available("CHAIR-1", 0, 10),
            Some(StockChange::Level),
            "it had none already"
        );
        assert_eq!(
            index.set_available("CHAIR-1", 7, 11),
            Some(StockChange::Flipped)
        );
        assert_eq!(
            index.set_available("CHAIR-1", 5, 9),
            Some(StockChange::Older),
            "known SKU, older event"
        );
        assert_eq!(
            index.available(&products[0].id),
            Some(7),
            "an older event is ignored"
        );
        assert_eq!(index.set_available("NO-SUCH-SKU", 1, 12), None);
    }

    #[test]
    fn a_stock_flip_changes_the_pages_whose_results_hold_the_product() {
        let (mut index, _) = sample();
        let changes = |index: &Index, since: u64, query: &str, filters: &Filters| {
            let matching = index.search(query, filters, 0, 10).matching;
            index.flips_change(since, query, filters, matching)
        };
        let furniture = |category: &str| Filters {
            category: Some(category.to_owned()),
            ..Filters::default()
        };
        let any = Filters::default();
        assert!(!changes(&index, 0, "chair", &any), "nothing flipped");

        // The mug sells out: pages of mugs, and browsing, count it differently.
        assert_eq!(
            index.set_available("MUG-1", 0, 100),
            Some(StockChange::Flipped)
        );
        assert_eq!(index.flips(), 1);
        assert!(changes(&index, 0, "mug", &any));
        assert!(changes(&index, 0, "stonewar", &any), "by prefix");
        assert!(
            changes(&index, 0, "", &any),
            "browsing counts every product"
        );
        assert!(!changes(&index, 0, "chair", &any));
        assert!(!changes(&index, 0, "", &furniture("furniture")));

        // An oak chair comes back in stock (it had none).
        index.set_available("CHAIR-1", 5, 101);
        assert!(changes(&index, 1, "chair", &any));
        assert!(changes(&index, 1, "chaor", &any), "by a typo");
        let out_of_stock = Filters {
            in_stock: Some(false),
            ..Filters::default()
        };
        assert!(
            changes(&index, 1, "chair", &out_of_stock),
            "it leaves the out-of-stock results"
        );
        assert!(!changes(&index, 1, "chair", &furniture("furniture/tables")));
        let cheap = Filters {
            max_price: Some(10_000),
            ..Filters::default()
        };
        assert!(!changes(&index, 1, "chair", &cheap), "it costs 129.00");
        assert!(!changes(&index, 1, "walnut chair", &any), "not every word");
        assert_eq!(
            index.search("oak lamp", &any, 0, 10).matching,
            Matching::Any
        );
        assert!(
            changes(&index, 1, "oak lamp", &any),
            "no product has both words: any oak one is a result"
        );
        assert!(!changes(&index, 2, "chair", &any), "not since the second");

        // Past the log's reach it cannot tell, and says so.
        for event in 0..=FLIP_LOG as u64 {
            index.set_available("LAMP-1", (event % 2) as i64, 200 + event);
        }
        assert!(changes(&index, 2, "chair", &any));
        assert!(!changes(&index, index.flips() - 1, "chair", &any));
        assert!(changes(&index, index.flips() - 1, "lamp", &any));
    }

    #[test]
    fn similar_products_share_the_nearest_category() {
        let (index, products) = sample();
        let origin = &products[0];
        let similar = index.similar(
            "furniture/chairs",
            origin.price_cents,
            std::slice::from_ref(&origin.id),
            5,
        );
        assert_eq!(similar[0], products[1].id, "same leaf first");
        assert_eq!(similar[1], products[2].id, "then the parent's subtree");
        assert_eq!(similar.len(), 2);
    }

    #[test]
    fn top_pages_like_a_full_sort() {
        let mut items: Vec<u32> = (0..100).rev().collect();
        assert_eq!(
            top(&mut items, 10, 5, |a, b| a.cmp(b)),
            [10, 11, 12, 13, 14]
        );
        assert!(top(&mut items, 200, 5, |a, b| a.cmp(b)).is_empty());
        assert_eq!(top(&mut items, 98, 5, |a, b| a.cmp(b)), [98, 99]);
    }
}
