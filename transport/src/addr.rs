//! How to reach a peer: [`PeerAddr`], and its copy-and-paste form, the ticket (`weft1...`).

use std::{collections::BTreeSet, fmt, net::SocketAddr, str::FromStr};

pub use iroh_base::RelayUrl;
use serde::{Deserialize, Serialize};

use crate::{
    frame::{cbor_decode, cbor_encode},
    identity::PeerId,
};

/// A peer's id and the addresses it can be reached at.
///
/// The id alone is enough when an address source knows the peer (the memory network, or
/// discovery); direct addresses and a relay URL are hints that make the first dial work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerAddr {
    /// The peer's identity, checked by the QUIC handshake.
    pub id: PeerId,
    /// Direct UDP addresses.
    pub direct: BTreeSet<SocketAddr>,
    /// A relay the peer is connected to, if any.
    pub relay: Option<RelayUrl>,
}

impl PeerAddr {
    /// An address with the id only.
    pub fn new(id: PeerId) -> Self {
        Self {
            id,
            direct: BTreeSet::new(),
            relay: None,
        }
    }

    /// Adds a direct address.
    pub fn with_direct(mut self, addr: SocketAddr) -> Self {
        self.direct.insert(addr);
        self
    }

    /// Sets the relay URL.
    pub fn with_relay(mut self, relay: RelayUrl) -> Self {
        self.relay = Some(relay);
        self
    }

    /// The ticket string for this address.
    pub fn to_ticket(&self) -> String {
        Ticket::from(self.clone()).to_string()
    }

    /// Parses a ticket string.
    pub fn from_ticket(ticket: &str) -> Result<Self, TicketError> {
        Ok(ticket.parse::<Ticket>()?.into())
    }
}

impl From<PeerId> for PeerAddr {
    fn from(id: PeerId) -> Self {
        Self::new(id)
    }
}

/// A [`PeerAddr`] as a string that users copy and paste: `weft1` followed by lowercase base32 of
/// the CBOR-encoded address and a 4-byte checksum.
///
/// ```
/// use weft_transport::{PeerAddr, SecretKey, Ticket};
///
/// let addr = PeerAddr::new(SecretKey::generate().peer_id())
///     .with_direct("127.0.0.1:4433".parse().unwrap());
/// let ticket = Ticket::from(addr.clone()).to_string();
/// assert!(ticket.starts_with("weft1"));
/// let back: Ticket = ticket.parse().unwrap();
/// assert_eq!(PeerAddr::from(back), addr);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket(PeerAddr);

impl Ticket {
    /// The prefix every ticket starts with; the `1` is the ticket format version.
    pub const PREFIX: &'static str = "weft1";
    /// Length of the checksum that ends the decoded bytes.
    const CHECKSUM_LEN: usize = 4;
    /// Tickets longer than this are refused before decoding (an address with a relay and a few
    /// dozen direct addresses fits easily).
    pub const MAX_LEN: usize = 4096;

    fn checksum(body: &[u8]) -> [u8; 4] {
        let digest = crate::DomainTag::new("weft/ticket/1").digest(body);
        [digest[0], digest[1], digest[2], digest[3]]
    }
}

impl From<PeerAddr> for Ticket {
    fn from(addr: PeerAddr) -> Self {
        Self(addr)
    }
}

impl From<Ticket> for PeerAddr {
    fn from(ticket: Ticket) -> Self {
        ticket.0
    }
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = cbor_encode(&self.0).map_err(|_| fmt::Error)?;
        let checksum = Self::checksum(&bytes);
        bytes.extend_from_slice(&checksum);
        let body = data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase();
        write!(f, "{}{body}", Self::PREFIX)
    }
}

