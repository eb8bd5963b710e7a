//! Network isolation: a [`NetworkId`] namespaces every ALPN, so peers of different networks fail
//! at the QUIC handshake, before any payload is read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of a weft network: `blake3(name)`.
///
/// Two nodes talk only when they were built with the same network id; the id is part of every
/// ALPN they offer and accept.
///
/// ```
/// use weft_transport::NetworkId;
///
/// let id = NetworkId::from_name("weft-demo");
/// assert_eq!(id, NetworkId::from_name("weft-demo"));
/// assert_ne!(id, NetworkId::from_name("another"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetworkId([u8; 32]);

impl NetworkId {
    /// The id of the network called `name`.
    pub fn from_name(name: &str) -> Self {
        Self(*blake3::hash(name.as_bytes()).as_bytes())
    }

    /// The id from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id as it appears in ALPNs: the first 16 bytes in lowercase hex.
    ///
    /// 128 bits keep accidental collisions out of reach while leaving room in the 255-byte ALPN.
    pub fn alpn_label(&self) -> String {
        self.0[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The ALPN of `protocol` in this network: `weft/<network>/<name>/<version>`.
    pub fn alpn(&self, protocol: Protocol) -> Vec<u8> {
        format!("weft/{}/{}", self.alpn_label(), protocol).into_bytes()
    }
}

impl Default for NetworkId {
    /// The network named `weft`.
    fn default() -> Self {
        Self::from_name("weft")
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.alpn_label()[..12])
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkId({self})")
    }
}

/// A protocol name and version, such as `gossip/1`.
///
/// Versions are part of the ALPN, so two incompatible versions of a protocol never talk; a node
/// that speaks both registers both.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol {
    name: &'static str,
    version: u32,
}

impl Protocol {
    /// A protocol called `name` (lowercase ASCII letters, digits and `-`) at `version`.
    ///
    /// Panics when the name is empty or has other characters: protocol names are constants
    /// written by developers, and a bad one is a bug to catch at once.
    pub const fn new(name: &'static str, version: u32) -> Self {
        let bytes = name.as_bytes();
        assert!(!bytes.is_empty(), "protocol names are not empty");
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-',
                "protocol names are lowercase ASCII letters, digits and '-'"
            );
            i += 1;
        }
        Self { name, version }
    }

    /// The protocol's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The protocol's version.
    pub const fn version(&self) -> u32 {
        self.version
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_is_namespaced_and_versioned() {
        let net = NetworkId::from_name("test");
        let alpn = net.alpn(Protocol::new("gossip", 1));
        let text = String::from_utf8(alpn).unwrap();
        assert_eq!(text, format!("weft/{}/gossip/1", net.alpn_label()));
        assert_ne!(
            net.alpn(Protocol::new("gossip", 1)),
            NetworkId::from_name("other").alpn(Protocol::new("gossip", 1))
        );
        assert_ne!(
            net.alpn(Protocol::new("gossip", 1)),
            net.alpn(Protocol::new("gossip", 2))
        );
    }

    #[test]
    #[should_panic(expected = "protocol names")]
    fn bad_protocol_name_panics() {
        let _ = Protocol::new("Gossip/1", 1);
    }
}
