//! Who may connect, and what they may publish and read: mosquitto's password file, ACL file,
//! `allow_anonymous` and `use_identity_as_username`, plus a per-address brake on failed logins.

pub mod acl;
pub mod passwd;
mod ratelimit;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use acl::{AclFile, ClientAcl};
use passwd::PasswordFile;
use ratelimit::Failures;

use super::listener::ListenSpec;
use crate::mqtt::{ConnAckCode, Connect};

/// The authentication settings as given (flags or config file); files are read at start.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    /// None: allowed while every listener is on loopback and there is no password file.
    pub allow_anonymous: Option<bool>,
    /// On TLS listeners: the client certificate's subject CN is the user name.
    pub use_identity_as_username: bool,
}

/// Why a CONNECT is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Unknown user or wrong password: 3.1.1 code 4, v5 0x86.
    BadCredentials,
    /// Anonymous where that is not allowed, no certificate where one names the user:
    /// 3.1.1 code 5, v5 0x87.
    NotAuthorized,
}

/// A CONNECT let in: the user it logged in as, and its ACL (None without an ACL file).
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    pub username: Option<Arc<str>>,
    pub acl: Option<Arc<ClientAcl>>,
}

/// What a client presented at CONNECT.
struct Credentials<'a> {
    peer: IpAddr,
    username: Option<&'a str>,
    password: Option<&'a [u8]>,
    /// Some(CN or None) on TLS listeners; None on plain ones.
    tls_cn: Option<Option<&'a str>>,
    client_id: &'a str,
    /// The client id as the client sent it (empty: the broker picked `client_id`).
    sent_id: &'a str,
}

pub struct Auth {
    files: RwLock<Files>,
    /// Where the files are read from, again on SIGHUP.
    config: AuthConfig,
    allow_anonymous: bool,
    identity_as_username: bool,
    failures: Failures,
    /// One line for the start-up banner: what applies and why.
    pub summary: String,
}

#[derive(Default)]
struct Files {
    passwords: Option<PasswordFile>,
    /// Checked for a user the password file does not know, at the cost of its typical entry.
    decoy: Option<passwd::Hash>,
    acl: Option<AclFile>,
    /// The ACL file's rules for anonymous clients, built once: HTTP Push checks every topic.
    anonymous_acl: Option<ClientAcl>,
}

impl Files {
    fn read(config: &AuthConfig) -> anyhow::Result<Files> {
        let passwords = config
            .password_file
            .as_deref()
            .map(PasswordFile::read)
            .transpose()?;
        let acl = config.acl_file.as_deref().map(AclFile::read).transpose()?;
        Ok(Files {
            decoy: passwords.as_ref().map(PasswordFile::decoy),
            passwords,
            anonymous_acl: acl.as_ref().map(|a| a.for_client(None, "")),
            acl,
        })
    }
}

impl Auth {
    /// Reads the files and settles the anonymous rule for these listeners.
    pub fn load(config: &AuthConfig, listeners: &[ListenSpec]) -> anyhow::Result<Auth> {
        let files = Files::read(config)?;
        let passwords = &files.passwords;
        let exposed = super::listener::first_exposed(listeners);
        let (allow_anonymous, why) = match (config.allow_anonymous, passwords, exposed) {
            (Some(true), _, _) => (true, "allowed (--allow-anonymous)".to_owned()),
            (Some(false), _, _) => (false, "refused (--allow-anonymous false)".to_owned()),
            (None, Some(_), _) => (
                false,
                "refused: a password file is set (add --allow-anonymous to let them in)".into(),
            ),
            (None, None, None) => (
                true,
                "allowed: every listener is on this machine only".to_owned(),
            ),
            (None, None, Some(l)) => (
                false,
                format!(
                    "refused: {} is reachable from the network; add --password-file, or --allow-anonymous to let anyone in",
                    l.url()
                ),
            ),
        };
        let mut summary = format!("anonymous clients {why}");
        if let (Some(p), Some(path)) = (passwords, &config.password_file) {
            if p.is_empty() {
                summary.push_str(&format!(
                    "; the password file {} has no users",
                    path.display()
                ));
            }
        }
        Ok(Auth {
            files: RwLock::new(files),
            config: config.clone(),
            allow_anonymous,
            identity_as_username: config.use_identity_as_username,
            failures: Failures::default(),
            summary,
        })
    }

