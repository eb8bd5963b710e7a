//! An in-process network for tests, plugged into iroh as a custom transport.
//!
//! The whole QUIC stack (handshakes, streams, loss recovery, timeouts) runs unchanged; only the
//! UDP socket is replaced by bounded channels. Faults are injected per link: a latency drawn
//! uniformly from a range, a loss probability drawn from a seeded RNG, partitions between groups
//! of peers, and isolation of one peer. Layers above the transport test on it without change.
//!
//! Bounds: each peer's inbox holds [`INBOX_CAPACITY`] packets and its delay line
//! [`DELAY_LINE_CAPACITY`]; a packet that finds either full is dropped, as a UDP socket buffer
//! would drop it, and counted in [`MemoryStats::dropped_full`].

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use iroh::address_lookup::{AddressLookup, EndpointData, EndpointInfo, Item};
use iroh::endpoint::transports::{
    CustomEndpoint, CustomSender, CustomTransport, RecvInfo, Transmit,
};
use iroh_base::{CustomAddr, EndpointId, TransportAddr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::{
    sync::mpsc,
    time::{Instant, Sleep},
};

use crate::PeerId;

/// The custom transport id of the memory network ("weft" in ASCII).
pub const MEMORY_TRANSPORT_ID: u64 = 0x7765_6674;

/// Packets a peer's inbox holds before new ones are dropped.
pub const INBOX_CAPACITY: usize = 1024;

/// Packets waiting out their latency at one peer before new ones are dropped.
pub const DELAY_LINE_CAPACITY: usize = 8192;

/// The behaviour of a link between two peers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// The smallest one-way latency.
    pub latency_min: Duration,
    /// The largest one-way latency; each packet draws uniformly from `[min, max]`.
    pub latency_max: Duration,
    /// The probability in `[0, 1]` that a packet is lost.
    pub loss: f64,
}

impl LinkConfig {
    /// A perfect link: no latency, no loss.
    pub const PERFECT: Self = Self {
        latency_min: Duration::ZERO,
        latency_max: Duration::ZERO,
        loss: 0.0,
    };

    /// A link with a fixed one-way latency and no loss.
    pub fn latency(latency: Duration) -> Self {
        Self {
            latency_min: latency,
            latency_max: latency,
            loss: 0.0,
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self::PERFECT
    }
}

/// Packet counters of a [`MemoryNetwork`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Packets handed to a peer's inbox.
    pub sent: u64,
    /// Packets dropped by the loss model.
    pub dropped_loss: u64,
    /// Packets dropped because a partition or isolation cut the link.
    pub dropped_partition: u64,
    /// Packets dropped because an inbox or delay line was full, or the peer was gone.
    pub dropped_full: u64,
}

/// An in-process network that endpoints join with
/// [`Builder::memory`](crate::EndpointBuilder::memory).
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use weft_transport::{Endpoint, MemoryNetwork, SecretKey};
///
/// let net = MemoryNetwork::new(7);
/// let a = Endpoint::builder().memory(&net).bind().await?;
/// let b = Endpoint::builder().memory(&net).bind().await?;
/// net.partition(&[a.id()], &[b.id()]); // dials between a and b now time out
/// net.heal();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    inboxes: BTreeMap<PeerId, mpsc::Sender<Packet>>,
    default_link: LinkConfig,
    links: BTreeMap<(PeerId, PeerId), LinkConfig>,
    cut: BTreeSet<(PeerId, PeerId)>,
    isolated: BTreeSet<PeerId>,
    rng: ChaCha8Rng,
    stats: MemoryStats,
}

#[derive(Debug)]
struct Packet {
    data: Bytes,
    from: PeerId,
    deliver_at: Instant,
}

/// Orders a pair so a link is the same link in both directions.
fn link_key(a: PeerId, b: PeerId) -> (PeerId, PeerId) {
    if a <= b { (a, b) } else { (b, a) }
}

impl MemoryNetwork {
    /// An empty network whose loss and latency draws come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                inboxes: BTreeMap::new(),
                default_link: LinkConfig::PERFECT,
                links: BTreeMap::new(),
                cut: BTreeSet::new(),
                isolated: BTreeSet::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                stats: MemoryStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only counters and maps behind; keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the behaviour of every link without its own configuration.
    pub fn set_default_link(&self, config: LinkConfig) {
        self.lock().default_link = config;
    }

    /// Sets the behaviour of the link between `a` and `b`, in both directions.
    pub fn set_link(&self, a: PeerId, b: PeerId, config: LinkConfig) {
        self.lock().links.insert(link_key(a, b), config);
    }

