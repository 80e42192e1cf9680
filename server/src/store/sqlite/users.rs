//! Users, their roles and profiles in SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use shop_wire::users::{Address, Role, User};
use shop_wire::{SessionId, UserId};
use time::OffsetDateTime;

use super::audit;
use super::filter::Filter;
use super::{
    SqliteStore, append, backend, conversion, from_millis, is_unique_violation, millis,
    parse_column,
};
use crate::services::users::rules::{self as user_rules, RoleRefusal, TokenRefusal};
use crate::store::AuditChange;
use crate::store::audit::audited_user;
use crate::store::{
    AccountToken, NewEvent, ProfileUpdate, RoleChange, StoreError, StoreResult, TokenPurpose,
    UserQuery, UserRecord, UserStore, now,
};

const USER_COLUMNS: &str =
    "id, email, name, role, password_hash, addresses, created_at, updated_at, email_verified_at";

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let addresses: String = row.get("addresses")?;
    Ok(UserRecord {
        user: User {
            id: parse_column(row, "id")?,
            email: row.get("email")?,
            name: row.get("name")?,
            role: parse_column(row, "role")?,
            addresses: serde_json::from_str::<Vec<Address>>(&addresses).map_err(conversion)?,
            email_verified: row.get::<_, Option<i64>>("email_verified_at")?.is_some(),
            created_at: from_millis(row.get("created_at")?)?,
            updated_at: from_millis(row.get("updated_at")?)?,
        },
        password_hash: row.get("password_hash")?,
    })
}

const TOKEN_COLUMNS: &str = "hash, user_id, purpose, created_at, expires_at, used_at";

fn token_row(row: &Row<'_>) -> rusqlite::Result<AccountToken> {
    Ok(AccountToken {
        hash: row.get("hash")?,
        user_id: parse_column(row, "user_id")?,
        purpose: parse_column(row, "purpose")?,
        created_at: from_millis(row.get("created_at")?)?,
        expires_at: from_millis(row.get("expires_at")?)?,
        used_at: row
            .get::<_, Option<i64>>("used_at")?
            .map(from_millis)
            .transpose()?,
    })
}

/// Loads the token with `hash`, checks it with the users service's rule
/// and spends it with a guarded write (a token already spent is not
/// spent again); answers its user.
fn spend_token(
    tx: &Transaction<'_>,
    hash: &str,
    purpose: TokenPurpose,
    at: i64,
) -> StoreResult<Result<UserId, TokenRefusal>> {
    let token = tx
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM account_tokens WHERE hash = ?1"
        ))?
        .query_row([hash], token_row)
        .optional()?;
    if let Err(refusal) = user_rules::check_token(token.as_ref(), purpose, from_millis(at)?) {
        return Ok(Err(refusal));
    }
    let spent = tx
        .prepare_cached(
            "UPDATE account_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
        )?
        .execute(params![hash, at])?;
    Ok(match token {
        Some(token) if spent == 1 => Ok(token.user_id),
        _ => Err(TokenRefusal::Used),
    })
}

