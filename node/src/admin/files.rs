//! The two files through which `weft` finds a running node: `admin.addr` and `admin.token`.
//!
//! Both are written by write-then-rename, so a reader sees the old file or the whole new one,
//! never half of one; the token is created with mode 0600 from the start (not chmod-ed after),
//! so there is no moment when another user could read it.

use std::fmt;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file in the data directory holding the admin server's bound address.
pub const ADDR_FILE: &str = "admin.addr";
/// The file in the data directory holding the admin token (mode 0600).
pub const TOKEN_FILE: &str = "admin.token";

/// The token's length in random bytes (written as twice as many hex digits).
const TOKEN_BYTES: usize = 32;

/// The secret a client shows in `Authorization: Bearer <token>`. Its `Debug` hides it, so it
/// never lands in a log.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    /// A fresh token from the operating system's generator.
    pub(crate) fn generate() -> io::Result<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|err| io::Error::other(err.to_string()))?;
        Ok(Self(hex::encode(bytes)))
    }

    pub(crate) fn from_text(text: &str) -> Self {
        Self(text.trim().to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares without an early exit, so the time taken says nothing about how much of a
    /// guess was right.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if presented.len() != expected.len() {
            return false;
        }
        expected
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Removes a file, treating "already gone" as done.
pub(crate) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Removes a file if it still holds `expected`; one that is gone or was rewritten is left.
pub(crate) fn remove_if_unchanged(path: &Path, expected: &[u8]) -> io::Result<()> {
    match fs::read(path) {
        Ok(contents) if contents == expected => remove_if_present(path),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Where a data directory's admin files are.
#[derive(Debug, Clone)]
pub(crate) struct AdminFiles {
    pub(crate) addr: PathBuf,
    pub(crate) token: PathBuf,
}

impl AdminFiles {
    pub(crate) fn in_dir(data_dir: &Path) -> Self {
        Self {
            addr: data_dir.join(ADDR_FILE),
            token: data_dir.join(TOKEN_FILE),
        }
    }
}

/// Parses the contents of `admin.addr`.
pub(crate) fn parse_addr(text: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    text.trim().parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_file_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"one").unwrap();
        remove_if_present(&path).unwrap();
        remove_if_present(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_eq!(a.as_str().len(), 2 * TOKEN_BYTES);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn matching_needs_the_whole_token() {
        let token = Token::from_text("abcd\n");
        assert!(token.matches(b"abcd"));
        assert!(!token.matches(b"abc"));
        assert!(!token.matches(b"abce"));
        assert!(!token.matches(b"abcde"));
    }
}
