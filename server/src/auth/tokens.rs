//! Access tokens (HS256 JWTs) and refresh tokens.
//!
//! An access token names its session (`sid`), so revoking the session stops
//! the token at once, well before `exp`. A refresh token is
//! `<session id>.<random secret>`; only the secret's SHA-256 is stored.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shop_wire::users::Role;
use shop_wire::{SessionId, UserId};

use crate::services::error::{DomainError, DomainResult};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub role: Role,
    pub sid: SessionId,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is exact: a token is dead the second its `exp` passes.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(
        &self,
        user: &UserId,
        role: Role,
        session: &SessionId,
        ttl: Duration,
    ) -> DomainResult<String> {
        let iat = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let claims = Claims {
            sub: user.clone(),
            role,
            sid: session.clone(),
            jti: ulid::Ulid::new().to_string(),
            iat,
            exp: iat + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(DomainError::internal)
    }

    pub fn verify(&self, token: &str) -> DomainResult<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => DomainError::unauthenticated(
                    "token_expired",
                    "the access token has expired; refresh it or log in again",
                ),
                _ => DomainError::unauthenticated("invalid_token", "the access token is not valid"),
            })
    }
}

/// The JWT secret from the environment or config, else the one kept in
/// `path` (mode 0600), generated on first start.
pub fn load_or_create_secret(configured: Option<&str>, path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(hex::decode(text.trim())?),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(anyhow::anyhow!("reading {}: {err}", path.display())),
    }
    let mut secret = vec![0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    write_private(path, hex::encode(&secret).as_bytes())?;
    Ok(secret)
}

/// Creates `path` readable by its owner only; fails if it already exists.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|err| anyhow::anyhow!("creating {}: {err}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// A new refresh token for `session` and the hash to store for it.
pub fn new_refresh_token(session: &SessionId) -> (String, String) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let hash = sha256_hex(&secret);
    (format!("{session}.{secret}"), hash)
}

/// A token to email (an address proof, a password reset) and the hash to
/// store for it: 256 random bits, so a plain SHA-256 lookup is as safe as
/// a constant-time comparison and needs no slow hash.
pub fn new_account_token() -> (String, String) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = hex::encode(secret);
    let hash = account_token_hash(&token);
    (token, hash)
}

/// The stored hash of an emailed token as presented (spaces around it ignored).
pub fn account_token_hash(token: &str) -> String {
    sha256_hex(token.trim())
}

/// Splits a refresh token into its session and the hash of its secret.
pub fn parse_refresh_token(token: &str) -> Option<(SessionId, String)> {
    let (session, secret) = token.split_once('.')?;
    Some((session.parse().ok()?, sha256_hex(secret)))
}

pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(data))
}

/// A random password for the bootstrap admin: 20 characters, ~119 bits.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    #[test]
    fn tokens_round_trip_and_tampering_is_caught() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let user = UserId::generate();
        let session = SessionId::generate();
        let token = keys
            .issue(&user, Role::Staff, &session, Duration::from_secs(60))
            .expect("issue");
        let claims = keys.verify(&token).expect("verify");
        assert_eq!(
            (claims.sub, claims.role, claims.sid),
            (user, Role::Staff, session)
        );
        assert_eq!(claims.exp - claims.iat, 60);

        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            AppError::from(keys.verify(&tampered).unwrap_err()).code(),
            "invalid_token"
        );
        let other = TokenKeys::new(b"another secret another secret 12");
        assert_eq!(
            AppError::from(other.verify(&token).unwrap_err()).code(),
            "invalid_token"
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys
            .issue(
                &UserId::generate(),
                Role::Customer,
                &SessionId::generate(),
                Duration::ZERO,
            )
            .expect("issue");
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(
            AppError::from(keys.verify(&token).unwrap_err()).code(),
            "token_expired"
        );
    }

    #[test]
    fn secret_is_generated_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("jwt.secret");
        let first = load_or_create_secret(None, &path).expect("create");
        assert_eq!(load_or_create_secret(None, &path).expect("load"), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refresh_tokens_parse_back_to_their_session_and_hash() {
        let session = SessionId::generate();
        let (token, hash) = new_refresh_token(&session);
        assert_eq!(parse_refresh_token(&token), Some((session, hash)));
        assert_eq!(parse_refresh_token("garbage"), None);
    }
}
