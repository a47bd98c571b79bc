//! mosquitto_passwd's file format: one `user:$7$ITERATIONS$SALT$HASH` line per user
//! (PBKDF2-HMAC-SHA512, mosquitto 2.x) or `user:$6$SALT$HASH` (SHA-512 of password then salt,
//! mosquitto 1.x). SALT and HASH are standard base64 with padding; the salt is 12 bytes and the
//! hash 64 when mosquitto writes them, but any length is read.

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::path::Path;

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, pbkdf2, rand::SecureRandom};
use subtle::ConstantTimeEq;

/// mosquitto_passwd 2.0 writes 101 iterations; we write what it writes so files stay
/// interchangeable (and cheap to check at CONNECT).
pub const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    /// `$6$`: SHA-512(password ‖ salt).
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl Hash {
    /// A new `$7$` hash with a random salt.
    pub fn new(password: &[u8]) -> anyhow::Result<Hash> {
        let mut salt = vec![0; SALT_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| anyhow!("the system random number generator failed"))?;
        let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let mut hash = vec![0; HASH_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &salt,
            password,
            &mut hash,
        );
        Ok(Hash::Pbkdf2 {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether checking takes long enough (about a millisecond or more) to keep off a
    /// runtime worker: mosquitto_passwd writes 101 iterations, newer versions can be asked
    /// for more.
    pub fn is_costly(&self) -> bool {
        matches!(self, Hash::Pbkdf2 { iterations, .. } if iterations.get() > 2_000)
    }

    /// Whether `password` hashes to this; the comparison takes the same time wherever the
    /// bytes differ.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Sha512 { salt, hash } => {
                let mut ctx = digest::Context::new(&digest::SHA512);
                ctx.update(password);
                ctx.update(salt);
                bool::from(ctx.finish().as_ref().ct_eq(hash))
            }
            Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => pbkdf2::verify(
                pbkdf2::PBKDF2_HMAC_SHA512,
                *iterations,
                salt,
                password,
                hash,
            )
            .is_ok(),
        }
    }

    fn parse(text: &str) -> Result<Hash, String> {
        let b64 = |what: &str, s: &str| {
            B64.decode(s)
                .map_err(|_| format!("the {what} '{s}' is not base64"))
        };
        let parts: Vec<&str> = text.split('$').collect();
        match parts.as_slice() {
            ["", "6", salt, hash] => Ok(Hash::Sha512 {
                salt: b64("salt", salt)?,
                hash: b64("hash", hash)?,
            }),
            ["", "7", iterations, salt, hash] => Ok(Hash::Pbkdf2 {
                iterations: iterations
                    .parse()
                    .map_err(|_| format!("'{iterations}' is not an iteration count (1 or more)"))?,
                salt: b64("salt", salt)?,
                hash: b64("hash", hash)?,
            }),
            _ if !text.starts_with('$') => Err(
                "the password is not hashed: hash the file with `mosquitto_passwd -U FILE`, or add the user with `smq passwd`".into(),
            ),
            _ => Err("expected $7$ITERATIONS$SALT$HASH or $6$SALT$HASH".into()),
        }
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", B64.encode(salt), B64.encode(hash))
            }
            Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                B64.encode(salt),
                B64.encode(hash)
            ),
        }
    }
}

/// A password file, in file order (so a rewrite keeps the order and the comments).
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
}

#[derive(Debug, Clone)]
enum Line {
    /// Comments and blank lines, kept as they were.
    Other(String),
    User(String, Hash),
}

