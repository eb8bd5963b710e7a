//! Framed CBOR messages against a raw iroh stream doing the same work, on one stream over
//! loopback QUIC, in the same run.

use std::time::Instant;

use anyhow::Result;
use serde_bytes::ByteBuf;
use weft_transport::{Endpoint, FramedRecv, FramedSend, NetworkId, iroh::Connection};

use crate::{
    probe::{PROBE, PROBE_MAX_FRAME, ProbeMsg, ProbeServer, RAW, RawServer},
    stats::median,
    table::Table,
};

const SMALL: usize = 1024;
const SMALL_COUNT: usize = 50_000;
const LARGE: usize = 1024 * 1024;
const LARGE_COUNT: usize = 200;

pub(crate) async fn run(rounds: usize) -> Result<()> {
    let network = NetworkId::from_name("weft-bench");
    let bind = || async {
        Endpoint::builder()
            .network(network)
            .bind_addr("127.0.0.1:0".parse().expect("literal address"))
            .bind()
            .await
    };
    let server = bind().await?;
    server.register(PROBE, ProbeServer)?;
    server.register(RAW, RawServer)?;
    let client = bind().await?;
    let framed_conn = client.connect(&server.addr(), PROBE).await?;
    let raw_conn = client.connect(&server.addr(), RAW).await?;

    println!(
        "transport benchmark: one stream over 127.0.0.1 QUIC, {rounds} rounds, median shown\n"
    );
    let mut framed_small = Vec::new();
    let mut raw_small = Vec::new();
    let mut framed_large = Vec::new();
    let mut raw_large = Vec::new();
    // Interleave the variants so drift in machine load hits both alike.
    for _ in 0..rounds {
        framed_small.push(SMALL_COUNT as f64 / framed(&framed_conn, SMALL, SMALL_COUNT).await?);
        raw_small.push(SMALL_COUNT as f64 / raw(&raw_conn, SMALL, SMALL_COUNT).await?);
        framed_large
            .push(mb(LARGE * LARGE_COUNT) / framed(&framed_conn, LARGE, LARGE_COUNT).await?);
        raw_large.push(mb(LARGE * LARGE_COUNT) / raw(&raw_conn, LARGE, LARGE_COUNT).await?);
    }
    let (fs, rs) = (median(&mut framed_small), median(&mut raw_small));
    let (fl, rl) = (median(&mut framed_large), median(&mut raw_large));
    let mut table = Table::new(["workload", "framed weft", "raw iroh", "ratio"]);
    table.row([
        format!("{SMALL_COUNT} x 1 KiB messages"),
        format!("{fs:.0} msg/s"),
        format!("{rs:.0} msg/s"),
        format!("{:.2}x", fs / rs),
    ]);
    table.row([
        format!("{LARGE_COUNT} x 1 MiB frames"),
        format!("{fl:.0} MB/s"),
        format!("{rl:.0} MB/s"),
        format!("{:.2}x", fl / rl),
    ]);
    println!("{}", table.render());
    println!("goal: ratio >= 0.90x raw");
    client.shutdown().await;
    server.shutdown().await;
    Ok(())
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// Sends `count` framed messages of `size` bytes on a new stream; returns the seconds until the
/// server confirmed it decoded all of them.
async fn framed(conn: &Connection, size: usize, count: usize) -> Result<f64> {
    let (send, recv) = conn.open_bi().await?;
    let mut send = FramedSend::<ProbeMsg>::new(send, PROBE_MAX_FRAME);
    let mut recv = FramedRecv::<ProbeMsg>::new(recv, PROBE_MAX_FRAME);
    let message = ProbeMsg::Sink(ByteBuf::from(vec![0xa5u8; size]));
    let started = Instant::now();
    for _ in 0..count {
        // Encoded per message: the framing cost is part of what is measured.
        send.send(&message).await?;
    }
    send.finish()?;
    let ProbeMsg::Done { received } = recv.recv().await? else {
        anyhow::bail!("unexpected probe reply");
    };
    anyhow::ensure!(received == count as u64, "{received} of {count} arrived");
    Ok(started.elapsed().as_secs_f64())
}

/// The same work on a raw stream: `count` writes of `size` bytes, then the server's byte count.
async fn raw(conn: &Connection, size: usize, count: usize) -> Result<f64> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let chunk = vec![0xa5u8; size];
    let started = Instant::now();
    for _ in 0..count {
        send.write_all(&chunk).await?;
    }
    send.finish()?;
    let mut total = [0u8; 8];
    recv.read_exact(&mut total).await?;
    anyhow::ensure!(
        u64::from_be_bytes(total) == (size * count) as u64,
        "raw transfer lost bytes"
    );
    Ok(started.elapsed().as_secs_f64())
}
