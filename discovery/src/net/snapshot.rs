//! [`CatalogSnapshot`]: a copy of a node's catalog, printable as a table.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

use weft_transport::PeerId;

use crate::proto::{PeerEntry, Record};

/// A copy of a node's catalog at one moment. Prints as a table, one line per peer:
///
/// ```
/// use std::{collections::BTreeMap, time::Duration};
/// use weft_discovery::{CatalogSnapshot, ENTRY_VERSION, PeerEntry, Time, Version};
/// use weft_transport::{NetworkId, SecretKey};
///
/// let local = PeerEntry {
///     peer: SecretKey::from_bytes(&[1; 32]).peer_id(),
///     network: NetworkId::from_name("demo"),
///     direct: ["127.0.0.1:4433".parse().unwrap()].into(),
///     relay: None,
///     version: Version::new(1_000, 2),
///     timestamp: Time::from_millis(1_000),
///     tags: ["storage".to_string()].into(),
///     metadata: [("region".to_string(), "eu".to_string())].into(),
///     protocol: ENTRY_VERSION,
/// };
/// let snapshot = CatalogSnapshot { local, peers: BTreeMap::new(), taken: Duration::ZERO };
/// let table = snapshot.to_string();
/// assert!(table.lines().nth(1).unwrap().contains("storage"));
/// ```
#[derive(Debug, Clone)]
pub struct CatalogSnapshot {
    /// The local entry.
    pub local: PeerEntry,
    /// The remote entries, by peer id.
    pub peers: BTreeMap<PeerId, Record>,
    /// When the snapshot was taken, on the node's monotonic clock: the `now` against which
    /// the records' times ([`Record::refreshed`], [`Record::expires`], [`Record::held`]) read.
    pub taken: Duration,
}

impl CatalogSnapshot {
    /// Whether `peer` is in the catalog (the local peer counts).
    pub fn contains(&self, peer: &PeerId) -> bool {
        *peer == self.local.peer || self.peers.contains_key(peer)
    }

    /// The entry of `peer`, local or remote.
    pub fn entry(&self, peer: &PeerId) -> Option<&PeerEntry> {
        if *peer == self.local.peer {
            return Some(&self.local);
        }
        self.peers.get(peer).map(Record::entry)
    }

    /// Every peer id in the catalog, the local one included, in order.
    pub fn ids(&self) -> BTreeSet<PeerId> {
        let mut ids: BTreeSet<PeerId> = self.peers.keys().copied().collect();
        ids.insert(self.local.peer);
        ids
    }
}

impl fmt::Display for CatalogSnapshot {
    /// One line per peer, the local one first (marked `*`): short id, version, tags, metadata,
    /// direct addresses, and for remote peers whether it is a neighbour and the last RTT.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>8} {:<24} {:<24} {:<24} {:>4} {:>8}",
            "peer", "version", "tags", "metadata", "direct", "nbr", "rtt"
        )?;
        write_row(f, &self.local, "*", "", "")?;
        for record in self.peers.values() {
            let neighbour = if record.is_neighbour() { "yes" } else { "" };
            let rtt = record
                .rtt()
                .map(|rtt| format!("{}ms", rtt.as_millis()))
                .unwrap_or_default();
            write_row(f, record.entry(), "", neighbour, &rtt)?;
        }
        Ok(())
    }
}

fn write_row(
    f: &mut fmt::Formatter<'_>,
    entry: &PeerEntry,
    mark: &str,
    neighbour: &str,
    rtt: &str,
) -> fmt::Result {
    let tags: Vec<&str> = entry.tags.iter().map(String::as_str).collect();
    let metadata: Vec<String> = entry
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let direct: Vec<String> = entry.direct.iter().map(ToString::to_string).collect();
    let version = format!("{}", entry.version.seq);
    writeln!(
        f,
        "{:<12} {:>8} {:<24} {:<24} {:<24} {:>4} {:>8}",
        format!("{}{mark}", entry.peer.fmt_short()),
        version,
        tags.join(","),
        metadata.join(","),
        direct.join(","),
        neighbour,
        rtt
    )
}
