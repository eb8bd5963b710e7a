//! The transport part of the demo: every node dials every other from its ticket alone, then
//! measures framed echo round trips and framed throughput on one stream.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_bytes::ByteBuf;
use weft_transport::{Endpoint, FramedRecv, FramedSend, PeerAddr, iroh::Connection};

use crate::{
    probe::{PROBE, PROBE_MAX_FRAME, ProbeMsg},
    stats::percentile,
    table::Table,
};

/// Echo round trips per pair.
const PINGS: usize = 50;
/// Bytes per echo.
const PING_SIZE: usize = 64;
/// Bytes each node streams to each other node for the throughput column.
const BLAST_BYTES: usize = 8 * 1024 * 1024;
/// Frame payload used for the throughput measurement.
const BLAST_FRAME: usize = 64 * 1024;

/// Dials, echoes and streams between every ordered pair of nodes; prints two tables.
pub(super) async fn run(nodes: &[Endpoint]) -> Result<()> {
    let tickets: Vec<String> = nodes.iter().map(|n| n.addr().to_ticket()).collect();
    let header =
        std::iter::once("from \\ to".to_string()).chain((0..nodes.len()).map(|j| format!("n{j}")));
    let mut rtt = Table::new(header.clone());
    let mut throughput = Table::new(header);
    for (i, node) in nodes.iter().enumerate() {
        let mut rtt_row = vec![format!("n{i}")];
        let mut tp_row = vec![format!("n{i}")];
        for (j, ticket) in tickets.iter().enumerate() {
            if i == j {
                rtt_row.push("-".into());
                tp_row.push("-".into());
                continue;
            }
            let addr = PeerAddr::from_ticket(ticket)?;
            let conn = node
                .connect(&addr, PROBE)
                .await
                .with_context(|| format!("n{i} dialling n{j}"))?;
            let p50 = echo_p50(&conn).await?;
            let mbps = blast(&conn).await?;
            rtt_row.push(format!("{:.0} µs", p50.as_secs_f64() * 1e6));
            tp_row.push(format!("{mbps:.0} MB/s"));
        }
        rtt.row(rtt_row);
        throughput.row(tp_row);
    }
    println!(
        "== transport: framed echo round trip, p50 of {PINGS} x {PING_SIZE} B ==\n{}",
        rtt.render()
    );
    println!(
        "== transport: framed throughput, {} MiB in {} KiB frames on one stream ==\n{}",
        BLAST_BYTES >> 20,
        BLAST_FRAME >> 10,
        throughput.render()
    );
    Ok(())
}

async fn echo_p50(conn: &Connection) -> Result<Duration> {
    let (send, recv) = conn.open_bi().await?;
    let mut send = FramedSend::<ProbeMsg>::new(send, PROBE_MAX_FRAME);
    let mut recv = FramedRecv::<ProbeMsg>::new(recv, PROBE_MAX_FRAME);
    let mut samples = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let started = Instant::now();
        send.send(&ProbeMsg::Echo(ByteBuf::from(vec![7u8; PING_SIZE])))
            .await?;
        let ProbeMsg::Echo(_) = recv.recv().await? else {
            anyhow::bail!("probe server answered an echo with something else");
        };
        samples.push(started.elapsed());
    }
    send.finish()?;
    Ok(percentile(&mut samples, 50.0))
}

async fn blast(conn: &Connection) -> Result<f64> {
    let frames = BLAST_BYTES / BLAST_FRAME;
    let (send, recv) = conn.open_bi().await?;
    let mut send = FramedSend::<ProbeMsg>::new(send, PROBE_MAX_FRAME);
    let mut recv = FramedRecv::<ProbeMsg>::new(recv, PROBE_MAX_FRAME);
    let frame = weft_transport::encode_frame(
        &ProbeMsg::Sink(ByteBuf::from(vec![1u8; BLAST_FRAME])),
        PROBE_MAX_FRAME,
    )?;
    let started = Instant::now();
    for _ in 0..frames {
        send.send_encoded(&frame).await?;
    }
    send.finish()?;
    let ProbeMsg::Done { received } = recv.recv().await? else {
        anyhow::bail!("probe server did not confirm the transfer");
    };
    anyhow::ensure!(
        received == frames as u64,
        "sent {frames} frames, {received} arrived"
    );
    Ok(BLAST_BYTES as f64 / started.elapsed().as_secs_f64() / 1e6)
}
