//! Users, their roles and profiles, and the tokens sent by email, in PostgreSQL.
//!
//! Writers run at once here, so the two rules that count or spend decide
//! under locks or guards: a role change locks every admin's row (in id
//! order) before counting them, so two demotions racing cannot each count
//! the other admin; and a token is spent by `UPDATE ... WHERE used_at IS
//! NULL`, which a racing spend waits on and then finds spent.

use async_trait::async_trait;
use shop_wire::users::{Role, User};
use shop_wire::{SessionId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::filter::Filter;
use super::{PgStore, audit, backend, parse};
use crate::services::users::rules::{self as user_rules, RoleRefusal, TokenRefusal};
use crate::store::audit::audited_user;
use crate::store::{
    AccountToken, AuditChange, NewEvent, ProfileUpdate, RoleChange, StoreResult, TokenPurpose,
    UserQuery, UserRecord, UserStore, now,
};

const USER_COLUMNS: &str = "id, email, name, role, password_hash, addresses::text AS addresses, \
     created_at, updated_at, email_verified_at";

fn user_row(row: &PgRow) -> StoreResult<UserRecord> {
    let addresses: String = row.try_get("addresses")?;
    Ok(UserRecord {
        user: User {
            id: parse(row, "id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            role: parse(row, "role")?,
            addresses: serde_json::from_str(&addresses).map_err(backend)?,
            email_verified: row
                .try_get::<Option<OffsetDateTime>, _>("email_verified_at")?
                .is_some(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        password_hash: row.try_get("password_hash")?,
    })
}

async fn find_user(
    conn: &mut PgConnection,
    condition: &str,
    value: &str,
) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
    sqlx::query(AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(user_row)
        .transpose()
}

const TOKEN_COLUMNS: &str = "hash, user_id, purpose, created_at, expires_at, used_at";

fn token_row(row: &PgRow) -> StoreResult<AccountToken> {
    Ok(AccountToken {
        hash: row.try_get("hash")?,
        user_id: parse(row, "user_id")?,
        purpose: parse(row, "purpose")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

async fn find_token(conn: &mut PgConnection, hash: &str) -> StoreResult<Option<AccountToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM account_tokens WHERE hash = $1");
    sqlx::query(AssertSqlSafe(sql))
        .bind(hash)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(token_row)
        .transpose()
}

/// Loads the token with `hash`, checks it with the users service's rule
/// and spends it with a guarded write (a token already spent is not
/// spent again); answers its user.
async fn spend_token(
    tx: &mut PgConnection,
    hash: &str,
    purpose: TokenPurpose,
    at: OffsetDateTime,
) -> StoreResult<Result<UserId, TokenRefusal>> {
    let token = find_token(tx, hash).await?;
    if let Err(refusal) = user_rules::check_token(token.as_ref(), purpose, at) {
        return Ok(Err(refusal));
    }
    // A racing spend of the same token waits here for the first to commit,
    // then finds `used_at` set and changes nothing.
    let spent =
        sqlx::query("UPDATE account_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL")
            .bind(hash)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    Ok(match token {
        Some(token) if spent == 1 => Ok(token.user_id),
        _ => Err(TokenRefusal::Used),
    })
}

/// Marks the email of `user` verified (once: a later proof keeps the first
/// time) and audits the change when it is one.
async fn mark_verified(
    tx: &mut PgConnection,
    user: &UserId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let changed = sqlx::query(
        "UPDATE users SET email_verified_at = $2, updated_at = $2
         WHERE id = $1 AND email_verified_at IS NULL",
    )
    .bind(user.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 1 {
        audit::record(
            tx,
            [AuditChange::diff(
                "user.email_verified",
                "user",
                user.as_str(),
                serde_json::json!({"email_verified": false}),
                serde_json::json!({"email_verified": true}),
            )],
        )
        .await?;
    }
    Ok(())
}

/// Ends every active session of `user` but `keep`.
pub(super) async fn revoke_sessions(
    tx: &mut PgConnection,
    user: &UserId,
    keep: Option<&SessionId>,
    at: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
    )
    .bind(user.as_str())
    .bind(keep.map(SessionId::as_str))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn set_password_hash(
    tx: &mut PgConnection,
    user: &UserId,
    hash: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(user.as_str())
        .bind(hash)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[async_trait]
impl UserStore for PgStore {
    async fn insert_user(&self, record: &UserRecord, events: Vec<NewEvent>) -> StoreResult<()> {
        self.write(move |tx| {
            let (record, events) = (record.clone(), events.clone());
            Box::pin(async move {
                let user = &record.user;
                let addresses = serde_json::to_string(&user.addresses).map_err(backend)?;
                sqlx::query(
                    "INSERT INTO users (id, email, name, role, password_hash, addresses,
                         created_at, updated_at, email_verified_at)
                     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)",
                )
                .bind(user.id.as_str())
                .bind(&user.email)
                .bind(&user.name)
                .bind(user.role.as_str())
                .bind(&record.password_hash)
                .bind(addresses)
                .bind(user.created_at)
                .bind(user.updated_at)
                .bind(user.email_verified.then_some(user.created_at))
                .execute(&mut *tx)
                .await?;
                audit::record(
                    tx,
                    [AuditChange::diff(
                        "user.created",
                        "user",
                        user.id.as_str(),
                        serde_json::Value::Null,
                        audited_user(user),
                    )],
                )
                .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        find_user(&mut conn, "id = $1", id.as_str()).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        find_user(&mut conn, "lower(email) = lower($1)", email).await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("role = ", query.role.map(|role| role.as_str()));
            filter.contains(&["email", "name"], query.text.as_deref());
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM users")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let users = filtered(&format!("SELECT {USER_COLUMNS} FROM users"))
            .page("id", (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| user_row(row).map(|record| record.user))
            .collect::<StoreResult<_>>()?;
        Ok((users, total as u64))
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = $1")
            .bind(role.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(count as u64)
    }

    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<User>> {
        let (user, _) = self
            .write(move |tx| {
                let (id, update, events) = (id.clone(), update.clone(), events.clone());
                Box::pin(async move {
                    let addresses = update
                        .addresses
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(backend)?;
                    // Locked, so the audit's before is what this update replaces.
                    let Some(before) = find_user(tx, "id = $1 FOR UPDATE", id.as_str()).await?
                    else {
                        return Ok((None, Vec::new()));
                    };
                    let sql = format!(
                        "UPDATE users SET name = coalesce($2, name),
                             addresses = coalesce($3::jsonb, addresses), updated_at = $4
                         WHERE id = $1 RETURNING {USER_COLUMNS}"
                    );
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .bind(&update.name)
                        .bind(addresses)
                        .bind(now())
                        .fetch_one(&mut *tx)
                        .await?;
                    let record = user_row(&row)?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "user.updated",
                            "user",
                            id.as_str(),
                            audited_user(&before.user),
                            audited_user(&record.user),
                        )],
                    )
                    .await?;
                    Ok((Some(record.user), events))
                })
            })
            .await?;
        Ok(user)
    }

    async fn set_password(
        &self,
        id: &UserId,
        hash: &str,
        keep: Option<&SessionId>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let (id, hash, keep, events) =
                (id.clone(), hash.to_owned(), keep.cloned(), events.clone());
            Box::pin(async move {
                let at = now();
                set_password_hash(tx, &id, &hash, at).await?;
                revoke_sessions(tx, &id, keep.as_ref(), at).await?;
                // Never the password nor its hash: only that it changed.
                audit::record(
                    tx,
                    [AuditChange::diff(
                        "user.password_changed",
                        "user",
                        id.as_str(),
                        serde_json::json!({"password": "(previous)"}),
                        serde_json::json!({"password": "(changed)"}),
                    )],
                )
                .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn set_role(
        &self,
        id: &UserId,
        role: Role,
        events: Vec<NewEvent>,
    ) -> StoreResult<RoleChange> {
        let (change, _) = self
            .write(move |tx| {
                let (id, events) = (id.clone(), events.clone());
                Box::pin(async move {
                    // Every admin's row, locked in id order: a demotion racing
                    // this one waits, and once it commits its row no longer
                    // counts (a locking read re-checks `role` on the row it
                    // waited for), so two demotions never both see the other.
                    let admins: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM users WHERE role = 'admin' ORDER BY id FOR UPDATE",
                    )
                    .fetch_all(&mut *tx)
                    .await?;
                    let Some(current) = find_user(tx, "id = $1 FOR UPDATE", id.as_str()).await?
                    else {
                        return Ok((RoleChange::NotFound, Vec::new()));
                    };
                    let current = current.user.role;
                    if let Err(RoleRefusal::LastAdmin) =
                        user_rules::check_role_change(current, role, admins.len() as u64)
                    {
                        return Ok((RoleChange::LastAdmin, Vec::new()));
                    }
                    let sql = format!(
                        "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1
                         RETURNING {USER_COLUMNS}"
                    );
                    let row = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .bind(role.as_str())
                        .bind(now())
                        .fetch_one(&mut *tx)
                        .await?;
                    let record = user_row(&row)?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "user.role_changed",
                            "user",
                            id.as_str(),
                            serde_json::json!({"role": current}),
                            serde_json::json!({"role": role}),
                        )],
                    )
                    .await?;
                    Ok((RoleChange::Changed(record.user), events))
                })
            })
            .await?;
        Ok(change)
    }

    async fn note_password_reset_request(
        &self,
        id: &UserId,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let (id, events) = (id.clone(), events.clone());
            Box::pin(async move {
                sqlx::query("UPDATE users SET password_reset_requested_at = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn insert_account_tokens(&self, tokens: Vec<AccountToken>) -> StoreResult<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&AccountToken) -> String| tokens.iter().map(f).collect::<Vec<_>>();
        let times = |f: fn(&AccountToken) -> Option<OffsetDateTime>| {
            tokens.iter().map(f).collect::<Vec<_>>()
        };
        sqlx::query(
            "INSERT INTO account_tokens (hash, user_id, purpose, created_at, expires_at, used_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                  $5::timestamptz[], $6::timestamptz[])",
        )
        .bind(column(|t| t.hash.clone()))
        .bind(column(|t| t.user_id.to_string()))
        .bind(column(|t| t.purpose.as_str().to_owned()))
        .bind(times(|t| Some(t.created_at)))
        .bind(times(|t| Some(t.expires_at)))
        .bind(times(|t| t.used_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>> {
        let mut conn = self.pool.acquire().await?;
        find_token(&mut conn, hash).await
    }

    async fn verify_email(
        &self,
        hash: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Result<User, TokenRefusal>> {
        let (verified, _) = self
            .write(move |tx| {
                let (hash, events) = (hash.to_owned(), events.clone());
                Box::pin(async move {
                    let user = match spend_token(tx, &hash, TokenPurpose::VerifyEmail, at).await? {
                        Ok(user) => user,
                        Err(refusal) => return Ok((Err(refusal), Vec::new())),
                    };
                    mark_verified(tx, &user, at).await?;
                    let record =
                        find_user(tx, "id = $1", user.as_str())
                            .await?
                            .ok_or_else(|| {
                                backend(std::io::Error::other("the token's user is gone"))
                            })?;
                    Ok((Ok(record.user), events))
                })
            })
            .await?;
        Ok(verified)
    }

    async fn reset_password(
        &self,
        hash: &str,
        password_hash: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Result<UserId, TokenRefusal>> {
        let (reset, _) = self
            .write(move |tx| {
                let (hash, password_hash, events) =
                    (hash.to_owned(), password_hash.to_owned(), events.clone());
                Box::pin(async move {
                    let user = match spend_token(tx, &hash, TokenPurpose::PasswordReset, at).await?
                    {
                        Ok(user) => user,
                        Err(refusal) => return Ok((Err(refusal), Vec::new())),
                    };
                    set_password_hash(tx, &user, &password_hash, at).await?;
                    revoke_sessions(tx, &user, None, at).await?;
                    sqlx::query(
                        "UPDATE account_tokens SET used_at = $2
                         WHERE user_id = $1 AND purpose = $3 AND used_at IS NULL",
                    )
                    .bind(user.as_str())
                    .bind(at)
                    .bind(TokenPurpose::PasswordReset.as_str())
                    .execute(&mut *tx)
                    .await?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "user.password_reset",
                            "user",
                            user.as_str(),
                            serde_json::json!({"password": "(previous)"}),
                            serde_json::json!({"password": "(reset by email)"}),
                        )],
                    )
                    .await?;
                    mark_verified(tx, &user, at).await?;
                    Ok((Ok(user), events))
                })
            })
            .await?;
        Ok(reset)
    }

    async fn purge_account_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM account_tokens WHERE expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(purged)
    }
}