/// Why a string is not a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The string does not start with `weft1`.
    #[error("a weft ticket starts with \"weft1\"")]
    MissingPrefix,
    /// The string is longer than [`Ticket::MAX_LEN`].
    #[error("ticket is {0} characters long, more than the {max} allowed", max = Ticket::MAX_LEN)]
    TooLong(usize),
    /// The body is not base32.
    #[error("ticket is not valid base32 after \"weft1\": {0}")]
    NotBase32(String),
    /// The checksum does not match: the ticket was mistyped or cut short.
    #[error("ticket checksum does not match: it was mistyped or cut short")]
    BadChecksum,
    /// The checksum matches but the content is not a peer address.
    #[error("ticket content is not a peer address: {0}")]
    Malformed(String),
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > Self::MAX_LEN {
            return Err(TicketError::TooLong(s.len()));
        }
        let body = s
            .strip_prefix(Self::PREFIX)
            .ok_or(TicketError::MissingPrefix)?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|err| TicketError::NotBase32(err.to_string()))?;
        if bytes.len() < Self::CHECKSUM_LEN {
            return Err(TicketError::BadChecksum);
        }
        let (content, checksum) = bytes.split_at(bytes.len() - Self::CHECKSUM_LEN);
        if checksum != Self::checksum(content) {
            return Err(TicketError::BadChecksum);
        }
        let addr: PeerAddr =
            cbor_decode(content).map_err(|err| TicketError::Malformed(err.to_string()))?;
        Ok(Self(addr))
    }
}

/// The iroh address of `addr` (to dial it, or to give it to iroh's address lookup).
#[cfg(feature = "net")]
pub(crate) fn to_endpoint_addr(addr: &PeerAddr) -> iroh_base::EndpointAddr {
    use iroh_base::TransportAddr;
    let direct = addr.direct.iter().copied().map(TransportAddr::Ip);
    let relay = addr.relay.iter().cloned().map(TransportAddr::Relay);
    iroh_base::EndpointAddr::from_parts(addr.id.to_iroh(), direct.chain(relay))
}

/// The address iroh reports, as a [`PeerAddr`].
#[cfg(feature = "net")]
pub(crate) fn from_endpoint_addr(addr: &iroh_base::EndpointAddr) -> PeerAddr {
    PeerAddr {
        id: addr.id.into(),
        direct: addr.ip_addrs().copied().collect(),
        relay: addr.relay_urls().next().cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    fn sample() -> PeerAddr {
        PeerAddr::new(SecretKey::generate().peer_id())
            .with_direct("127.0.0.1:1234".parse().unwrap())
            .with_direct("[::1]:5678".parse().unwrap())
            .with_relay("https://relay.example.invalid".parse().unwrap())
    }

    #[test]
    fn round_trip() {
        let addr = sample();
        assert_eq!(PeerAddr::from_ticket(&addr.to_ticket()).unwrap(), addr);
        let bare = PeerAddr::new(SecretKey::generate().peer_id());
        assert_eq!(PeerAddr::from_ticket(&bare.to_ticket()).unwrap(), bare);
    }

    #[test]
    fn garbage_tickets_have_clear_errors() {
        let ticket = sample().to_ticket();
        assert_eq!("hello".parse::<Ticket>(), Err(TicketError::MissingPrefix));
        assert!(matches!(
            "weft1!!!!".parse::<Ticket>(),
            Err(TicketError::NotBase32(_))
        ));
        // Cut short: base32 may still decode, the checksum catches it.
        let cut = &ticket[..ticket.len() - 8];
        assert!(matches!(
            cut.parse::<Ticket>(),
            Err(TicketError::BadChecksum | TicketError::NotBase32(_))
        ));
        // One character changed.
        let mut typo: Vec<char> = ticket.chars().collect();
        let i = typo.len() / 2;
        typo[i] = if typo[i] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            typo.parse::<Ticket>(),
            Err(TicketError::BadChecksum | TicketError::NotBase32(_))
        ));
        assert!(matches!(
            format!("weft1{}", "a".repeat(5000)).parse::<Ticket>(),
            Err(TicketError::TooLong(_))
        ));
        // A valid checksum over bytes that are not an address.
        let mut body = b"not cbor".to_vec();
        body.extend_from_slice(&Ticket::checksum(b"not cbor"));
        let forged = format!(
            "weft1{}",
            data_encoding::BASE32_NOPAD
                .encode(&body)
                .to_ascii_lowercase()
        );
        assert!(matches!(
            forged.parse::<Ticket>(),
            Err(TicketError::Malformed(_))
        ));
    }
}