/// Marks the email of `user` verified (once: a later proof keeps the first
/// time) and audits the change when it is one.
fn mark_verified(tx: &Transaction<'_>, user: &UserId, at: i64) -> StoreResult<()> {
    let changed = tx
        .prepare_cached(
            "UPDATE users SET email_verified_at = ?2, updated_at = ?2
             WHERE id = ?1 AND email_verified_at IS NULL",
        )?
        .execute(params![user.as_str(), at])?;
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
        )?;
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, record: &UserRecord, events: Vec<NewEvent>) -> StoreResult<()> {
        let record = record.clone();
        self.write(move |tx| {
            let user = &record.user;
            let addresses = serde_json::to_string(&user.addresses).map_err(backend)?;
            tx.prepare_cached(&format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                user.id.as_str(),
                user.email,
                user.name,
                user.role.as_str(),
                record.password_hash,
                addresses,
                millis(user.created_at),
                millis(user.updated_at),
                user.email_verified.then(|| millis(user.created_at)),
            ])
            .map_err(|err| {
                if is_unique_violation(&err) {
                    StoreError::Duplicate {
                        entity: "user",
                        field: "email",
                    }
                } else {
                    err.into()
                }
            })?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "user.created",
                    "user",
                    user.id.as_str(),
                    serde_json::Value::Null,
                    audited_user(user),
                )],
            )?;
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id.as_str()], user_row)
                .optional()
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
            ))?
            .query_row([email], user_row)
            .optional()
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_some("role = ?", query.role.map(|r| r.as_str().to_owned()));
            filter.contains(&["email", "name"], query.text.as_deref());
            let total = filter.count(conn, "FROM users")?;
            let select = format!("SELECT {USER_COLUMNS} FROM users");
            let page = (query.limit, query.offset);
            let users = filter.page(conn, &select, "id", page, |row| {
                user_row(row).map(|record| record.user)
            })?;
            Ok((users, total))
        })
        .await
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT count(*) FROM users WHERE role = ?1")?
                .query_row([role.as_str()], |row| row.get::<_, i64>(0))
                .map(|count| count as u64)
        })
        .await
    }

    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<User>> {
        let id = id.clone();
        let update = update.clone();
        self.write(move |tx| {
            let addresses = update
                .addresses
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(backend)?;
            let before = tx
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id.as_str()], user_row)
                .optional()?;
            let updated = tx
                .prepare_cached(&format!(
                    "UPDATE users SET name = coalesce(?2, name), addresses = coalesce(?3, addresses),
                        updated_at = ?4
                 WHERE id = ?1 RETURNING {USER_COLUMNS}"
                ))?
                .query_row(
                    params![id.as_str(), update.name, addresses, millis(now())],
                    user_row,
                )
                .optional()?;
            match updated {
                Some(record) => {
                    if let Some(before) = before {
                        audit::record(
                            tx,
                            [AuditChange::diff(
                                "user.updated",
                                "user",
                                id.as_str(),
                                audited_user(&before.user),
                                audited_user(&record.user),
                            )],
                        )?;
                    }
                    append(tx, events)?;
                    Ok(Some(record.user))
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn set_password(
        &self,
        id: &UserId,
        hash: &str,
        keep: Option<&SessionId>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let (id, hash, keep) = (id.clone(), hash.to_owned(), keep.cloned());
        self.write(move |tx| {
            let at = millis(now());
            tx.prepare_cached(
                "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id.as_str(), hash, at])?;
            tx.prepare_cached(
                "UPDATE sessions SET revoked_at = ?3
                 WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2",
            )?
            .execute(params![
                id.as_str(),
                keep.as_ref().map(SessionId::as_str),
                at
            ])?;
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
            )?;
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn set_role(
        &self,
        id: &UserId,
        role: Role,
        events: Vec<NewEvent>,
    ) -> StoreResult<RoleChange> {
        let id = id.clone();
        self.write(move |tx| {
            let current: Option<Role> = tx
                .prepare_cached("SELECT role FROM users WHERE id = ?1")?
                .query_row([id.as_str()], |row| parse_column(row, "role"))
                .optional()?;
            let Some(current) = current else { return Ok(RoleChange::NotFound) };
            let admins: i64 = tx
                .prepare_cached("SELECT count(*) FROM users WHERE role = 'admin'")?
                .query_row([], |row| row.get(0))?;
            if let Err(RoleRefusal::LastAdmin) =
                user_rules::check_role_change(current, role, admins as u64)
            {
                return Ok(RoleChange::LastAdmin);
            }
            let record = tx
                .prepare_cached(&format!(
                    "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1 RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![id.as_str(), role.as_str(), millis(now())], user_row)?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "user.role_changed",
                    "user",
                    id.as_str(),
                    serde_json::json!({"role": current}),
                    serde_json::json!({"role": role}),
                )],
            )?;
            append(tx, events)?;
            Ok(RoleChange::Changed(record.user))
        })
        .await
    }

    async fn note_password_reset_request(
        &self,
        id: &UserId,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let id = id.clone();
        self.write(move |tx| {
            tx.prepare_cached("UPDATE users SET password_reset_requested_at = ?2 WHERE id = ?1")?
                .execute(params![id.as_str(), millis(at)])?;
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn insert_account_tokens(&self, tokens: Vec<AccountToken>) -> StoreResult<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO account_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))?;
            for token in &tokens {
                insert.execute(params![
                    token.hash,
                    token.user_id.as_str(),
                    token.purpose.as_str(),
                    millis(token.created_at),
                    millis(token.expires_at),
                    token.used_at.map(millis),
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM account_tokens WHERE hash = ?1"
            ))?
            .query_row([hash], token_row)
            .optional()
        })
        .await
    }

    async fn verify_email(
        &self,
        hash: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Result<User, TokenRefusal>> {
        let hash = hash.to_owned();
        self.write(move |tx| {
            let at = millis(at);
            let user = match spend_token(tx, &hash, TokenPurpose::VerifyEmail, at)? {
                Ok(user) => user,
                Err(refusal) => return Ok(Err(refusal)),
            };
            mark_verified(tx, &user, at)?;
            let record = tx
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([user.as_str()], user_row)?;
            append(tx, events)?;
            Ok(Ok(record.user))
        })
        .await
    }

    async fn reset_password(
        &self,
        hash: &str,
        password_hash: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Result<UserId, TokenRefusal>> {
        let (hash, password_hash) = (hash.to_owned(), password_hash.to_owned());
        self.write(move |tx| {
            let at = millis(at);
            let user = match spend_token(tx, &hash, TokenPurpose::PasswordReset, at)? {
                Ok(user) => user,
                Err(refusal) => return Ok(Err(refusal)),
            };
            tx.prepare_cached(
                "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![user.as_str(), password_hash, at])?;
            tx.prepare_cached(
                "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![user.as_str(), at])?;
            tx.prepare_cached(
                "UPDATE account_tokens SET used_at = ?2
                 WHERE user_id = ?1 AND purpose = ?3 AND used_at IS NULL",
            )?
            .execute(params![
                user.as_str(),
                at,
                TokenPurpose::PasswordReset.as_str()
            ])?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "user.password_reset",
                    "user",
                    user.as_str(),
                    serde_json::json!({"password": "(previous)"}),
                    serde_json::json!({"password": "(reset by email)"}),
                )],
            )?;
            mark_verified(tx, &user, at)?;
            append(tx, events)?;
            Ok(Ok(user))
        })
        .await
    }

    async fn purge_account_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| {
            let purged = tx
                .prepare_cached("DELETE FROM account_tokens WHERE expires_at < ?1")?
                .execute([millis(before)])?;
            Ok(purged as u64)
        })
        .await
    }
}