    /// Everyone in, nothing checked: the embedded broker of `sub --serve` and `record --serve`.
    pub fn open() -> Auth {
        Auth {
            files: RwLock::default(),
            config: AuthConfig::default(),
            allow_anonymous: true,
            identity_as_username: false,
            failures: Failures::default(),
            summary: String::new(),
        }
    }

    /// The verdict on a CONNECT: who the client is and its ACL, or the CONNACK code that
    /// refuses it (the encoder puts its 3.1.1 return code in a 3.1.1 CONNACK). `client_id` is the one the session will
    /// have (the broker's choice when the client sent none): `%c` in ACL patterns means it.
    /// `tls_cn` is Some(the client certificate's CN, if any) on TLS listeners.
    pub async fn admit(
        &self,
        c: &Connect,
        client_id: &str,
        peer: IpAddr,
        tls_cn: Option<Option<&str>>,
    ) -> Result<Admitted, ConnAckCode> {
        let login = self
            .login(Credentials {
                peer,
                username: c.username.as_deref(),
                password: c.password.as_deref(),
                tls_cn,
                client_id,
                sent_id: &c.client_id,
            })
            .await;
        // A will the client could not publish itself is refused with the connection.
        let refusal = match login {
            Err(r) => r,
            Ok(Admitted { acl: Some(acl), .. })
                if c.will
                    .as_ref()
                    .is_some_and(|w| !acl.may_write(w.topic.as_bytes())) =>
            {
                Refusal::NotAuthorized
            }
            Ok(admitted) => return Ok(admitted),
        };
        Err(match refusal {
            Refusal::BadCredentials => ConnAckCode::BadUserNameOrPassword,
            Refusal::NotAuthorized => ConnAckCode::NotAuthorized,
        })
    }

