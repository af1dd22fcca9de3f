//! `GET /pipelines/NAME/events`: a server-sent event stream of the
//! pipeline's status (the JSON `cutover status --json` prints), one event
//! per change as WatchPipeline sends them, a comment every 15 s to keep
//! the connection alive, and an `event: gone` when the pipeline is deleted.

use std::time::Duration;

use cutover_core::PipelineName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::registry::Coordinator;

const KEEPALIVE: Duration = Duration::from_secs(15);

pub(super) async fn stream(mut stream: TcpStream, coordinator: &Coordinator, name: &PipelineName) {
    let cell = match coordinator.cell(name).await {
        Ok(cell) => cell,
        Err(e) => {
            let body = format!("{e}\n");
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            return;
        }
    };
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\nconnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut changes = cell.changes();
    let mut last = String::new();
    loop {
        changes.borrow_and_update();
        let json = crate::status_json::status_json(&coordinator.status(&cell)).to_string();
        if json != last {
            if stream
                .write_all(format!("data: {json}\n\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            last = json;
        }
        if cell.is_retired() {
            let _ = stream.write_all(b"event: gone\ndata: {}\n\n").await;
            return;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = coordinator.stopped() => return,
            _ = tokio::time::sleep(KEEPALIVE) => {
                if stream.write_all(b": keepalive\n\n").await.is_err() {
                    return;
                }
            }
        }
    }
}
