//! The search index in-process, against SQLite FTS5 on the same products
//! and queries (`bench/run.sh` runs it; see the README's benchmark notes).
//!
//!     python3 fixtures/generate.py --ndjson 100000 > /tmp/p.ndjson
//!     cargo run --release -p shop-server --example search_bench -- /tmp/p.ndjson [QUERIES]
//!
//! Prints `key value` lines: build time and memory, p50/p99 of a mixed
//! query set through the index and through FTS5 (bm25 with the same field
//! weights, the total counted too, as the index reports it), their ratio,
//! and suggest latencies.

use std::io::BufRead;
use std::time::Instant;

use rusqlite::{Connection, params};
use shop_server::search_bench::{
    Filters, Index, Phrases, SearchDocument, Suggester, product_from, text,
};
use shop_wire::products::{Product, ProductRequest};

/// A small deterministic generator (xorshift), so every run asks the same queries.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Query {
    text: String,
    filters: Filters,
}

/// A mix like a storefront's: single words, two and three words from
/// names, brand plus noun, a typo, a prefix being typed, filtered searches
/// and category browsing.
fn queries(products: &[Product], count: usize) -> Vec<Query> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let p = &products[rng.below(products.len())];
        let words: Vec<String> = text::words(&p.name)
            .into_iter()
            .map(|w| w.normalized)
            .collect();
        let desc: Vec<String> = text::words(&p.description)
            .into_iter()
            .map(|w| w.normalized)
            .filter(|w| w.len() > 3)
            .collect();
        let pick = |rng: &mut Rng, from: &[String]| from[rng.below(from.len())].clone();
        let kind = rng.below(10);
        let mut filters = Filters::default();
        let text = match kind {
            0 | 1 => pick(&mut rng, &words),
            2 => {
                let i = rng.below(words.len().saturating_sub(1));
                words[i..(i + 2).min(words.len())].join(" ")
            }
            3 => format!("{} {}", words[0], words[words.len() - 1]),
            4 => {
                // One adjacent swap in a word of 5+ letters.
                let long: Vec<&String> = words.iter().filter(|w| w.len() >= 5).collect();
                match long.get(rng.below(long.len())) {
                    Some(w) => {
                        let mut chars: Vec<char> = w.chars().collect();
                        let at = 1 + rng.below(chars.len() - 2);
                        chars.swap(at, at + 1);
                        chars.into_iter().collect()
                    }
                    None => pick(&mut rng, &words),
                }
            }
            5 => {
                let w = pick(&mut rng, &words);
                w.chars().take(3 + rng.below(3)).collect()
            }
            6 => {
                filters.category = p.category.clone();
                pick(&mut rng, &words)
            }
            7 => {
                filters.max_price = Some(p.price_cents * 2);
                filters.in_stock = Some(true);
                format!("{} {}", pick(&mut rng, &words), pick(&mut rng, &desc))
            }
            8 => {
                filters.category = p
                    .category
                    .as_deref()
                    .and_then(|c| c.split('/').next())
                    .map(str::to_owned);
                String::new()
            }
            _ => format!(
                "{} {} {}",
                pick(&mut rng, &words),
                pick(&mut rng, &words),
                pick(&mut rng, &desc)
            ),
        };
        out.push(Query { text, filters });
    }
    out
}