    /// Checks a CONNECT. After failures from the same address its logins are checked one
    /// at a time, spaced out more with each failure (only this connection's task waits), and
    /// one that would wait too long is refused unchecked: guessing passwords is slow however
    /// many connections try at once; other addresses are not affected, nor are clients that
    /// logged in from the address before (ratelimit.rs).
    async fn login(&self, c: Credentials<'_>) -> Result<Admitted, Refusal> {
        let turns = self.failures.key(c.peer, c.username, c.sent_id);
        let _checking = loop {
            match self.failures.attempt(turns) {
                Err(ratelimit::Locked) => return Err(Refusal::NotAuthorized),
                Ok(ratelimit::Attempt::Busy) => tokio::time::sleep(ratelimit::BUSY_RETRY).await,
                Ok(ratelimit::Attempt::Go(wait, check)) => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    break check;
                }
            }
        };
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        let entry = files
            .passwords
            .as_ref()
            .zip(c.username)
            .map(|(p, u)| p.get(u));
        let costly = entry
            .and_then(|hash| hash.or(files.decoy.as_ref()))
            .is_some_and(passwd::Hash::is_costly);
        let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        let result = if costly && multi_thread {
            // A hash with many iterations takes milliseconds: off the worker, so the other
            // connections on it keep going meanwhile.
            tokio::task::block_in_place(|| self.check(&files, &c, entry))
        } else {
            self.check(&files, &c, entry)
        };
        match (&result, c.username, entry) {
            (Err(_), _, _) => self.failures.failed(turns),
            // A user of the password file proved who they are (a name without a file proves
            // nothing).
            (Ok(Some(name)), Some(user), Some(Some(_))) if name == user => {
                self.failures.logged_in(c.peer, user, c.sent_id);
            }
            (Ok(_), _, _) => {}
        }
        let username = result?;
        Ok(Admitted {
            acl: files
                .acl
                .as_ref()
                .map(|a| Arc::new(a.for_client(username.as_deref(), c.client_id))),
            username: username.map(Arc::from),
        })
    }

    /// Reads the password and ACL files again (SIGHUP, as mosquitto): new logins see the new
    /// users and rules; connected clients keep the rules they got at CONNECT. On an error the
    /// old files stay in force. Says what was read.
    pub fn reload(&self) -> anyhow::Result<Option<String>> {
        let files = Files::read(&self.config)?;
        *self.files.write().unwrap_or_else(|e| e.into_inner()) = files;
        let read: Vec<String> = [
            ("password file", &self.config.password_file),
            ("ACL file", &self.config.acl_file),
        ]
        .into_iter()
        .filter_map(|(what, path)| path.as_ref().map(|p| format!("{what} {}", p.display())))
        .collect();
        Ok((!read.is_empty()).then(|| format!("reloaded {}", read.join(" and "))))
    }

    /// `entry`: the password file's answer for the user name, looked up by `login` (None
    /// without a file or a user name).
    fn check(
        &self,
        files: &Files,
        c: &Credentials<'_>,
        entry: Option<Option<&passwd::Hash>>,
    ) -> Result<Option<String>, Refusal> {
        if let (true, Some(cn)) = (self.identity_as_username, c.tls_cn) {
            // The certificate vouches for the user; no password is asked (as mosquitto).
            return cn
                .map(|cn| Some(cn.to_owned()))
                .ok_or(Refusal::NotAuthorized);
        }
        let Some(user) = c.username else {
            return if self.allow_anonymous {
                Ok(None)
            } else {
                Err(Refusal::NotAuthorized)
            };
        };
        let Some(entry) = entry else {
            // Without a password file a user name proves nothing: the client is anonymous
            // for the purpose of getting in, and the name is kept for the ACL.
            return if self.allow_anonymous {
                Ok(Some(user.to_owned()))
            } else {
                Err(Refusal::NotAuthorized)
            };
        };
        let password = c.password.unwrap_or_default();
        match entry {
            Some(hash) if hash.verify(password) => Ok(Some(user.to_owned())),
            Some(_) => Err(Refusal::BadCredentials),
            None => {
                // As long as a typical user's check, so the answer's timing does not tell
                // which user names exist.
                if let Some(decoy) = &files.decoy {
                    decoy.verify(password);
                }
                Err(Refusal::BadCredentials)
            }
        }
    }

    /// HTTP Push has no CONNECT: a push is an anonymous client. Whether those get in, and
    /// whether one may publish on `topic` (the ACL file's anonymous rules; anything without
    /// one).
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous
    }

    pub fn anonymous_may_write(&self, topic: &str) -> bool {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files
            .anonymous_acl
            .as_ref()
            .is_none_or(|acl| acl.may_write(topic.as_bytes()))
    }
}

