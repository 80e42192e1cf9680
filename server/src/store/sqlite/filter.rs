//! Dynamic `WHERE` clauses for list queries.

use rusqlite::{Connection, Row};

/// A `WHERE` clause built from the conditions a list query sets, with its
/// parameters numbered in order (`?` in a condition is its next value).
#[derive(Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    values: Vec<Box<dyn rusqlite::ToSql + Send>>,
}

impl Filter {
    pub(super) fn add(&mut self, condition: &str, values: Vec<Box<dyn rusqlite::ToSql + Send>>) {
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
        self.clauses.push(numbered);
    }

    pub(super) fn add_one(
        &mut self,
        condition: &str,
        value: impl rusqlite::ToSql + Send + 'static,
    ) {
        self.add(condition, vec![Box::new(value)]);
    }

    /// A customer's own rows: by their account, or by their email on orders placed for them.
    pub(super) fn owner(&mut self, owner: &Option<(shop_wire::UserId, String)>, prefix: &str) {
        if let Some((user, email)) = owner {
            self.add(
                &format!("({prefix}user_id = ? OR {prefix}customer_email = ? COLLATE NOCASE)"),
                vec![Box::new(user.to_string()), Box::new(email.clone())],
            );
        }
    }

    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub(super) fn count(&self, conn: &Connection, from: &str) -> rusqlite::Result<u64> {
        let params = rusqlite::params_from_iter(self.values.iter().map(|v| v.as_ref()));
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) {from} {}", self.sql()),
            params,
            |row| row.get(0),
        )?;
        Ok(total as u64)
    }

    /// A page of `SELECT columns from` in `order`, read with `map`.
    pub(super) fn page<T>(
        mut self,
        conn: &Connection,
        select: &str,
        order: &str,
        (limit, offset): (u32, u64),
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let filter = self.sql();
        self.values.push(Box::new(limit));
        self.values.push(Box::new(offset as i64));
        let n = self.values.len();
        conn.prepare(&format!(
            "{select} {filter} ORDER BY {order} LIMIT ?{} OFFSET ?{n}",
            n - 1
        ))?
        .query_map(
            rusqlite::params_from_iter(self.values.iter().map(|v| v.as_ref())),
            map,
        )?
        .collect()
    }
}
