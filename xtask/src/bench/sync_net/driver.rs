//! The sync side: a task per node that owns its `SyncTopic`, the wait for settled sessions, and
//! the catch-up report.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::timeout,
};
use weft_sync::{
    Item, SyncTopic,
    proto::{CatchUpStats, Event, Role, SessionInfo},
};
use weft_transport::PeerId;

use super::{Delivery, LIVE, Names, PATIENCE, ms, parse_live, payload, since_start_ns};
use crate::table::Table;

/// Something a node's sync topic told, for the catch-up report and the failure list.
#[derive(Debug)]
pub(super) struct Note {
    pub(super) node: usize,
    at: Instant,
    pub(super) what: NoteKind,
}

#[derive(Debug)]
pub(super) enum NoteKind {
    Started(PeerId, Role),
    CaughtUp(PeerId, CatchUpStats),
    /// A session (with a peer) or an insert failed.
    Failed(Option<PeerId>, String),
    Lagged(u64),
    /// The node holds the items it was told to expect.
    Complete,
}

/// Requests to a node's driver task.
#[derive(Debug)]
pub(super) enum Command {
    Insert(u64),
    Sessions(oneshot::Sender<Vec<SessionInfo<PeerId>>>),
}

/// The task that owns a node's `SyncTopic`: inserts on request, and turns its events into
/// deliveries (latencies measured as they arrive) and notes.
#[derive(Debug)]
pub(super) struct Driver {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Driver {
    pub(super) fn spawn(
        node: usize,
        mut topic: SyncTopic,
        start: Instant,
        size: usize,
        expect: Option<usize>,
        deliveries: mpsc::Sender<Delivery>,
        notes: mpsc::Sender<Note>,
    ) -> Self {
        let (commands, mut rx) = mpsc::channel::<Command>(64);
        let task = tokio::spawn(async move {
            let note = |what| {
                let _ = notes.try_send(Note {
                    node,
                    at: Instant::now(),
                    what,
                });
            };
            // Items (or lagged events) seen, towards `expect`.
            let mut seen = 0usize;
            let mut complete = expect.is_none();
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(Command::Insert(seq)) => {
                            let sent = since_start_ns(start);
                            let item = Item::new(sent, &payload(LIVE, seq, sent, size));
                            if let Err(err) = topic.insert_item(item).await {
                                note(NoteKind::Failed(None, format!("insert: {err}")));
                            }
                        }
                        Some(Command::Sessions(reply)) => {
                            let _ = reply.send(topic.sessions().await.unwrap_or_default());
                        }
                        None => return,
                    },
                    event = topic.recv() => {
                        let Some(event) = event else { return };
                        match event {
                            Event::ItemReceived { item, .. } => {
                                if let Some((seq, sent)) = parse_live(item.payload()) {
                                    let latency = start
                                        .elapsed()
                                        .saturating_sub(Duration::from_nanos(sent));
                                    let _ = deliveries.try_send((node, seq, latency, None));
                                }
                                seen += 1;
                            }
                            Event::SessionStarted { peer, role } => {
                                note(NoteKind::Started(peer, role));
                            }
                            Event::CaughtUp { peer, stats } => {
                                note(NoteKind::CaughtUp(peer, stats));
                            }
                            Event::SessionFailed { peer, error } => {
                                note(NoteKind::Failed(Some(peer), error.to_string()));
                            }
                            Event::Lagged(n) => {
                                seen += usize::try_from(n).unwrap_or(usize::MAX);
                                note(NoteKind::Lagged(n));
                            }
                            _ => {}
                        }
                        if !complete
                            && expect.is_some_and(|want| seen >= want)
                            && topic
                                .item_count()
                                .await
                                .is_ok_and(|count| expect.is_some_and(|want| count >= want))
                        {
                            complete = true;
                            note(NoteKind::Complete);
                        }
                    }
                }
            }
        });
        Self { commands, task }
    }

    pub(super) fn insert(&self, seq: u64) -> Result<()> {
        self.commands
            .try_send(Command::Insert(seq))
            .context("a sync driver is busy or stopped")
    }

    pub(super) async fn sessions(&self) -> Result<Vec<SessionInfo<PeerId>>> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Sessions(reply))
            .await
            .context("a sync driver stopped")?;
        rx.await.context("a sync driver stopped")
    }
}

