//! The etcd side of `cutover bench fanout --against-etcd`: the equivalent
//! workload on a real etcd — N watchers of one key over P connections — and
//! the time from just before each Put until every watcher has seen it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use etcd_client::Client;
use tokio::sync::mpsc;

use super::fanout_client::unix_nanos;
use super::share;
use super::stats::Latencies;

/// What a watcher task reports.
enum Seen {
    /// One watcher was registered.
    Created,
    /// One watcher saw the Put of this revision.
    Event(i64, Instant),
}

/// Measures `updates` Puts of one key watched by `watchers` watchers spread
/// over `connections` connections (one watch stream each, multiplexed).
pub async fn measure(
    endpoint: &str,
    watchers: u32,
    connections: u32,
    updates: u32,
) -> anyhow::Result<Latencies> {
    let key = format!("/cutover-bench/{}", unix_nanos());
    let mut writer = Client::connect([endpoint], None)
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))?;
    writer.put(key.clone(), "0", None).await?;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let n = share(watchers, connections, c);
        if n == 0 {
            continue;
        }
        let mut client = Client::connect([endpoint], None).await?;
        let mut stream = client.watch(key.clone(), None).await?;
        for _ in 1..n {
            stream.watch(key.clone(), None).await?;
        }
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let _client = client;
            while let Ok(Some(response)) = stream.message().await {
                let now = Instant::now();
                if response.created() {
                    let _ = tx.send(Seen::Created);
                }
                for event in response.events() {
                    if let Some(kv) = event.kv() {
                        let _ = tx.send(Seen::Event(kv.mod_revision(), now));
                    }
                }
            }
        }));
    }
    drop(tx);
    let mut created = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while created < watchers {
        match tokio::time::timeout_at(deadline.into(), seen.recv()).await {
            Ok(Some(Seen::Created)) => created += 1,
            Ok(Some(Seen::Event(..))) => {}
            Ok(None) => bail!("etcd watch streams ended"),
            Err(_) => bail!("only {created} of {watchers} etcd watchers registered in 120 s"),
        }
    }

    let mut samples = Vec::with_capacity(updates as usize);
    let mut early: HashMap<i64, (u32, Instant)> = HashMap::new();
    for update in 0..updates {
        let started = Instant::now();
        let response = writer.put(key.clone(), update.to_string(), None).await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let (mut count, mut last) = early.remove(&revision).unwrap_or((0, started));
        while count < watchers {
            match tokio::time::timeout(Duration::from_secs(60), seen.recv()).await {
                Ok(Some(Seen::Event(r, at))) if r == revision => {
                    count += 1;
                    last = last.max(at);
                }
                Ok(Some(Seen::Event(r, at))) => {
                    let entry = early.entry(r).or_insert((0, at));
                    entry.0 += 1;
                    entry.1 = entry.1.max(at);
                }
                Ok(Some(Seen::Created)) => {}
                Ok(None) => bail!("etcd watch streams ended"),
                Err(_) => bail!("revision {revision}: {count} of {watchers} watchers in 60 s"),
            }
        }
        samples.push(last.saturating_duration_since(started));
    }
    for task in tasks {
        task.abort();
    }
    Ok(Latencies::of(&samples))
}