/// Topics no client may publish to, whatever the ACL says: `$SYS` is the broker's own. As
/// Mosquitto 2.0 (`acl__check_dollar`): every topic starting with `$SYS`, except
/// `$SYS/broker/connection/+/state`, where Mosquitto bridges report whether they are connected
/// (a bridge sets it as its will, so refusing it would keep bridges out).
pub fn reserved_for_broker(topic: &[u8]) -> bool {
    topic.starts_with(b"$SYS") && !crate::topic::matches("$SYS/broker/connection/+/state", topic)
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        f.debug_struct("Auth")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::listener::parse_listen;

    fn auth(config: AuthConfig, listen: &[&str]) -> Auth {
        let specs: Vec<_> = listen.iter().map(|u| parse_listen(u).unwrap()).collect();
        Auth::load(&config, &specs).unwrap()
    }

    fn creds<'a>(user: Option<&'a str>, pass: Option<&'a [u8]>) -> Credentials<'a> {
        Credentials {
            peer: IpAddr::from([127, 0, 0, 1]),
            username: user,
            password: pass,
            tls_cn: None,
            client_id: "c",
            sent_id: "c",
        }
    }

    #[test]
    fn anonymous_by_default_only_on_loopback() {
        let local = auth(
            AuthConfig::default(),
            &["mqtt://127.0.0.1:0", "ws://[::1]:0"],
        );
        assert_eq!(
            local.check(&Files::default(), &creds(None, None), None),
            Ok(None)
        );
        assert_eq!(
            local.check(&Files::default(), &creds(Some("x"), None), None),
            Ok(Some("x".into())),
            "a name without a password file is kept for the ACL"
        );
        let lan = auth(
            AuthConfig::default(),
            &["mqtt://127.0.0.1:0", "mqtt://0.0.0.0:0"],
        );
        assert!(lan.summary.contains("mqtt://0.0.0.0:0"), "{}", lan.summary);
        assert_eq!(
            lan.check(&Files::default(), &creds(None, None), None),
            Err(Refusal::NotAuthorized)
        );
        assert_eq!(
            lan.check(&Files::default(), &creds(Some("x"), Some(b"y")), None),
            Err(Refusal::NotAuthorized)
        );
        let open = auth(
            AuthConfig {
                allow_anonymous: Some(true),
                ..AuthConfig::default()
            },
            &["mqtt://0.0.0.0:0"],
        );
        assert_eq!(
            open.check(&Files::default(), &creds(None, None), None),
            Ok(None)
        );
    }

    #[test]
    fn sys_topics_are_the_brokers_but_for_bridge_state() {
        for reserved in [
            "$SYS",
            "$SYS/broker/version",
            "$SYSTEM/x",
            "$SYS/broker/connection/b/state/x",
            "$SYS/broker/connection/state",
        ] {
            assert!(reserved_for_broker(reserved.as_bytes()), "{reserved}");
        }
        for open in [
            "$SYS/broker/connection/b/state",
            "$SYS/broker/connection//state",
            "$sys/x",
            "a/$SYS",
            "$own/x",
        ] {
            assert!(!reserved_for_broker(open.as_bytes()), "{open}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn costly_hashes_are_checked_off_the_worker() {
        let iterations = std::num::NonZeroU32::new(20_000).unwrap();
        let salt = b"0123456789ab".to_vec();
        let mut hash = vec![0; 64];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &salt,
            b"pw",
            &mut hash,
        );
        let h = passwd::Hash::Pbkdf2 {
            iterations,
            salt,
            hash,
        };
        assert!(h.is_costly());
        let a = Auth {
            files: RwLock::new(Files {
                passwords: Some(PasswordFile::parse(&format!("slow:{h}")).unwrap()),
                decoy: None,
                acl: None,
                anonymous_acl: None,
            }),
            allow_anonymous: false,
            ..Auth::open()
        };
        assert!(a.login(creds(Some("slow"), Some(b"pw"))).await.is_ok());
        assert!(a.login(creds(Some("slow"), Some(b"px"))).await.is_err());
    }

    #[test]
    fn identity_from_the_certificate_on_tls_only() {
        let a = Auth {
            identity_as_username: true,
            allow_anonymous: false,
            ..Auth::open()
        };
        let mut c = creds(Some("claimed"), None);
        c.tls_cn = Some(Some("device-7"));
        assert_eq!(
            a.check(&Files::default(), &c, None),
            Ok(Some("device-7".into()))
        );
        c.tls_cn = Some(None);
        assert_eq!(
            a.check(&Files::default(), &c, None),
            Err(Refusal::NotAuthorized)
        );
        c.tls_cn = None;
        assert_eq!(
            a.check(&Files::default(), &c, None),
            Err(Refusal::NotAuthorized),
            "plain listener"
        );
    }
}
