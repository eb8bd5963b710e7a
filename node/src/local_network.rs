//! Opt-in local-network discovery (`[bootstrap] local_network = true`): nodes on one link find
//! each other with no ticket, by multicasting [`Beacon`]s.
//!
//! A node joins the multicast group [`LOCAL_NETWORK_GROUP`] on the interface of its `[node]
//! bind` address, sends its beacon (network id, peer id, direct addresses) at start and every
//! [`BEACON_INTERVAL`], and answers a peer it has not seen with its own beacon at once, so
//! two nodes meet within one round trip whichever starts first. The datagrams carry a TTL of
//! 1: they never leave the link.
//!
//! A peer from a beacon of the same network (others are ignored) is handed to the node like a
//! bootstrap peer: its address to the endpoint's address book, a dial to discovery (which then
//! syncs catalogs with it), the registry's routing table, and the peers every topic the node
//! subscribes to joins through ([`crate::Node::topic_bootstrap`]). Its id is only a hint: every
//! layer dials it, and the QUIC handshake authenticates it. Bounds: at most
//! [`MAX_NEW_PER_INTERVAL`] new peers admitted per interval and [`MAX_REMEMBERED`] remembered
//! (see [`Sightings`]); a beacon is at most [`crate::beacon::MAX_BEACON`] bytes, and a longer
//! datagram is refused unread.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{net::UdpSocket, time::Instant};
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};
use weft_discovery::Discovery;
use weft_registry::Registry;
use weft_transport::{Endpoint, NetworkId, PeerAddr};

use crate::beacon::{Beacon, MAX_BEACON, Seen, Sightings};

/// The multicast group and port of the beacons: organisation-local scope (239.255.0.0/16),
/// which routers do not forward beyond a site, and a TTL of 1 keeps it on the link.
pub const LOCAL_NETWORK_GROUP: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 87, 70), 47_470);

/// How often a node sends its beacon (and once at start, and in answer to a new peer).
pub const BEACON_INTERVAL: Duration = Duration::from_secs(5);

/// Most new peers (or known ones at new addresses) admitted per [`BEACON_INTERVAL`]; the
/// beacons of more are dropped until the next interval.
pub const MAX_NEW_PER_INTERVAL: usize = 16;

/// Most peers remembered from beacons; the one seen longest ago is forgotten first.
pub const MAX_REMEMBERED: usize = 256;

/// The running beacon task and what it has seen. Dropping it stops the task.
#[derive(Debug)]
pub(crate) struct LocalNetwork {
    sightings: Arc<Mutex<Sightings>>,
    _task: AbortOnDropHandle<()>,
}

/// Where a node's beacons go: the layers that get each new peer.
#[derive(Debug, Clone)]
pub(crate) struct Handoff {
    pub(crate) endpoint: Endpoint,
    pub(crate) discovery: Option<Discovery>,
    pub(crate) registry: Option<Registry>,
}

fn lock(sightings: &Mutex<Sightings>) -> MutexGuard<'_, Sightings> {
    // Plain data: a panic elsewhere leaves it usable.
    sightings
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LocalNetwork {
    /// Joins the group on the interface of `bind` and starts beaconing. A loopback or IPv6
    /// `bind` is refused: its addresses cannot be reached from the link (and loopback does
    /// not carry multicast).
    pub(crate) fn spawn(network: NetworkId, bind: IpAddr, handoff: Handoff) -> io::Result<Self> {
        let interface = match bind {
            IpAddr::V4(ip) if !ip.is_loopback() => ip,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "[node] bind {other} is not an IPv4 address on a local network \
                         (e.g. 0.0.0.0 or the LAN interface's address)"
                    ),
                ));
            }
        };
        let socket = UdpSocket::from_std(group_socket(interface)?.into())?;
        let me = handoff.endpoint.id();
        let sightings = Arc::new(Mutex::new(Sightings::new(
            network,
            me,
            MAX_REMEMBERED,
            MAX_NEW_PER_INTERVAL,
            BEACON_INTERVAL,
        )));
        let task = tokio::spawn(run(socket, network, handoff, sightings.clone()));
        Ok(Self {
            sightings,
            _task: AbortOnDropHandle::new(task),
        })
    }

    /// The peers beacons showed, most recently seen first.
    pub(crate) fn peers(&self) -> Vec<PeerAddr> {
        lock(&self.sightings).peers()
    }
}

/// A UDP socket in the beacon group on `interface`, shared with the other nodes of this host
/// (`SO_REUSEADDR`: each gets every beacon).
fn group_socket(interface: Ipv4Addr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    // Bound to the group, not to any address: datagrams sent to the port but not to the group
    // are not delivered to it.
    socket.bind(&SocketAddr::V4(LOCAL_NETWORK_GROUP).into())?;
    socket.join_multicast_v4(LOCAL_NETWORK_GROUP.ip(), &interface)?;
    socket.set_multicast_if_v4(&interface)?;
    socket.set_multicast_ttl_v4(1)?;
    // Other nodes on this host hear our beacons too.
    socket.set_multicast_loop_v4(true)?;
    Ok(socket)
}

async fn run(
    socket: UdpSocket,
    network: NetworkId,
    handoff: Handoff,
    sightings: Arc<Mutex<Sightings>>,
) {
    let start = Instant::now();
    // The first tick is at once: the beacon at start.
    let mut ticker = tokio::time::interval(BEACON_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0; MAX_BEACON + 1];
    loop {
        tokio::select! {
            _ = ticker.tick() => send(&socket, network, &handoff.endpoint).await,
            received = socket.recv_from(&mut buf) => {
                let (len, from) = match received {
                    Ok(received) => received,
                    Err(err) => {
                        debug!("local network: receive failed: {err}");
                        continue;
                    }
                };
                let beacon = match Beacon::decode(&buf[..len]) {
                    Ok(beacon) => beacon,
                    Err(err) => {
                        debug!(%from, "local network: not a beacon: {err}");
                        continue;
                    }
                };
                let seen = lock(&sightings).see(beacon, start.elapsed());
                match seen {
                    Seen::New(addr) => {
                        debug!(%from, peer = %addr.id.fmt_short(), "local network: found a peer");
                        hand(&handoff, addr).await;
                        // Answered at once: the peer needs no interval to learn of us.
                        send(&socket, network, &handoff.endpoint).await;
                    }
                    Seen::OtherNetwork => {
                        debug!(%from, "local network: ignored a beacon of another network");
                    }
                    Seen::OverBudget => {
                        debug!(%from, "local network: too many new peers this interval");
                    }
                    Seen::Known | Seen::Own => {}
                }
            }
        }
    }
}

async fn send(socket: &UdpSocket, network: NetworkId, endpoint: &Endpoint) {
    let beacon = Beacon {
        network,
        addr: endpoint.addr(),
    };
    if let Err(err) = socket
        .send_to(&beacon.encode(), SocketAddr::V4(LOCAL_NETWORK_GROUP))
        .await
    {
        warn!("local network: cannot send the beacon: {err}");
    }
}

/// Hands a peer found on the link to every layer, as a bootstrap peer is at spawn.
async fn hand(handoff: &Handoff, addr: PeerAddr) {
    handoff.endpoint.add_peer_addr(&addr);
    if let Some(registry) = &handoff.registry {
        let _ = registry.add_peers([addr.clone()]).await;
    }
    if let Some(discovery) = &handoff.discovery {
        let _ = discovery.dial(addr).await;
    }
}
