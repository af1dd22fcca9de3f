//! The coordinator's plain-HTTP port (the metrics port): Prometheus
//! metrics, `GET /ready`, and the status page: `GET /` lists the pipelines,
//! `GET /pipelines/NAME` is a page drawing one pipeline live (ownership
//! timeline, horizon, cutover key, each colour's watermarks, gates, phase
//! history) from `GET /pipelines/NAME/events`, a server-sent event stream
//! of the status WatchPipeline gives. One request per connection; nothing
//! here changes anything.

mod events;

use std::sync::Arc;
use std::time::Duration;

use cutover_core::PipelineName;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::registry::Coordinator;

/// The page, self-contained (no framework, nothing fetched from elsewhere).
const STATUS_PAGE: &str = include_str!("web/status_page.html");
/// How long a connection may take to send its request line and headers.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Event streams open at once; more are answered 503.
const MAX_STREAMS: usize = 64;

/// What the port serves.
#[derive(Clone)]
pub struct Web {
    /// The metrics.
    pub registry: Arc<Registry>,
    /// Readiness for `GET /ready` (none: `/ready` serves the metrics too).
    pub ready: Option<watch::Receiver<bool>>,
    /// The coordinator whose pipelines the status page shows (none: no
    /// page).
    pub coordinator: Option<Coordinator>,
}

/// Serves `web` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, web: Web) {
    let streams = Arc::new(Semaphore::new(MAX_STREAMS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let web = web.clone();
        let streams = streams.clone();
        tokio::spawn(async move {
            if let Ok(Ok(path)) =
                tokio::time::timeout(REQUEST_DEADLINE, request_path(&stream)).await
            {
                answer(stream, &path, &web, &streams).await;
            }
        });
    }
}

/// The path of a `GET` request (`None` for anything else), once its
/// headers are in.
async fn request_path(stream: &TcpStream) -> std::io::Result<Option<String>> {
    let mut request = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        if request.windows(4).any(|w| w == b"\r\n\r\n") || request.len() > 16 * 1024 {
            break;
        }
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    Ok(match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.split('?').next().unwrap_or("/").to_string()),
        _ => None,
    })
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn metrics(registry: &Registry) -> String {
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        body = "# encoding failed\n".into();
    }
    response(
        "200 OK",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        &body,
    )
}

async fn answer(mut stream: TcpStream, path: &Option<String>, web: &Web, streams: &Arc<Semaphore>) {
    let Some(path) = path else {
        let _ = stream
            .write_all(response("405 Method Not Allowed", "text/plain", "GET only\n").as_bytes())
            .await;
        return;
    };
    let page = web.coordinator.as_ref();
    let reply = match (path.as_str(), page) {
        ("/ready", _) if web.ready.is_some() => {
            let ready = web.ready.as_ref().is_some_and(|r| *r.borrow());
            if ready {
                response("200 OK", "text/plain", "ready\n")
            } else {
                response(
                    "503 Service Unavailable",
                    "text/plain",
                    "not ready: the store has not answered\n",
                )
            }
        }
        ("/", Some(coordinator)) => {
            response("200 OK", "text/html; charset=utf-8", &index(coordinator))
        }
        (path, Some(coordinator)) if path.starts_with("/pipelines/") => {
            let rest = &path["/pipelines/".len()..];
            let (name, events) = match rest.strip_suffix("/events") {
                Some(name) => (name, true),
                None => (rest, false),
            };
            let Ok(name) = PipelineName::new(name) else {
                let _ = stream
                    .write_all(
                        response("404 Not Found", "text/plain", "no such pipeline\n").as_bytes(),
                    )
                    .await;
                return;
            };
            if events {
                let Ok(permit) = streams.clone().try_acquire_owned() else {
                    let _ = stream
                        .write_all(
                            response(
                                "503 Service Unavailable",
                                "text/plain",
                                "too many open streams\n",
                            )
                            .as_bytes(),
                        )
                        .await;
                    return;
                };
                events::stream(stream, coordinator, &name).await;
                drop(permit);
                return;
            }
            response("200 OK", "text/html; charset=utf-8", STATUS_PAGE)
        }
        _ => metrics(&web.registry),
    };
    let _ = stream.write_all(reply.as_bytes()).await;
    // Let the client read the answer before the socket closes.
    let _ = stream.shutdown().await;
    let mut rest = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut rest)).await;
}

/// The list of pipelines, each linking to its page.
fn index(coordinator: &Coordinator) -> String {
    let mut items = String::new();
    for name in coordinator.pipeline_names() {
        // Pipeline names are DNS labels: nothing to escape.
        items.push_str(&format!(
            "<li><a href=\"/pipelines/{name}\">{name}</a></li>\n"
        ));
    }
    if items.is_empty() {
        items.push_str("<li>no pipeline yet: the first gate that registers creates one</li>\n");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cutover</title>\
         <style>body{{font:15px system-ui,sans-serif;margin:2em}}</style></head>\n\
         <body><h1>cutover: pipelines</h1><ul id=\"pipelines\">\n{items}</ul>\
         <p><a href=\"/metrics\">metrics</a></p></body></html>\n"
    )
}
