//! The secret key file: 64 hex characters and a newline, mode 0600, written by
//! write-then-rename so a crash leaves either the old file or the new one, never half of one.
//!
//! Reading is strict, because the key *is* the node's identity: a file that is unreadable,
//! readable by others, truncated or corrupt is an error naming it, never a panic and never a
//! quietly generated new identity.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use weft_transport::SecretKey;

use crate::{atomic_file::write_atomic, data_dir::DataDirError};

/// Hex characters of a key: 32 bytes.
const KEY_HEX_LEN: usize = 64;

/// The key at `path`, `None` if there is no file.
pub(crate) fn load(path: &Path) -> Result<Option<SecretKey>, DataDirError> {
    let unreadable = |source: io::Error| DataDirError::KeyUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(unreadable(err)),
    };
    if !metadata.is_file() {
        return Err(DataDirError::KeyCorrupt {
            path: path.to_path_buf(),
            reason: "it is not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(DataDirError::KeyPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    // A key file is 65 bytes; read a little more than that at most, so a huge file put in
    // its place is reported as corrupt without being read whole.
    let mut bytes = Vec::with_capacity(KEY_HEX_LEN + 2);
    {
        use std::io::Read;
        let file = fs::File::open(path).map_err(unreadable)?;
        file.take(4096)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
    }
    parse(&bytes)
        .map(Some)
        .map_err(|err| err.into_error(path.to_path_buf()))
}

/// What is wrong with the bytes of a key file.
#[derive(Debug, PartialEq, Eq)]
enum ParseError {
    /// Valid hex, but fewer characters than a key has: a write cut short.
    Truncated(usize),
    /// Anything else.
    Corrupt(String),
}

impl ParseError {
    fn into_error(self, path: PathBuf) -> DataDirError {
        match self {
            ParseError::Truncated(found) => DataDirError::KeyTruncated { path, found },
            ParseError::Corrupt(reason) => DataDirError::KeyCorrupt { path, reason },
        }
    }
}

fn parse(bytes: &[u8]) -> Result<SecretKey, ParseError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ParseError::Corrupt("it is not text (expected 64 hex characters)".into()))?;
    let hex = text.trim();
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(ParseError::Corrupt(format!(
            "{bad:?} is not a hex digit (expected 64 hex characters)"
        )));
    }
    if hex.len() < KEY_HEX_LEN {
        return Err(ParseError::Truncated(hex.len()));
    }
    if hex.len() > KEY_HEX_LEN {
        return Err(ParseError::Corrupt(format!(
            "{} hex characters where a key has {KEY_HEX_LEN}",
            hex.len()
        )));
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        // Both characters are ASCII hex digits (checked above), so neither step can fail;
        // they still answer with an error rather than a panic.
        let pair = std::str::from_utf8(pair).map_err(|_| ParseError::Corrupt("not hex".into()))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| ParseError::Corrupt("not hex".into()))?;
    }
    Ok(SecretKey::from_bytes(&key))
}

/// Writes `key` to `path`: mode 0600 from the first byte, by write-then-rename.
pub(crate) fn save(path: &Path, key: &SecretKey) -> Result<(), DataDirError> {
    let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(path, format!("{hex}\n").as_bytes(), 0o600).map_err(|source| {
        DataDirError::KeyWrite {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_save_writes() {
        let key = SecretKey::generate();
        let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let parsed = parse(format!("{hex}\n").as_bytes()).map_err(|e| format!("{e:?}"));
        assert_eq!(parsed.map(|k| k.peer_id()), Ok(key.peer_id()));
    }

    #[test]
    fn tells_truncated_from_corrupt() {
        assert!(matches!(parse(b""), Err(ParseError::Truncated(0))));
        assert!(matches!(parse(b"abcd\n"), Err(ParseError::Truncated(4))));
        assert!(matches!(parse(b"zz"), Err(ParseError::Corrupt(_))));
        assert!(matches!(parse(&[0xff, 0xfe]), Err(ParseError::Corrupt(_))));
        assert!(matches!(parse(&[b'a'; 66]), Err(ParseError::Corrupt(_))));
    }
}