/// Waits until every driver's sessions are live, at least one each, symmetric, and the same
/// for `quiet`. Returns each node's session peers.
pub(super) async fn settle_sessions(
    drivers: &[Driver],
    ids: &[PeerId],
    quiet: Duration,
) -> Result<Vec<BTreeSet<usize>>> {
    let deadline = Instant::now() + PATIENCE;
    let mut last: Option<(Vec<BTreeSet<usize>>, Instant)> = None;
    loop {
        let mut peers = Vec::with_capacity(drivers.len());
        let mut all_live = true;
        for driver in drivers {
            let sessions = driver.sessions().await?;
            all_live &= !sessions.is_empty() && sessions.iter().all(|s| s.live);
            peers.push(
                sessions
                    .iter()
                    .filter_map(|s| ids.iter().position(|id| *id == s.peer))
                    .collect::<BTreeSet<usize>>(),
            );
        }
        let symmetric = peers.iter().enumerate().all(|(i, set)| {
            set.iter()
                .all(|j| peers.get(*j).is_some_and(|o| o.contains(&i)))
        });
        if all_live && symmetric {
            match &last {
                Some((before, since)) if *before == peers => {
                    if since.elapsed() >= quiet {
                        return Ok(peers);
                    }
                }
                _ => last = Some((peers, Instant::now())),
            }
        } else {
            last = None;
        }
        if Instant::now() > deadline {
            bail!("sync sessions did not settle within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session of the catching-up node: our role, and its stats with when it caught up (after
/// the join) once it has.
pub(super) type SessionReport = (Option<Role>, Option<(CatchUpStats, Duration)>);

/// What the last node's catch-up showed.
#[derive(Debug, Default)]
pub(super) struct CatchUp {
    first_session: Option<Duration>,
    complete: Option<Duration>,
    sessions: BTreeMap<PeerId, SessionReport>,
    failures: Vec<(Option<PeerId>, String)>,
    lagged: u64,
}

impl CatchUp {
    pub(super) fn note(&mut self, note: Note, last: usize, joined_at: Instant) {
        if note.node != last {
            return;
        }
        let after = note.at.saturating_duration_since(joined_at);
        match note.what {
            NoteKind::Started(peer, role) => {
                self.first_session.get_or_insert(after);
                self.sessions.entry(peer).or_default().0 = Some(role);
            }
            NoteKind::CaughtUp(peer, stats) => {
                self.sessions.entry(peer).or_default().1 = Some((stats, after));
            }
            NoteKind::Failed(peer, error) => self.failures.push((peer, error)),
            NoteKind::Lagged(n) => self.lagged += n,
            NoteKind::Complete => self.complete = Some(after),
        }
    }

    pub(super) fn render(&self, names: &Names, items: usize, nodes: usize, size: usize) -> String {
        let mut table = Table::new([
            "session",
            "role",
            "items in",
            "items out",
            "bytes in",
            "bytes out",
            "round trips",
            "caught up after",
        ]);
        let mut sum = CatchUpStats::default();
        for (peer, (role, done)) in &self.sessions {
            let role = role.map_or("?", |r| match r {
                Role::Initiator => "initiator",
                Role::Acceptor => "acceptor",
            });
            let name = format!("n{} ⇄ {}", nodes - 1, names.of(peer));
            match done {
                Some((stats, after)) => {
                    sum.items_received += stats.items_received;
                    sum.items_sent += stats.items_sent;
                    sum.bytes_received += stats.bytes_received;
                    sum.bytes_sent += stats.bytes_sent;
                    sum.round_trips += stats.round_trips;
                    table.row(stats_row(
                        &name,
                        role,
                        stats,
                        &format!("{:.1} ms", ms(*after)),
                    ));
                }
                None => table.row([name, role.to_owned(), "not caught up".to_owned()]),
            }
        }
        table.row(stats_row("sum", "", &sum, ""));
        let item_bytes = (items * (size + 8)) as f64;
        let mut out = format!(
            "== catch-up: n{} joins empty, nodes 0..{} hold {items} items ==\n{}",
            nodes - 1,
            nodes - 2,
            table.render()
        );
        let fmt = |d: Option<Duration>| {
            d.map_or_else(|| "never".to_owned(), |d| format!("{:.1} ms", ms(d)))
        };
        out.push_str(&format!(
            "first session after {}; all {items} items held after {}{}\n\
             bytes in: {:.2}× the items' bytes ({} B each); bytes out: {:.2}×\n",
            fmt(self.first_session),
            fmt(self.complete),
            self.complete.map_or_else(String::new, |d| format!(
                " ({:.0} items/s)",
                items as f64 / d.as_secs_f64()
            )),
            sum.bytes_received as f64 / item_bytes,
            size + 8,
            sum.bytes_sent as f64 / item_bytes,
        ));
        if self.lagged > 0 {
            out.push_str(&format!("events lagged: {}\n", self.lagged));
        }
        for (peer, error) in &self.failures {
            let peer = peer.map_or_else(|| "-".to_owned(), |p| names.of(&p));
            out.push_str(&format!(
                "session n{} ⇄ {peer} failed: {error}\n",
                nodes - 1
            ));
        }
        out
    }
}

pub(super) fn stats_row(name: &str, role: &str, stats: &CatchUpStats, after: &str) -> [String; 8] {
    [
        name.to_owned(),
        role.to_owned(),
        stats.items_received.to_string(),
        stats.items_sent.to_string(),
        stats.bytes_received.to_string(),
        stats.bytes_sent.to_string(),
        stats.round_trips.to_string(),
        after.to_owned(),
    ]
}

/// Reads notes until the last node holds every item (sessions that catch up later are noted
/// while the sessions settle afterwards).
pub(super) async fn catch_up(
    notes: &mut mpsc::Receiver<Note>,
    last: usize,
    joined_at: Instant,
) -> Result<CatchUp> {
    let mut report = CatchUp::default();
    let waited = timeout(PATIENCE, async {
        while let Some(note) = notes.recv().await {
            report.note(note, last, joined_at);
            if report.complete.is_some() {
                return true;
            }
        }
        false
    })
    .await;
    match waited {
        Ok(true) => Ok(report),
        Ok(false) => bail!("the sync drivers stopped during the catch-up"),
        Err(_) => bail!(
            "n{last} did not catch up within {PATIENCE:?} (holds all: {}, sessions: {:?})",
            report.complete.is_some(),
            report
                .sessions
                .values()
                .map(|(_, d)| d.is_some())
                .collect::<Vec<_>>()
        ),
    }
}
