//! Where `shop login` keeps a login, per profile.
//!
//! Tokens are secrets: they go to the OS keyring (the Secret Service on
//! Linux and the BSDs). A headless server or a CI runner usually has no
//! keyring, so there the login goes to `credentials.toml` in the shop config
//! directory, created with mode 0600, and the CLI says so the first time.
//! What is not secret (each profile's server URL, email and which store holds
//! its tokens) lives in `config.toml` beside it.
//!
//! Access tokens are short-lived and refresh tokens rotate on every use (a
//! replayed one ends the session), so two shop processes must never refresh
//! the same login at once: [`Credentials::lock`] serialises them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::CliError;

const KEYRING_SERVICE: &str = "shop";
const CONFIG_FILE: &str = "config.toml";
const CREDENTIALS_FILE: &str = "credentials.toml";
const LOCK_FILE: &str = ".credentials.lock";

/// A stored login: tokens and the server they belong to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Login {
    pub url: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Login {
    /// Whether the access token is still good for at least `margin`.
    pub fn fresh_for(&self, margin: time::Duration) -> bool {
        self.expires_at - margin > OffsetDateTime::now_utc()
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Keyring,
    File,
}

/// What a profile remembers besides its tokens.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileSettings {
    /// The server this profile talks to when neither --url nor SHOP_URL is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The email of the last login, offered at the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Where the tokens of the current login are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreKind>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileSettings>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    profiles: BTreeMap<String, Login>,
}

/// Where a login was saved, and a note for the user the first time it had to be a file.
#[derive(Debug)]
pub struct Saved {
    pub store: StoreKind,
    pub notice: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Credentials {
    dir: PathBuf,
    /// Off in unit tests, which must never touch the real keyring of the machine running them.
    use_keyring: bool,
}

impl Credentials {
    /// The shop directory under the user's config dir (`$XDG_CONFIG_HOME/shop` on Linux).
    pub fn new() -> Result<Self, CliError> {
        let base = dirs::config_dir().ok_or_else(|| {
            CliError::Other(
                "cannot find a config directory for the login (set HOME or XDG_CONFIG_HOME)".into(),
            )
        })?;
        Ok(Credentials {
            dir: base.join("shop"),
            use_keyring: true,
        })
    }

    #[cfg(test)]
    fn file_only(dir: impl Into<PathBuf>) -> Self {
        Credentials {
            dir: dir.into(),
            use_keyring: false,
        }
    }

