//! WATCH: the events of a collection from a resourceVersion, or 410 Gone
//! when that version is older than the last compaction.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::http::{Body, selected, status_json};
use super::{FakeApiServer, WatchEvent};

impl FakeApiServer {
    pub(super) fn watch(
        &self,
        collection: &str,
        query: &BTreeMap<String, String>,
    ) -> Response<Body> {
        let from: u64 = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bookmarks = query
            .get("allowWatchBookmarks")
            .is_some_and(|v| v == "true");
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(290u64);
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
        let mut live = self.events.subscribe();
        let (backlog, current, gone) = {
            let mut state = self.lock();
            if from != 0 && from < state.compacted {
                state.gone += 1;
                (Vec::new(), state.revision, true)
            } else if from == 0 {
                // No version: the current objects as ADDED, then changes.
                let added = state
                    .objects
                    .iter()
                    .filter(|((c, _), object)| c == collection && selected(object, query))
                    .map(|(_, object)| WatchEvent {
                        collection: collection.into(),
                        kind: "ADDED",
                        object: object.clone(),
                        revision: state.revision,
                    })
                    .collect();
                (added, state.revision, false)
            } else {
                let events = state
                    .history
                    .iter()
                    .filter(|e| e.revision > from && e.collection == collection)
                    .cloned()
                    .collect();
                (events, state.revision, false)
            }
        };
        let query = query.clone();
        let collection = collection.to_string();
        tokio::spawn(async move {
            let send = |value: Value| {
                let mut line = value.to_string();
                line.push('\n');
                tx.send(Ok(Frame::data(Bytes::from(line))))
            };
            if gone {
                let _ = send(json!({ "type": "ERROR", "object": status_json(410, "Expired", "too old resource version") })).await;
                return;
            }
            for event in backlog {
                if selected(&event.object, &query)
                    && send(json!({ "type": event.kind, "object": event.object }))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            let mut last = current;
            let deadline = tokio::time::sleep(Duration::from_secs(timeout));
            tokio::pin!(deadline);
            let mut bookmark = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = bookmark.tick(), if bookmarks => {
                        let marker = json!({ "type": "BOOKMARK", "object": { "kind": "ConfigMap", "apiVersion": "v1", "metadata": { "resourceVersion": last.to_string() } } });
                        if send(marker).await.is_err() { return }
                    }
                    event = live.recv() => match event {
                        Ok(event) => {
                            if event.revision <= current || event.collection != collection {
                                continue;
                            }
                            last = event.revision;
                            if selected(&event.object, &query) && send(json!({ "type": event.kind, "object": event.object })).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let _ = send(json!({ "type": "ERROR", "object": status_json(410, "Expired", "watch fell behind") })).await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        let body = StreamBody::new(ReceiverStream::new(rx)).boxed();
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(body)
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
    }
}