/// The same words as an FTS5 query: each a quoted term, the last as a
/// prefix while it is being typed, all required.
fn fts_query(text: &str) -> Option<String> {
    let words = text::words(text);
    if words.is_empty() {
        return None;
    }
    let typing = text.chars().last().is_some_and(char::is_alphanumeric);
    let n = words.len();
    Some(
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if typing && i + 1 == n {
                    format!("\"{}\"*", w.normalized)
                } else {
                    format!("\"{}\"", w.normalized)
                }
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: search_bench PRODUCTS.ndjson [QUERIES]"))?;
    let count: usize = args.next().map_or(Ok(4000), |n| n.parse())?;

    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    let mut products = Vec::new();
    for line in file.lines() {
        let request: ProductRequest = serde_json::from_str(&line?)?;
        let stock = request.stock.unwrap_or(0);
        let (product, _, _) =
            product_from(request).map_err(|p| anyhow::anyhow!("invalid product: {p:?}"))?;
        products.push((product, stock));
    }
    let n = products.len();

    // The index, built as the server builds it at start.
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut index = Index::new(0.01);
    for (product, stock) in &products {
        index.upsert(SearchDocument {
            product: product.clone(),
            available: *stock,
            popularity: 0.0,
        });
    }
    index.settle();
    index.compact();
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rss_after = rss_kib();
    println!("products {n}");
    println!("terms {}", index.term_count());
    println!("build_ms {build_ms:.0}");
    println!(
        "index_heap_mib {:.1}",
        index.heap_bytes() as f64 / 1048576.0
    );
    println!(
        "index_rss_growth_mib {:.1}",
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );

    let products: Vec<Product> = products.into_iter().map(|(p, _)| p).collect();
    let queries = queries(&products, count);
    // Warm-up, then timed runs.
    for q in queries.iter().take(200) {
        index.search(&q.text, &q.filters, 0, 20);
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut found = 0u64;
    for q in &queries {
        let t = Instant::now();
        let ranked = index.search(&q.text, &q.filters, 0, 20);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        found += u64::from(ranked.total > 0);
    }
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("queries {}", queries.len());
    println!("queries_with_results {found}");
    println!("search_p50_ms {p50:.3}");
    println!("search_p99_ms {p99:.3}");
    println!("search_max_ms {:.3}", times.last().copied().unwrap_or(0.0));

    // Suggestions over the same names.
    let started = Instant::now();
    let mut phrases = Phrases::default();
    index.for_each_name(|name, popularity| phrases.add_name(name, popularity));
    let suggester = Suggester::build(phrases);
    println!(
        "suggest_build_ms {:.0}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!("suggestions {}", suggester.len());
    let mut rng = Rng(7);
    let mut times = Vec::new();
    for _ in 0..count {
        let p = &products[rng.below(products.len())];
        let word = text::words(&p.name)[rng.below(2)].normalized.clone();
        let prefix: String = word.chars().take(1 + rng.below(5)).collect();
        let t = Instant::now();
        let got = suggester.suggest(&prefix, 10);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(got);
    }
    times.sort_by(f64::total_cmp);
    println!("suggest_p50_ms {:.4}", percentile(&times, 0.5));
    println!("suggest_p99_ms {:.4}", percentile(&times, 0.99));

    // SQLite FTS5, same fields and weights, same queries (filters as SQL).
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE VIRTUAL TABLE docs USING fts5(name, category, attributes, description,
             tokenize = 'porter unicode61 remove_diacritics 2');
         CREATE TABLE meta (id INTEGER PRIMARY KEY, category TEXT, price INTEGER, stock INTEGER);",
    )?;
    let started = Instant::now();
    {
        let tx = conn.unchecked_transaction()?;
        let mut insert = tx.prepare(
            "INSERT INTO docs (rowid, name, category, attributes, description) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut meta = tx.prepare("INSERT INTO meta VALUES (?1, ?2, ?3, ?4)")?;
        for (i, p) in products.iter().enumerate() {
            let attributes: Vec<&str> = p
                .attributes
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()])
                .collect();
            insert.execute(params![
                i as i64,
                p.name,
                p.category.as_deref().unwrap_or(""),
                attributes.join(" "),
                p.description
            ])?;
            meta.execute(params![i as i64, p.category, p.price_cents, 1])?;
        }
        drop(insert);
        drop(meta);
        tx.commit()?;
    }
    println!(
        "fts5_build_ms {:.0}",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut page = conn.prepare(
        "SELECT docs.rowid FROM docs JOIN meta ON meta.id = docs.rowid
         WHERE docs MATCH ?1 AND (?2 IS NULL OR meta.category = ?2 OR meta.category LIKE ?2 || '/%')
           AND (?3 IS NULL OR meta.price <= ?3)
         ORDER BY bm25(docs, 4.0, 2.5, 1.5, 1.0) LIMIT 20",
    )?;
    let mut total = conn.prepare(
        "SELECT count(*) FROM docs JOIN meta ON meta.id = docs.rowid
         WHERE docs MATCH ?1 AND (?2 IS NULL OR meta.category = ?2 OR meta.category LIKE ?2 || '/%')
           AND (?3 IS NULL OR meta.price <= ?3)",
    )?;
    let mut browse = conn.prepare(
        "SELECT id FROM meta WHERE (?1 IS NULL OR category = ?1 OR category LIKE ?1 || '/%')
         ORDER BY id LIMIT 20",
    )?;
    let mut run_fts = |q: &Query| -> anyhow::Result<usize> {
        let category = q.filters.category.as_deref();
        match fts_query(&q.text) {
            Some(fts) => {
                let rows: Vec<i64> = page
                    .query_map(params![fts, category, q.filters.max_price], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let _: i64 =
                    total.query_row(params![fts, category, q.filters.max_price], |r| r.get(0))?;
                Ok(rows.len())
            }
            None => {
                let rows: Vec<i64> = browse
                    .query_map(params![category], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(rows.len())
            }
        }
    };
    for q in queries.iter().take(200) {
        run_fts(q)?;
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut fts_found = 0u64;
    for q in &queries {
        let t = Instant::now();
        let rows = run_fts(q)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        fts_found += u64::from(rows > 0);
    }
    times.sort_by(f64::total_cmp);
    let (f50, f99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("fts5_queries_with_results {fts_found}");
    println!("fts5_p50_ms {f50:.3}");
    println!("fts5_p99_ms {f99:.3}");
    println!("fts5_over_index_p50 {:.2}", f50 / p50);
    println!("fts5_over_index_p99 {:.2}", f99 / p99);
    Ok(())
}