impl PasswordFile {
    pub fn read(path: &Path) -> anyhow::Result<PasswordFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading password file {}", path.display()))?;
        PasswordFile::parse(&text).map_err(|(line, why)| {
            crate::exit::usage(format!("password file {}:{line}: {why}", path.display()))
        })
    }

    /// Errors carry the 1-based line number.
    pub fn parse(text: &str) -> Result<PasswordFile, (usize, String)> {
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                lines.push(Line::Other(line.to_owned()));
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| (i + 1, "expected USER:HASH".to_owned()))?;
            if user.is_empty() {
                return Err((i + 1, "the user name is empty".into()));
            }
            let hash = Hash::parse(hash).map_err(|why| (i + 1, format!("user '{user}': {why}")))?;
            lines.push(Line::User(user.to_owned(), hash));
        }
        Ok(PasswordFile { lines })
    }

    pub fn get(&self, user: &str) -> Option<&Hash> {
        // mosquitto uses the first entry of a user listed twice.
        self.lines.iter().find_map(|l| match l {
            Line::User(u, h) if u == user => Some(h),
            _ => None,
        })
    }

    /// A hash no password matches that costs what this file's most common kind of entry
    /// costs to check (`$6$`, or `$7$` with the most common iteration count): checked for an
    /// unknown user so that the answer's timing does not tell which names exist.
    pub fn decoy(&self) -> Hash {
        let mut counts: Vec<(Option<NonZeroU32>, usize)> = Vec::new();
        for l in &self.lines {
            let kind = match l {
                Line::User(_, Hash::Sha512 { .. }) => None,
                Line::User(_, Hash::Pbkdf2 { iterations, .. }) => Some(*iterations),
                Line::Other(_) => continue,
            };
            match counts.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((kind, 1)),
            }
        }
        // Ties go to the kind seen first; an empty file gets what `smq passwd` writes.
        let typical = counts
            .iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map_or(NonZeroU32::new(ITERATIONS), |(k, _)| *k);
        // An all-zero hash: no password derives to it that anyone could find.
        let (salt, hash) = (vec![0; SALT_LEN], vec![0; HASH_LEN]);
        match typical {
            None => Hash::Sha512 { salt, hash },
            Some(iterations) => Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.lines.iter().any(|l| matches!(l, Line::User(..)))
    }

    /// Adds the user, or replaces every entry of the user with one in the first one's place.
    pub fn set(&mut self, user: &str, hash: Hash) {
        let mut hash = Some(hash);
        self.lines.retain_mut(|l| match l {
            Line::User(u, h) if u == user => match hash.take() {
                Some(new) => {
                    *h = new;
                    true
                }
                None => false,
            },
            _ => true,
        });
        if let Some(h) = hash {
            self.lines.push(Line::User(user.to_owned(), h));
        }
    }

    /// Removes the user; false if it was not there.
    pub fn remove(&mut self, user: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::User(u, _) if u == user));
        before != self.lines.len()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let _ = match l {
                Line::Other(text) => writeln!(out, "{text}"),
                Line::User(u, h) => writeln!(out, "{u}:{h}"),
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_costs_what_the_typical_entry_costs() {
        let six = "$6$AAAAAAAAAAAAAAAA$AAAA";
        let seven = |n: u32| format!("$7${n}$AAAAAAAAAAAAAAAA$AAAA");
        let kind = |text: &str| match PasswordFile::parse(text).unwrap().decoy() {
            Hash::Sha512 { salt, hash } => {
                assert_eq!((salt.len(), hash.len()), (SALT_LEN, HASH_LEN));
                "6".to_owned()
            }
            Hash::Pbkdf2 { iterations, .. } => format!("7/{iterations}"),
        };
        assert_eq!(kind(""), format!("7/{ITERATIONS}"));
        assert_eq!(kind(&format!("a:{six}\nb:{six}\nc:{}\n", seven(101))), "6");
        let many = seven(100_000);
        assert_eq!(
            kind(&format!("# x\na:{many}\nb:{six}\nc:{many}\n")),
            "7/100000"
        );
        assert_eq!(
            kind(&format!("a:{}\nb:{six}\n", seven(5))),
            "7/5",
            "ties: the first"
        );
        assert!(!PasswordFile::default().decoy().verify(b""));
    }

    // Written by `mosquitto_passwd -c -b pw alice secret` (mosquitto 2.0.11).
    const MOSQUITTO_7: &str = "alice:$7$101$paU5uEN/Xa3/Jmt3$/OqSnaQfI+VEyVZ0yKLWROCZtLdktPufLi9L+pFRMtblsbxIIHD1YVhfyGofOzRN9B56VmVZj5d+/+pYDY1ajQ==";

    #[test]
    fn verifies_a_mosquitto_2_entry() {
        let f = PasswordFile::parse(MOSQUITTO_7).unwrap();
        let h = f.get("alice").unwrap();
        assert!(h.verify(b"secret"));
        assert!(!h.verify(b"secreT"));
        assert!(!h.verify(b""));
        assert!(f.get("bob").is_none());
        // Read and written back unchanged.
        assert_eq!(f.render(), format!("{MOSQUITTO_7}\n"));
    }

    #[test]
    fn verifies_a_sha512_entry() {
        // $6$: SHA-512(password ‖ salt), built here the way mosquitto 1.x did.
        let salt = b"0123456789ab";
        let mut ctx = digest::Context::new(&digest::SHA512);
        ctx.update(b"pw");
        ctx.update(salt);
        let line = format!(
            "bob:$6${}${}",
            B64.encode(salt),
            B64.encode(ctx.finish().as_ref())
        );
        let f = PasswordFile::parse(&line).unwrap();
        assert!(f.get("bob").unwrap().verify(b"pw"));
        assert!(!f.get("bob").unwrap().verify(b"pw2"));
        assert_eq!(f.render(), format!("{line}\n"));
    }

    #[test]
    fn new_hashes_look_like_mosquitto_ones() {
        let h = Hash::new(b"secret").unwrap();
        let text = h.to_string();
        let parts: Vec<&str> = text.split('$').collect();
        assert_eq!(parts[1], "7");
        assert_eq!(parts[2], "101");
        assert_eq!(parts[3].len(), 16, "12 salt bytes in base64");
        assert_eq!(parts[4].len(), 88, "64 hash bytes in base64");
        assert!(h.verify(b"secret"));
        assert!(!h.is_costly());
        assert_ne!(Hash::new(b"secret").unwrap(), h, "a fresh salt each time");
    }

    #[test]
    fn set_and_remove_keep_other_lines() {
        let mut f =
            PasswordFile::parse("# users\nalice:$6$AA==$AA==\n\nbob:$6$AA==$AA==\n").unwrap();
        let h = Hash::new(b"x").unwrap();
        f.set("alice", h.clone());
        f.set("carol", h.clone());
        assert!(f.remove("bob"));
        assert!(!f.remove("bob"));
        assert_eq!(f.render(), format!("# users\nalice:{h}\n\ncarol:{h}\n"));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let cases = [
            ("alice:$7$101$AA==\n", 1, "expected $7$"),
            ("# c\nalice:secret\n", 2, "mosquitto_passwd -U"),
            ("\nnocolon\n", 2, "USER:HASH"),
            (":$6$AA==$AA==", 1, "empty"),
            ("a:$7$x$AA==$AA==", 1, "iteration"),
            ("a:$7$0$AA==$AA==", 1, "iteration"),
            ("a:$6$!!$AA==", 1, "base64"),
        ];
        for (text, line, why) in cases {
            let (l, msg) = PasswordFile::parse(text).unwrap_err();
            assert_eq!(l, line, "{text:?}");
            assert!(msg.contains(why), "{text:?}: {msg}");
        }
    }
}
