//! Dynamic `WHERE` clauses for list queries on PostgreSQL: the one way every
//! list builds its filter, as `sqlite/filter.rs` is on SQLite.
//!
//! A condition is added only when the query sets it, so the planner sees
//! each shape of query with the indexes it can use, rather than a static
//! `($1 IS NULL OR col = $1)` that hides them. Values are always bound
//! (sqlx's [`QueryBuilder`] numbers them); only the code's own fragments
//! are pushed as SQL.

use sqlx::{Encode, Postgres, QueryBuilder, Type};

use crate::store::escape_like;

pub(super) struct Filter {
    sql: QueryBuilder<Postgres>,
    conditions: usize,
}

impl Filter {
    /// A filter on `select` (`SELECT ... FROM ...`), with no condition yet.
    pub(super) fn new(select: &str) -> Self {
        Filter {
            sql: QueryBuilder::new(select),
            conditions: 0,
        }
    }

    /// Starts one more required condition, to be pushed onto what this returns.
    pub(super) fn and(&mut self) -> &mut QueryBuilder<Postgres> {
        self.sql.push(if self.conditions == 0 {
            " WHERE "
        } else {
            " AND "
        });
        self.conditions += 1;
        &mut self.sql
    }

    /// Requires `condition` followed by `value` (e.g. `price_cents >= `)
    /// when the query sets one.
    pub(super) fn add_some<T>(&mut self, condition: &str, value: Option<T>)
    where
        T: for<'t> Encode<'t, Postgres> + Type<Postgres>,
    {
        if let Some(value) = value {
            self.and().push(condition).push_bind(value);
        }
    }

    /// Requires one of `columns` to contain `text`, case-insensitively (its
    /// `LIKE` wildcards escaped), when the query sets a text.
    pub(super) fn contains(&mut self, columns: &[&str], text: Option<&str>) {
        let Some(text) = text else { return };
        let pattern = format!("%{}%", escape_like(text));
        let sql = self.and();
        sql.push("(");
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            sql.push(column)
                .push(" ILIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        sql.push(")");
    }

    /// A customer's own rows: by their account, or by their email (in any
    /// case) on orders placed for them when the email is given. `prefix`
    /// names the orders table's alias (`o.`), or nothing.
    pub(super) fn owner(
        &mut self,
        owner: &Option<(shop_wire::UserId, Option<String>)>,
        prefix: &str,
    ) {
        match owner {
            Some((user, Some(email))) => {
                self.and()
                    .push(format_args!("({prefix}user_id = "))
                    .push_bind(user.to_string())
                    .push(format_args!(" OR lower({prefix}customer_email) = lower("))
                    .push_bind(email.clone())
                    .push("))");
            }
            Some((user, None)) => {
                self.add_some(&format!("{prefix}user_id = "), Some(user.to_string()))
            }
            None => {}
        }
    }

    /// The query as filtered so far, e.g. to count its rows.
    pub(super) fn query(self) -> QueryBuilder<Postgres> {
        self.sql
    }

    /// The query in `order`, one page of it.
    pub(super) fn page(
        mut self,
        order: &str,
        (limit, offset): (u32, u64),
    ) -> QueryBuilder<Postgres> {
        self.sql
            .push(" ORDER BY ")
            .push(order)
            .push(" LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(offset as i64);
        self.sql
    }
}