    /// Cuts every link between a peer of `group_a` and a peer of `group_b`. Packets across the
    /// cut are dropped silently, as on a real network, so dials time out.
    pub fn partition(&self, group_a: &[PeerId], group_b: &[PeerId]) {
        let mut inner = self.lock();
        for &a in group_a {
            for &b in group_b {
                if a != b {
                    inner.cut.insert(link_key(a, b));
                }
            }
        }
    }

    /// Cuts every link of `peer`.
    pub fn isolate(&self, peer: PeerId) {
        self.lock().isolated.insert(peer);
    }

    /// Restores every cut link and isolated peer. Link latencies and losses stay as set.
    pub fn heal(&self) {
        let mut inner = self.lock();
        inner.cut.clear();
        inner.isolated.clear();
    }

    /// The peers currently attached.
    pub fn peers(&self) -> Vec<PeerId> {
        self.lock()
            .inboxes
            .iter()
            .filter(|(_, inbox)| !inbox.is_closed())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Packet counters since the network was made.
    pub fn stats(&self) -> MemoryStats {
        self.lock().stats
    }

    /// Attaches `id`, replacing a previous attachment whose endpoint has closed (a restart with
    /// the same key). Fails when a live endpoint already uses `id`.
    pub(crate) fn attach(&self, id: PeerId) -> io::Result<Arc<MemoryTransport>> {
        let mut inner = self.lock();
        if let Some(existing) = inner.inboxes.get(&id)
            && !existing.is_closed()
        {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("peer {} is already on this memory network", id.fmt_short()),
            ));
        }
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        inner.inboxes.insert(id, tx);
        Ok(Arc::new(MemoryTransport {
            id,
            network: self.clone(),
            inbox: Mutex::new(Some(rx)),
            local_addrs: n0_watcher::Watchable::new(vec![custom_addr(id)]),
        }))
    }

    /// An address lookup that resolves every attached peer to its memory address.
    pub(crate) fn address_lookup(&self) -> MemoryAddressLookup {
        MemoryAddressLookup {
            network: self.clone(),
        }
    }

    /// Routes one packet through the fault model.
    fn route(&self, from: PeerId, to: PeerId, data: Bytes) -> io::Result<()> {
        let mut inner = self.lock();
        let key = link_key(from, to);
        if inner.cut.contains(&key)
            || inner.isolated.contains(&from)
            || inner.isolated.contains(&to)
        {
            inner.stats.dropped_partition += 1;
            return Ok(());
        }
        let link = inner.links.get(&key).copied().unwrap_or(inner.default_link);
        if link.loss > 0.0 && inner.rng.random_bool(link.loss.clamp(0.0, 1.0)) {
            inner.stats.dropped_loss += 1;
            return Ok(());
        }
        let latency = if link.latency_max > link.latency_min {
            inner.rng.random_range(link.latency_min..=link.latency_max)
        } else {
            link.latency_min
        };
        let Some(inbox) = inner.inboxes.get(&to) else {
            // Like UDP to a host that is not there: the packet vanishes.
            inner.stats.dropped_full += 1;
            return Ok(());
        };
        let packet = Packet {
            data,
            from,
            deliver_at: Instant::now() + latency,
        };
        match inbox.try_send(packet) {
            Ok(()) => inner.stats.sent += 1,
            Err(_) => inner.stats.dropped_full += 1,
        }
        Ok(())
    }

    fn count_delay_line_drop(&self) {
        self.lock().stats.dropped_full += 1;
    }
}

fn custom_addr(id: PeerId) -> CustomAddr {
    CustomAddr::from_parts(MEMORY_TRANSPORT_ID, id.as_bytes())
}

fn parse_custom_addr(addr: &CustomAddr) -> io::Result<PeerId> {
    if addr.id() != MEMORY_TRANSPORT_ID {
        return Err(io::Error::other("not a memory network address"));
    }
    let bytes: &[u8; 32] = addr
        .data()
        .try_into()
        .map_err(|_| io::Error::other("memory address has the wrong length"))?;
    PeerId::from_bytes(bytes).map_err(io::Error::other)
}

/// One peer's attachment to a [`MemoryNetwork`], handed to iroh as a custom transport.
#[derive(Debug)]
pub(crate) struct MemoryTransport {
    id: PeerId,
    network: MemoryNetwork,
    /// Taken by the single `bind` iroh makes.
    inbox: Mutex<Option<mpsc::Receiver<Packet>>>,
    local_addrs: n0_watcher::Watchable<Vec<CustomAddr>>,
}

