//! Local-network beacons: the datagram a node multicasts on its link so that nodes of the same
//! network find it with no ticket ([`crate::BootstrapConfig::local_network`]), and the bounded
//! table of the peers seen. Pure: no sockets, no clock (time is passed in).
//!
//! A beacon (version 1), at most [`MAX_BEACON`] bytes, big-endian:
//!
//! ```text
//! "weftlan1"                 8 bytes: magic and version
//! network id                 32 bytes: blake3 of the network's name, as in every ALPN
//! peer id                    32 bytes: the sender's ed25519 public key
//! n                          1 byte: direct addresses that follow, at most MAX_ADDRS
//! n × address                family (4 or 6: 1 byte), IP (4 or 16 bytes), port (2 bytes)
//! ```
//!
//! The network travels as its id, not its name: nodes compare ids, and a name a user chose
//! stays off the wire. A beacon is unsigned: its peer id is only a hint. The node dials the
//! addresses, and the QUIC handshake authenticates the id (a forged beacon costs the node a
//! failed dial, bounded by [`Sightings`]' admission per interval).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use weft_transport::{NetworkId, PeerAddr, PeerId};

/// Magic and version at the start of every beacon.
const MAGIC: &[u8; 8] = b"weftlan1";

/// Most direct addresses in a beacon; a node with more sends its first ones.
pub const MAX_ADDRS: usize = 8;

/// The largest beacon: a longer datagram is not one (read into a buffer one byte larger, so a
/// longer datagram shows as that and is refused before decoding).
pub const MAX_BEACON: usize = 8 + 32 + 32 + 1 + MAX_ADDRS * (1 + 16 + 2);

/// What a beacon says: this peer of this network is at these addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Beacon {
    pub(crate) network: NetworkId,
    pub(crate) addr: PeerAddr,
}

/// Why a datagram is not a beacon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BeaconError {
    #[error("{0} bytes, over the {MAX_BEACON}-byte limit")]
    TooLarge(usize),
    #[error("not a weft beacon (wrong magic or version)")]
    Magic,
    #[error("truncated")]
    Truncated,
    #[error("{0} addresses, over the limit of {MAX_ADDRS}")]
    TooManyAddrs(usize),
    #[error("unknown address family {0}")]
    Family(u8),
    #[error("bad peer id")]
    PeerId,
    #[error("{0} bytes after the beacon")]
    Trailing(usize),
}