    fn keyring_entry(&self, profile: &str) -> Result<keyring_core::Entry, String> {
        if self.use_keyring {
            keyring::entry(profile)
        } else {
            Err("the keyring is off in tests".to_owned())
        }
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    pub fn settings(&self, profile: &str) -> Result<ProfileSettings, CliError> {
        Ok(self
            .read_config()?
            .profiles
            .remove(profile)
            .unwrap_or_default())
    }

    /// The profile's login, and the store it came from; `None` when not logged in.
    pub fn load(&self, profile: &str) -> Result<Option<(Login, StoreKind)>, CliError> {
        match self.settings(profile)?.store {
            None => Ok(None),
            Some(StoreKind::File) => Ok(self
                .read_credentials()?
                .profiles
                .remove(profile)
                .map(|login| (login, StoreKind::File))),
            Some(StoreKind::Keyring) => {
                let secret = self
                    .keyring_entry(profile)
                    .and_then(|entry| keyring::get(&entry));
                match secret {
                    Ok(Some(secret)) => {
                        let login = serde_json::from_str(&secret).map_err(|err| {
                            CliError::Auth(format!(
                                "the login of profile `{profile}` in the OS keyring is unreadable \
                                 ({err}); run `shop login` again"
                            ))
                        })?;
                        Ok(Some((login, StoreKind::Keyring)))
                    }
                    Ok(None) => Ok(None),
                    Err(reason) => Err(CliError::Auth(format!(
                        "cannot read the login of profile `{profile}` from the OS keyring \
                         ({reason}); run `shop login` again"
                    ))),
                }
            }
        }
    }

    /// Saves the login in the keyring, or in the 0600 file where there is no keyring.
    pub fn save(&self, profile: &str, login: &Login) -> Result<Saved, CliError> {
        let mut config = self.read_config()?;
        let secret = serde_json::to_string(login)
            .map_err(|err| CliError::Other(format!("cannot encode the login: {err}")))?;
        let (store, notice) = match self
            .keyring_entry(profile)
            .and_then(|e| keyring::set(&e, &secret))
        {
            Ok(()) => {
                self.remove_from_file(profile)?;
                (StoreKind::Keyring, None)
            }
            Err(reason) => {
                // Said once: when the file is first created.
                let first = !self.credentials_file().exists();
                let mut file = self.read_credentials()?;
                file.profiles.insert(profile.to_owned(), login.clone());
                self.write_private(CREDENTIALS_FILE, &toml_text(&file)?)?;
                let notice = first.then(|| {
                    format!(
                        "no OS keyring is available ({reason}); the login is kept in {} \
                         (mode 0600, readable only by you)",
                        self.credentials_file().display()
                    )
                });
                (StoreKind::File, notice)
            }
        };
        let settings = config.profiles.entry(profile.to_owned()).or_default();
        settings.url = Some(login.url.clone());
        settings.email = Some(login.email.clone());
        settings.store = Some(store);
        self.write_private(CONFIG_FILE, &toml_text(&config)?)?;
        Ok(Saved { store, notice })
    }

    /// Forgets the profile's tokens wherever they are; the URL and email stay.
    /// Returns whether there was a login.
    pub fn forget(&self, profile: &str) -> Result<bool, CliError> {
        let mut config = self.read_config()?;
        let Some(store) = config
            .profiles
            .get_mut(profile)
            .and_then(|s| s.store.take())
        else {
            return Ok(false);
        };
        match store {
            StoreKind::File => self.remove_from_file(profile)?,
            StoreKind::Keyring => {
                if let Err(reason) = self
                    .keyring_entry(profile)
                    .and_then(|e| keyring::delete(&e))
                {
                    return Err(CliError::Other(format!(
                        "cannot remove the login from the OS keyring: {reason}"
                    )));
                }
            }
        }
        self.write_private(CONFIG_FILE, &toml_text(&config)?)?;
        Ok(true)
    }

    /// An exclusive lock over the stored logins, held while refreshing one.
    pub fn lock(&self) -> Result<fs::File, CliError> {
        self.create_dir()?;
        let path = self.dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| file_error(&path, err))?;
        file.lock().map_err(|err| file_error(&path, err))?;
        Ok(file)
    }

    fn remove_from_file(&self, profile: &str) -> Result<(), CliError> {
        let mut file = self.read_credentials()?;
        if file.profiles.remove(profile).is_some() {
            self.write_private(CREDENTIALS_FILE, &toml_text(&file)?)?;
        }
        Ok(())
    }

    fn read_config(&self) -> Result<ConfigFile, CliError> {
        read_toml(&self.dir.join(CONFIG_FILE))
    }

    fn read_credentials(&self) -> Result<CredentialsFile, CliError> {
        read_toml(&self.credentials_file())
    }

    fn create_dir(&self) -> Result<(), CliError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|err| file_error(&self.dir, err))
    }

    /// Replaces a file atomically with one only the user can read: a crash
    /// leaves the old file or the new one, never half of either.
    fn write_private(&self, name: &str, text: &str) -> Result<(), CliError> {
        self.create_dir()?;
        let path = self.dir.join(name);
        // tempfile creates files with mode 0600 on Unix.
        let mut temp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|err| file_error(&self.dir, err))?;
        temp.write_all(text.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|err| file_error(temp.path(), err))?;
        temp.persist(&path)
            .map_err(|err| file_error(&path, err.error))?;
        Ok(())
    }
}

fn read_toml<T: Default + serde::de::DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    match fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|err| CliError::Other(format!("{} is not valid: {err}", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(err) => Err(file_error(path, err)),
    }
}

