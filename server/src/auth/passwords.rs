//! Password hashing with argon2id at OWASP's recommended settings
//! (7 MiB, 5 iterations, 1 lane), and password strength rules.
//!
//! A hash costs tens of milliseconds of CPU and 7 MiB of memory, so hashing
//! runs on tokio's blocking pool behind a semaphore with one permit per core:
//! a burst of logins queues instead of starving every other request.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::services::error::{DomainError, DomainResult};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that a wrong email
    /// costs as much time as a wrong password and reveals nothing. Made on
    /// first need, so it does not slow the server's start.
    decoy_hash: Arc<tokio::sync::OnceCell<String>>,
}

/// OWASP's argon2id settings are a family of equal strength (19 MiB with 2
/// iterations, 12 MiB with 3, 9 MiB with 4, 7 MiB with 5); the smallest memory
/// is chosen because the allocator keeps a hash's working memory after it is
/// freed, and the server's idle size is a target (bench/run.sh, idle RSS).
const MEMORY_KIB: u32 = 7 * 1024;
const ITERATIONS: u32 = 5;

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> DomainResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| DomainError::internal(anyhow::anyhow!("hashing a password: {err}")))
}

fn verify_now(password: &str, hash: &str) -> DomainResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|err| {
        DomainError::internal(anyhow::anyhow!("stored password hash is malformed: {err}"))
    })?;
    Ok(argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            permits: Arc::new(Semaphore::new(cores)),
            decoy_hash: Arc::default(),
        }
    }

    async fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> DomainResult<T> + Send + 'static,
    ) -> DomainResult<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(DomainError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(DomainError::internal)?
    }

    pub async fn hash(&self, password: &str) -> DomainResult<String> {
        let password = password.to_owned();
        self.on_pool(move || hash_now(&password)).await
    }

    /// Checks `password` against `hash`, or against a decoy when there is no account.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> DomainResult<bool> {
        let known = hash.is_some();
        let hash = match hash {
            Some(hash) => hash.to_owned(),
            None => self
                .decoy_hash
                .get_or_try_init(|| self.hash("decoy password that no account has"))
                .await?
                .clone(),
        };
        let password = password.to_owned();
        let matches = self.on_pool(move || verify_now(&password, &hash)).await?;
        Ok(known && matches)
    }
}

/// Refuses passwords that are short or easy to guess, judged by zxcvbn with
/// the account's own email and name counted as known words.
pub fn check_strength(field: &str, password: &str, email: &str, name: &str) -> DomainResult<()> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(DomainError::validation(
            field,
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if chars > MAX_LENGTH {
        return Err(DomainError::validation(
            field,
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    // zxcvbn matches whole dictionary words, so give it the pieces: `ada`, `lovelace`, ...
    let personal: Vec<&str> = [email, name]
        .iter()
        .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()))
        .filter(|word| word.len() >= 3)
        .collect();
    let entropy = zxcvbn::zxcvbn(password, &personal);
    if entropy.score() < zxcvbn::Score::Three {
        let hint = entropy
            .feedback()
            .and_then(|feedback| feedback.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".to_owned());
        return Err(DomainError::Validation {
            message: format!("{field}: too weak: {hint}; add more unrelated words or characters"),
            fields: json!({ field: format!("too weak: {hint}") }),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_owasp_parameters() {
        let passwords = Passwords::new();
        let hash = passwords
            .hash("correct horse battery staple")
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse battery staple", Some(&hash))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify("wrong horse battery staple", Some(&hash))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify("correct horse battery staple", None)
                .await
                .expect("verify")
        );
    }

    #[test]
    fn weak_and_personal_passwords_are_refused() {
        assert!(check_strength("password", "short", "a@b.co", "A").is_err());
        assert!(check_strength("password", "password123", "a@b.co", "A").is_err());
        assert!(
            check_strength(
                "password",
                "lovelace1815",
                "ada.lovelace@example.com",
                "Ada Lovelace"
            )
            .is_err()
        );
        assert!(check_strength("password", "violet-tundra-42-harbor", "a@b.co", "A").is_ok());
    }
}
