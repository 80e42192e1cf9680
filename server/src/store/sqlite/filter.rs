//! Dynamic `WHERE` clauses for list queries: the one way every list route
//! builds its filter.
//!
//! A condition is added only when the query sets it, so SQLite plans each
//! shape of query with the indexes that shape can use (a static
//! `(?1 IS NULL OR col = ?1)` clause hides them from the planner). The
//! number of shapes is small and fixed by the code, so the statements are
//! cached like static ones.

use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use super::escape_like;

/// A `WHERE` clause built from the conditions a list query sets, with its
/// parameters numbered in order (`?` in a condition is its next value).
#[derive(Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    /// Requires `condition`, whose `?`s take `values` in order.
    pub(super) fn add(&mut self, condition: &str, values: impl IntoIterator<Item = Value>) {
        let numbered = self.number(condition, values);
        self.clauses.push(numbered);
    }

    pub(super) fn add_one(&mut self, condition: &str, value: impl Into<Value>) {
        self.add(condition, [value.into()]);
    }

    /// Requires `condition` with `value` when the query sets one.
    pub(super) fn add_some(&mut self, condition: &str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.add_one(condition, value);
        }
    }

    /// Requires at least one of `alternatives`; none at all requires nothing.
    pub(super) fn any_of<S: AsRef<str>>(&mut self, alternatives: Vec<(S, Vec<Value>)>) {
        if alternatives.is_empty() {
            return;
        }
        let numbered: Vec<String> = alternatives
            .into_iter()
            .map(|(condition, values)| self.number(condition.as_ref(), values))
            .collect();
        self.clauses.push(format!("({})", numbered.join(" OR ")));
    }

    /// Requires one of `columns` to contain `text` (a `LIKE` with its
    /// wildcards escaped), when the query sets a text.
    pub(super) fn contains(&mut self, columns: &[&str], text: Option<&str>) {
        let Some(text) = text else { return };
        let pattern = Value::from(format!("%{}%", escape_like(text)));
        self.any_of(
            columns
                .iter()
                .map(|column| {
                    (
                        format!("{column} LIKE ? ESCAPE '\\'"),
                        vec![pattern.clone()],
                    )
                })
                .collect(),
        );
    }

    /// A customer's own rows: by their account, or by their email on orders
    /// placed for them when the email is given.
    pub(super) fn owner(
        &mut self,
        owner: &Option<(shop_wire::UserId, Option<String>)>,
        prefix: &str,
    ) {
        match owner {
            Some((user, Some(email))) => self.add(
                &format!("({prefix}user_id = ? OR {prefix}customer_email = ? COLLATE NOCASE)"),
                [Value::from(user.to_string()), Value::from(email.clone())],
            ),
            Some((user, None)) => self.add(
                &format!("{prefix}user_id = ?"),
                [Value::from(user.to_string())],
            ),
            None => {}
        }
    }

    /// The `WHERE` clause, or nothing when no condition is set.
    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub(super) fn count(&self, conn: &Connection, from: &str) -> rusqlite::Result<u64> {
        let total: i64 = conn
            .prepare_cached(&format!("SELECT count(*) {from} {}", self.sql()))?
            .query_row(params_from_iter(&self.values), |row| row.get(0))?;
        Ok(total as u64)
    }

    /// Binds a page's limit and offset and returns their `LIMIT ... OFFSET ...`.
    pub(super) fn limit(&mut self, (limit, offset): (u32, u64)) -> String {
        self.values.push(Value::from(limit));
        self.values.push(Value::from(offset as i64));
        let n = self.values.len();
        format!("LIMIT ?{} OFFSET ?{n}", n - 1)
    }

    /// Runs `sql`, which holds this filter's clause and placeholders, and reads each row with `map`.
    pub(super) fn query<T>(
        &self,
        conn: &Connection,
        sql: &str,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        conn.prepare_cached(sql)?
            .query_map(params_from_iter(&self.values), map)?
            .collect()
    }

    /// A page of `SELECT columns from` in `order`, read with `map`.
    pub(super) fn page<T>(
        mut self,
        conn: &Connection,
        select: &str,
        order: &str,
        page: (u32, u64),
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let limit = self.limit(page);
        let sql = format!("{select} {} ORDER BY {order} {limit}", self.sql());
        self.query(conn, &sql, map)
    }

    fn number(&mut self, condition: &str, values: impl IntoIterator<Item = Value>) -> String {
        let mut values = values.into_iter();
        let mut numbered = String::with_capacity(condition.len() + 4);
        for c in condition.chars() {
            if c == '?' {
                self.values.push(
                    values
                        .next()
                        .expect("a value for each `?` of the condition"),
                );
                numbered.push_str(&format!("?{}", self.values.len()));
            } else {
                numbered.push(c);
            }
        }
        numbered
    }
}