fn toml_text(value: &impl Serialize) -> Result<String, CliError> {
    toml::to_string(value).map_err(|err| CliError::Other(format!("cannot encode settings: {err}")))
}

fn file_error(path: &Path, err: std::io::Error) -> CliError {
    CliError::Other(format!("{}: {err}", path.display()))
}

/// The OS keyring through keyring-core; every failure is a reason string,
/// since any failure means the same thing here: use the file instead.
mod keyring {
    use keyring_core::{Entry, Error};

    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    fn ensure_store() -> Result<(), String> {
        use std::sync::OnceLock;
        static STORE: OnceLock<Result<(), String>> = OnceLock::new();
        STORE
            .get_or_init(|| {
                let store = zbus_secret_service_keyring_store::Store::new()
                    .map_err(|err| describe(&err))?;
                keyring_core::set_default_store(store);
                Ok(())
            })
            .clone()
    }

    #[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
    fn ensure_store() -> Result<(), String> {
        Err("this build of shop has no keyring support for this OS".to_owned())
    }

    pub fn entry(profile: &str) -> Result<Entry, String> {
        ensure_store()?;
        Entry::new(super::KEYRING_SERVICE, profile).map_err(|err| describe(&err))
    }

    pub fn get(entry: &Entry) -> Result<Option<String>, String> {
        match entry.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(Error::NoEntry) => Ok(None),
            Err(err) => Err(describe(&err)),
        }
    }

    pub fn set(entry: &Entry, secret: &str) -> Result<(), String> {
        entry.set_password(secret).map_err(|err| describe(&err))
    }

    pub fn delete(entry: &Entry) -> Result<(), String> {
        match entry.delete_credential() {
            Ok(()) | Err(Error::NoEntry) => Ok(()),
            Err(err) => Err(describe(&err)),
        }
    }

    fn describe(err: &Error) -> String {
        match err {
            Error::NoStorageAccess(cause) | Error::PlatformFailure(cause) => cause.to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(url: &str) -> Login {
        Login {
            url: url.into(),
            email: "a@example.com".into(),
            access_token: "access".into(),
            refresh_token: "refresh".into(),
            expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(10),
        }
    }

    #[test]
    fn profiles_are_saved_loaded_and_forgotten_independently() {
        let dir = tempfile::tempdir().expect("dir");
        let credentials = Credentials::file_only(dir.path().join("shop"));
        assert!(credentials.load("default").expect("load").is_none());
        credentials
            .save("default", &login("http://a"))
            .expect("save");
        credentials
            .save("staging", &login("http://b"))
            .expect("save");
        let (loaded, _) = credentials.load("staging").expect("load").expect("a login");
        assert_eq!(loaded.url, "http://b");
        assert!(credentials.forget("staging").expect("forget"));
        assert!(!credentials.forget("staging").expect("forget twice"));
        assert!(credentials.load("staging").expect("load").is_none());
        assert_eq!(
            credentials
                .settings("staging")
                .expect("settings")
                .url
                .as_deref(),
            Some("http://b"),
            "the profile keeps its server"
        );
        assert!(credentials.load("default").expect("load").is_some());
    }

    #[cfg(unix)]
    #[test]
    fn the_fallback_file_is_private_and_the_notice_comes_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let credentials = Credentials::file_only(dir.path().join("shop"));
        let first = credentials
            .save("default", &login("http://a"))
            .expect("save");
        assert_eq!(first.store, StoreKind::File);
        assert!(first.notice.is_some());
        let mode = fs::metadata(credentials.credentials_file())
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = credentials
            .save("default", &login("http://a"))
            .expect("save");
        assert!(second.notice.is_none(), "said once");
    }

    #[test]
    fn freshness_has_a_margin() {
        let mut stored = login("http://a");
        assert!(stored.fresh_for(time::Duration::minutes(5)));
        stored.expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(30);
        assert!(!stored.fresh_for(time::Duration::minutes(1)));
    }
}