impl CustomTransport for MemoryTransport {
    fn bind(&self) -> io::Result<Box<dyn CustomEndpoint>> {
        let inbox = self
            .inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| io::Error::other("memory transport is already bound"))?;
        Ok(Box::new(MemorySocket {
            id: self.id,
            network: self.network.clone(),
            inbox,
            delay_line: VecDeque::new(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            local_addrs: self.local_addrs.clone(),
        }))
    }
}

/// The receiving side of one peer: its inbox, and the packets still waiting out their latency.
#[derive(Debug)]
struct MemorySocket {
    id: PeerId,
    network: MemoryNetwork,
    inbox: mpsc::Receiver<Packet>,
    /// Packets in arrival order; each waits until its `deliver_at`.
    delay_line: VecDeque<Packet>,
    timer: Pin<Box<Sleep>>,
    local_addrs: n0_watcher::Watchable<Vec<CustomAddr>>,
}

impl CustomEndpoint for MemorySocket {
    fn watch_local_addrs(&self) -> n0_watcher::Direct<Vec<CustomAddr>> {
        self.local_addrs.watch()
    }

    fn create_sender(&self) -> Arc<dyn CustomSender> {
        Arc::new(MemorySender {
            id: self.id,
            network: self.network.clone(),
        })
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        metas: &mut [noq_udp::RecvMeta],
        recv_infos: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        // Move everything that has arrived into the delay line; this also registers the waker.
        while let Poll::Ready(next) = self.inbox.poll_recv(cx) {
            match next {
                Some(packet) if self.delay_line.len() < DELAY_LINE_CAPACITY => {
                    self.delay_line.push_back(packet);
                }
                Some(_) => self.network.count_delay_line_drop(),
                None => return Poll::Ready(Err(io::Error::other("memory network closed"))),
            }
        }
        loop {
            let now = Instant::now();
            let mut filled = 0;
            while filled < bufs.len() {
                let Some(front) = self.delay_line.front() else {
                    break;
                };
                if front.deliver_at > now {
                    break;
                }
                let Some(packet) = self.delay_line.pop_front() else {
                    break;
                };
                let len = packet.data.len();
                if bufs[filled].len() < len {
                    // Larger than the receive buffer: a real socket would truncate; drop it.
                    continue;
                }
                bufs[filled][..len].copy_from_slice(&packet.data);
                metas[filled].len = len;
                metas[filled].stride = len;
                recv_infos[filled] =
                    RecvInfo::new(custom_addr(packet.from), Some(custom_addr(self.id)));
                filled += 1;
            }
            if filled > 0 {
                return Poll::Ready(Ok(filled));
            }
            let Some(front) = self.delay_line.front() else {
                return Poll::Pending;
            };
            let deadline = front.deliver_at;
            self.timer.as_mut().reset(deadline);
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// The sending side of one peer.
#[derive(Debug)]
struct MemorySender {
    id: PeerId,
    network: MemoryNetwork,
}

impl CustomSender for MemorySender {
    fn is_valid_send_addr(&self, addr: &CustomAddr) -> bool {
        addr.id() == MEMORY_TRANSPORT_ID
    }

    fn poll_send(
        &self,
        _cx: &mut Context<'_>,
        dst: &CustomAddr,
        _src: Option<&CustomAddr>,
        transmit: &Transmit<'_>,
    ) -> Poll<io::Result<()>> {
        let to = parse_custom_addr(dst)?;
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for chunk in transmit.contents.chunks(segment) {
            self.network
                .route(self.id, to, Bytes::copy_from_slice(chunk))?;
        }
        Poll::Ready(Ok(()))
    }
}

/// Resolves attached peers to their memory address, so they can be dialled by id alone.
#[derive(Debug, Clone)]
pub(crate) struct MemoryAddressLookup {
    network: MemoryNetwork,
}

impl AddressLookup for MemoryAddressLookup {
    fn publish(&self, _data: &EndpointData) {}

    fn resolve(
        &self,
        endpoint_id: EndpointId,
    ) -> Option<n0_future::stream::Boxed<Result<Item, iroh::address_lookup::Error>>> {
        let id = PeerId::from(endpoint_id);
        if !self.network.lock().inboxes.contains_key(&id) {
            return None;
        }
        let info = EndpointInfo {
            endpoint_id,
            data: EndpointData::from_iter([TransportAddr::Custom(custom_addr(id))]),
        };
        Some(Box::pin(n0_future::stream::once(Ok(Item::new(
            info,
            "weft memory network",
            None,
        )))))
    }
}
