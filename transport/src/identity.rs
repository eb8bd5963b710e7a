//! Node identities: an ed25519 [`SecretKey`] per node, and its public half, the [`PeerId`].

use std::{fmt, io, path::Path, str::FromStr};

use serde::{Deserialize, Serialize};

/// The identity of a peer: an ed25519 public key.
///
/// This is the same key iroh calls an `EndpointId`, so a weft peer is dialled by its id. It
/// displays as 64 lowercase hex characters and parses from that form.
///
/// ```
/// use weft_transport::{PeerId, SecretKey};
///
/// let id = SecretKey::generate().peer_id();
/// let parsed: PeerId = id.to_string().parse().unwrap();
/// assert_eq!(id, parsed);
/// assert_eq!(id.fmt_short().len(), 10);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(iroh_base::PublicKey);

/// Hex text in human-readable formats (TOML, JSON); a 32-byte string in CBOR, which is 34 bytes
/// on the wire instead of the ~60 a serde array of 32 numbers would take.
impl Serialize for PeerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_string())
        } else {
            serializer.serialize_bytes(self.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            let bytes = serde_bytes::ByteArray::<32>::deserialize(deserializer)?;
            Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
        }
    }
}

impl PeerId {
    /// The 32 bytes of the public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Builds a peer id from 32 bytes, failing when they are not a valid ed25519 point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PeerIdError> {
        iroh_base::PublicKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| PeerIdError::NotAKey)
    }

    /// A short form for logs and tables: the first 10 hex characters.
    pub fn fmt_short(&self) -> String {
        let mut hex = self.to_string();
        hex.truncate(10);
        hex
    }

    /// The iroh public key (`EndpointId`) of this peer.
    pub fn to_iroh(self) -> iroh_base::PublicKey {
        self.0
    }

    /// Verifies an ed25519 signature by this peer over `message`.
    pub(crate) fn verify_raw(
        &self,
        message: &[u8],
        signature: &iroh_base::Signature,
    ) -> Result<(), iroh_base::SignatureError> {
        self.0.verify(message, signature)
    }
}

impl From<iroh_base::PublicKey> for PeerId {
    fn from(key: iroh_base::PublicKey) -> Self {
        Self(key)
    }
}

impl From<PeerId> for iroh_base::PublicKey {
    fn from(id: PeerId) -> Self {
        id.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.fmt_short())
    }
}

/// Why a string or bytes are not a [`PeerId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIdError {
    /// The string is not 64 characters long.
    #[error("a peer id is 64 hex characters, got {0}")]
    WrongLength(usize),
    /// The string has a character outside `0-9a-f`.
    #[error("a peer id is hex: {0:?} is not a hex digit")]
    NotHex(char),
    /// The bytes are not a valid ed25519 public key.
    #[error("the bytes are not a valid ed25519 public key")]
    NotAKey,
}

impl FromStr for PeerId {
    type Err = PeerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_hex_32(s)?;
        Self::from_bytes(&bytes)
    }
}

fn decode_hex_32(s: &str) -> Result<[u8; 32], PeerIdError> {
    if s.len() != 64 {
        return Err(PeerIdError::WrongLength(s.chars().count()));
    }
    if let Some(bad) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(PeerIdError::NotHex(bad));
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        // Both characters are ASCII hex digits, checked above.
        let pair = std::str::from_utf8(chunk).map_err(|_| PeerIdError::NotHex('?'))?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| PeerIdError::NotHex('?'))?;
    }
    Ok(out)
}

/// A node's ed25519 secret key. Its public half is the node's [`PeerId`].
///
/// ```
/// use weft_transport::SecretKey;
///
/// let key = SecretKey::generate();
/// let again = SecretKey::from_bytes(&key.to_bytes());
/// assert_eq!(key.peer_id(), again.peer_id());
/// ```
#[derive(Clone)]
pub struct SecretKey(iroh_base::SecretKey);

impl SecretKey {
    /// Generates a fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self(iroh_base::SecretKey::generate())
    }

    /// Builds a key from its 32 secret bytes (an ed25519 seed).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(iroh_base::SecretKey::from_bytes(bytes))
    }

    /// The 32 secret bytes. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public identity of this key.
    pub fn peer_id(&self) -> PeerId {
        PeerId(self.0.public())
    }

    /// The iroh secret key, for users who build their own iroh endpoint.
    pub fn to_iroh(&self) -> iroh_base::SecretKey {
        self.0.clone()
    }

    /// Signs raw bytes. Crate-private: every public signature goes through a domain tag.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> iroh_base::Signature {
        self.0.sign(message)
    }

    /// Saves the key to `path` as 64 hex characters, readable and writable by the owner only.
    ///
    /// The file is created with mode `0600` before the secret is written, so the secret is never
    /// on disk with wider permissions.
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        use std::io::Write;
        let path = path.as_ref();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        #[cfg(unix)]
        {
            // `mode` applies only when the file is created; tighten an existing file too.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        let hex: String = self.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        file.write_all(hex.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }

    /// Loads a key saved by [`SecretKey::save`].
    ///
    /// Fails with [`io::ErrorKind::InvalidData`] when the file is not 64 hex characters, and, on
    /// unix, with [`io::ErrorKind::PermissionDenied`] when group or others may read it.
    pub fn load(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "key file {} has mode {:o}; it must be readable by its owner only (chmod 600)",
                        path.display(),
                        mode & 0o777
                    ),
                ));
            }
        }
        let text = std::fs::read_to_string(path)?;
        let bytes = decode_hex_32(text.trim()).map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("key file {}: {err}", path.display()),
            )
        })?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Loads the key at `path`, or generates one and saves it there when the file is missing.
    pub fn load_or_generate(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        match Self::load(path) {
            Ok(key) => Ok(key),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let key = Self::generate();
                key.save(path)?;
                Ok(key)
            }
            Err(err) => Err(err),
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "SecretKey(peer {})", self.peer_id().fmt_short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_parse_errors_are_specific() {
        assert_eq!("abc".parse::<PeerId>(), Err(PeerIdError::WrongLength(3)));
        let not_hex = "z".repeat(64);
        assert_eq!(not_hex.parse::<PeerId>(), Err(PeerIdError::NotHex('z')));
    }

    #[test]
    fn peer_id_is_a_byte_string_in_cbor() {
        let id = SecretKey::from_bytes(&[1; 32]).peer_id();
        let cbor = crate::cbor_encode(&id).unwrap();
        assert_eq!(cbor.len(), 34, "2-byte header + 32 bytes");
        assert_eq!(crate::cbor_decode::<PeerId>(&cbor).unwrap(), id);
        let short = crate::cbor_encode(&serde_bytes::Bytes::new(&[0; 31])).unwrap();
        assert!(crate::cbor_decode::<PeerId>(&short).is_err());
    }

    #[test]
    fn key_file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = SecretKey::load_or_generate(&path).unwrap();
        let again = SecretKey::load_or_generate(&path).unwrap();
        assert_eq!(key.peer_id(), again.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SecretKey::load(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        }
    }

    #[test]
    fn garbage_key_file_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        SecretKey::generate().save(&path).unwrap();
        std::fs::write(&path, "not a key").unwrap();
        let err = SecretKey::load(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