impl Beacon {
    /// The datagram: the first [`MAX_ADDRS`] direct addresses of `addr` (relays are not sent:
    /// a local peer is reached directly).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_BEACON);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(self.network.as_bytes());
        out.extend_from_slice(self.addr.id.as_bytes());
        let addrs: Vec<&SocketAddr> = self.addr.direct.iter().take(MAX_ADDRS).collect();
        out.push(u8::try_from(addrs.len()).unwrap_or(u8::MAX));
        for addr in addrs {
            match addr.ip() {
                IpAddr::V4(ip) => {
                    out.push(4);
                    out.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.push(6);
                    out.extend_from_slice(&ip.octets());
                }
            }
            out.extend_from_slice(&addr.port().to_be_bytes());
        }
        out
    }

    /// Reads a datagram; every malformed one is an error, nothing is allocated for a large one.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, BeaconError> {
        if bytes.len() > MAX_BEACON {
            return Err(BeaconError::TooLarge(bytes.len()));
        }
        let mut rest = bytes;
        if take(&mut rest, MAGIC.len())? != MAGIC {
            return Err(BeaconError::Magic);
        }
        let network = NetworkId::from_bytes(array(take(&mut rest, 32)?));
        let id =
            PeerId::from_bytes(&array(take(&mut rest, 32)?)).map_err(|_| BeaconError::PeerId)?;
        let n = usize::from(take(&mut rest, 1)?[0]);
        if n > MAX_ADDRS {
            return Err(BeaconError::TooManyAddrs(n));
        }
        let mut addr = PeerAddr::new(id);
        for _ in 0..n {
            let ip = match take(&mut rest, 1)?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(array::<4>(take(&mut rest, 4)?))),
                6 => IpAddr::V6(Ipv6Addr::from(array::<16>(take(&mut rest, 16)?))),
                other => return Err(BeaconError::Family(other)),
            };
            let port = u16::from_be_bytes(array(take(&mut rest, 2)?));
            addr.direct.insert(SocketAddr::new(ip, port));
        }
        if !rest.is_empty() {
            return Err(BeaconError::Trailing(rest.len()));
        }
        Ok(Self { network, addr })
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], BeaconError> {
    if rest.len() < n {
        return Err(BeaconError::Truncated);
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

/// What became of one beacon ([`Sightings::see`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A peer new to the table, or at new addresses: hand it to the node.
    New(PeerAddr),
    /// Seen before at these addresses: nothing to do.
    Known,
    /// A beacon of another network: ignored.
    OtherNetwork,
    /// This node's own beacon (multicast loops back): ignored.
    Own,
    /// Over this interval's admission budget: dropped; a later beacon of the peer is admitted.
    OverBudget,
}

/// The peers beacons showed, bounded: at most `capacity` remembered (the one seen longest ago
/// is forgotten first), and at most `per_interval` new ones admitted per `interval` (more are
/// dropped until the next interval), so a flood of beacons with made-up ids costs a bounded
/// number of dials.
#[derive(Debug)]
pub(crate) struct Sightings {
    network: NetworkId,
    me: PeerId,
    capacity: usize,
    per_interval: usize,
    interval: Duration,
    /// Last address and last time seen, per peer.
    peers: HashMap<PeerId, (PeerAddr, Duration)>,
    interval_start: Duration,
    admitted: usize,
}

impl Sightings {
    pub(crate) fn new(
        network: NetworkId,
        me: PeerId,
        capacity: usize,
        per_interval: usize,
        interval: Duration,
    ) -> Self {
        Self {
            network,
            me,
            capacity,
            per_interval,
            interval,
            peers: HashMap::new(),
            interval_start: Duration::ZERO,
            admitted: 0,
        }
    }

    /// A beacon arrived at `now` (time since any fixed start).
    pub(crate) fn see(&mut self, beacon: Beacon, now: Duration) -> Seen {
        if beacon.network != self.network {
            return Seen::OtherNetwork;
        }
        if beacon.addr.id == self.me {
            return Seen::Own;
        }
        let id = beacon.addr.id;
        if let Some((addr, seen)) = self.peers.get_mut(&id)
            && *addr == beacon.addr
        {
            *seen = now;
            return Seen::Known;
        }
        if now.saturating_sub(self.interval_start) >= self.interval {
            self.interval_start = now;
            self.admitted = 0;
        }
        if self.admitted >= self.per_interval {
            return Seen::OverBudget;
        }
        self.admitted += 1;
        if self.peers.len() >= self.capacity && !self.peers.contains_key(&id) {
            let oldest = self.peers.iter().min_by_key(|(_, (_, seen))| *seen);
            if let Some((&oldest, _)) = oldest {
                self.peers.remove(&oldest);
            }
        }
        self.peers.insert(id, (beacon.addr.clone(), now));
        Seen::New(beacon.addr)
    }

    /// The peers remembered, most recently seen first.
    pub(crate) fn peers(&self) -> Vec<PeerAddr> {
        let mut peers: Vec<&(PeerAddr, Duration)> = self.peers.values().collect();
        peers.sort_by_key(|(_, seen)| std::cmp::Reverse(*seen));
        peers.into_iter().map(|(addr, _)| addr.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use weft_transport::SecretKey;

    use super::*;

    fn beacon(network: &str, addrs: &[&str]) -> Beacon {
        let mut addr = PeerAddr::new(SecretKey::generate().peer_id());
        for a in addrs {
            addr.direct.insert(a.parse().expect("addr"));
        }
        Beacon {
            network: NetworkId::from_name(network),
            addr,
        }
    }

    #[test]
    fn a_beacon_round_trips_at_its_largest() {
        let addrs: Vec<String> = (0..MAX_ADDRS)
            .map(|i| format!("[fe80::{i}]:{}", 4000 + i))
            .collect();
        let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let b = beacon("lan", &addrs);
        let bytes = b.encode();
        assert_eq!(bytes.len(), MAX_BEACON);
        assert_eq!(Beacon::decode(&bytes), Ok(b));
        let small = beacon("lan", &["10.0.0.1:4433"]);
        assert_eq!(Beacon::decode(&small.encode()), Ok(small));
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        let bytes = beacon("lan", &["10.0.0.1:4433"]).encode();
        let mut long = bytes.clone();
        long.resize(MAX_BEACON + 1, 0);
        assert_eq!(
            Beacon::decode(&long),
            Err(BeaconError::TooLarge(MAX_BEACON + 1))
        );
        assert_eq!(Beacon::decode(b"hello"), Err(BeaconError::Truncated));
        let mut other = bytes.clone();
        other[7] = b'2';
        assert_eq!(Beacon::decode(&other), Err(BeaconError::Magic));
        for cut in 0..bytes.len() {
            assert!(Beacon::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Beacon::decode(&trailing), Err(BeaconError::Trailing(1)));
        let mut family = bytes.clone();
        family[73] = 5;
        assert_eq!(Beacon::decode(&family), Err(BeaconError::Family(5)));
        let mut many = bytes;
        many[72] = 9;
        assert_eq!(Beacon::decode(&many), Err(BeaconError::TooManyAddrs(9)));
    }

    #[test]
    fn sightings_ignore_other_networks_and_self_and_admit_a_bounded_number() {
        let me = SecretKey::generate().peer_id();
        let second = Duration::from_secs(1);
        let mut seen = Sightings::new(NetworkId::from_name("lan"), me, 3, 2, second);
        let other = beacon("other", &["10.0.0.9:1"]);
        assert_eq!(seen.see(other, Duration::ZERO), Seen::OtherNetwork);
        let mut own = beacon("lan", &["10.0.0.8:1"]);
        own.addr.id = me;
        assert_eq!(seen.see(own, Duration::ZERO), Seen::Own);

        let peers: Vec<Beacon> = (0..4)
            .map(|i| beacon("lan", &[&format!("10.0.0.{i}:1")]))
            .collect();
        let t = |ms| Duration::from_millis(ms);
        assert_eq!(
            seen.see(peers[0].clone(), t(0)),
            Seen::New(peers[0].addr.clone())
        );
        assert_eq!(seen.see(peers[0].clone(), t(10)), Seen::Known);
        assert!(matches!(seen.see(peers[1].clone(), t(20)), Seen::New(_)));
        assert_eq!(seen.see(peers[2].clone(), t(30)), Seen::OverBudget);
        // The next interval admits again; the table holds three, forgetting the oldest.
        assert!(matches!(seen.see(peers[2].clone(), t(1000)), Seen::New(_)));
        assert!(matches!(seen.see(peers[3].clone(), t(1001)), Seen::New(_)));
        let ids: Vec<PeerId> = seen.peers().iter().map(|a| a.id).collect();
        assert_eq!(ids, [peers[3].addr.id, peers[2].addr.id, peers[1].addr.id]);
        // A known peer at a new address is news.
        let mut moved = peers[3].clone();
        moved.addr.direct = ["10.0.0.99:2".parse().expect("addr")].into();
        assert_eq!(seen.see(moved.clone(), t(2000)), Seen::New(moved.addr));
    }
}
