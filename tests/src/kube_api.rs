//! A Kubernetes API server for tests: the subset of the REST API cutover
//! uses, with Kubernetes semantics, over real HTTP so that kube's real
//! client talks to it.
//!
//! Any namespaced resource (`/api/v1/namespaces/{ns}/{plural}` and
//! `/apis/{group}/{version}/namespaces/{ns}/{plural}`): GET, LIST (label and
//! field selectors), POST (409 AlreadyExists), PUT (409 Conflict on a stale
//! `metadata.resourceVersion`), DELETE (preconditions), WATCH (ADDED,
//! MODIFIED, DELETED, BOOKMARK events from a resourceVersion; an ERROR event
//! with 410 Gone when that version is older than the last compaction). One
//! global resourceVersion counter, as etcd gives Kubernetes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

type Body = BoxBody<Bytes, Infallible>;

/// Where an object lives: (collection path, name).
type ObjectKey = (String, String);

#[derive(Clone)]
struct WatchEvent {
    collection: String,
    kind: &'static str,
    object: Value,
    revision: u64,
}

struct State {
    revision: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: Vec<WatchEvent>,
    compacted: u64,
    requests: u64,
    gone: u64,
}

/// A running fake API server.
#[derive(Clone)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<WatchEvent>,
    /// Its address.
    pub address: SocketAddr,
}

impl FakeApiServer {
    /// Starts on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let server = FakeApiServer {
            state: Arc::new(Mutex::new(State {
                revision: 100,
                objects: BTreeMap::new(),
                history: Vec::new(),
                compacted: 0,
                requests: 0,
                gone: 0,
            })),
            events: broadcast::channel(4096).0,
            address: listener.local_addr()?,
        };
        let accept = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = accept.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(server)
    }

    /// A kube client for this server, default namespace `default`.
    pub fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::new(format!("http://{}", self.address).parse()?);
        Ok(kube::Client::try_from(config)?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets watch history up to now: watches from older versions get 410.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.compacted = state.revision;
        state.history.clear();
    }

    /// Watches refused with 410 Gone so far.
    pub fn gone_responses(&self) -> u64 {
        self.lock().gone
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Writes an object as an outsider would (`kubectl apply`), bypassing
    /// version checks.
    pub fn put_raw(&self, collection: &str, name: &str, mut object: Value) {
        let mut state = self.lock();
        state.revision += 1;
        let revision = state.revision;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        object["metadata"]["name"] = json!(name);
        let kind = if state
            .objects
            .contains_key(&(collection.to_string(), name.to_string()))
        {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state
            .objects
            .insert((collection.into(), name.into()), object.clone());
        self.record(&mut state, collection, kind, object);
    }

    /// The stored object, as `kubectl get -o json` would show it.
    pub fn get_raw(&self, collection: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(collection.to_string(), name.to_string()))
            .cloned()
    }

    fn record(&self, state: &mut State, collection: &str, kind: &'static str, object: Value) {
        let event = WatchEvent {
            collection: collection.into(),
            kind,
            object,
            revision: state.revision,
        };
        state.history.push(event.clone());
        let _ = self.events.send(event);
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        self.lock().requests += 1;
        let method = request.method().clone();
        let path = request.uri().path().trim_end_matches('/').to_string();
        let query: BTreeMap<String, String> = request
            .uri()
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        Some((decode(k), decode(v)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = match request.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return status(StatusCode::BAD_REQUEST, "BadRequest", "unreadable body"),
        };
        let Some((collection, name)) = split_path(&path) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("no route {path}"),
            );
        };
        match (method, name) {
            (Method::GET, None)
                if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) =>
            {
                self.watch(&collection, &query)
            }
            (Method::GET, None) => self.list(&collection, &query),
            (Method::GET, Some(name)) => match self.get_raw(&collection, &name) {
                Some(object) => ok(StatusCode::OK, &object),
                None => not_found(&name),
            },
            (Method::POST, None) => self.create(&collection, &body),
            (Method::PUT, Some(name)) => self.replace(&collection, &name, &body),
            (Method::DELETE, Some(name)) => self.delete(&collection, &name, &body),
            (method, _) => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("{method} {path}"),
            ),
        }
    }

    fn list(&self, collection: &str, query: &BTreeMap<String, String>) -> Response<Body> {
        let state = self.lock();
        let items: Vec<Value> = state
            .objects
            .iter()
            .filter(|((c, _), object)| c == collection && selected(object, query))
            .map(|(_, object)| object.clone())
            .collect();
        ok(
            StatusCode::OK,
            &json!({
                "kind": "List",
                "apiVersion": "v1",
                "metadata": { "resourceVersion": state.revision.to_string() },
                "items": items,
            }),
        )
    }

    fn create(&self, collection: &str, body: &[u8]) -> Response<Body> {
        let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
        };
        let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "metadata.name is required",
            );
        };
        let mut state = self.lock();
        let key = (collection.to_string(), name.clone());
        if state.objects.contains_key(&key) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                &format!("\"{name}\" already exists"),
            );
        }
        state.revision += 1;
        object["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{}", state.revision));
        state.objects.insert(key, object.clone());
        self.record(&mut state, collection, "ADDED", object.clone());
        ok(StatusCode::CREATED, &object)
    }

    fn replace(&self, collection: &str, name: &str, body: &[u8]) -> Response<Body> {
        let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
        };
        let mut state = self.lock();
        let key = (collection.to_string(), name.to_string());
        let Some(current) = state.objects.get(&key) else {
            return not_found(name);
        };
        let current_version = current["metadata"]["resourceVersion"].clone();
        match object["metadata"]["resourceVersion"].as_str() {
            Some(v) if json!(v) != current_version => {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            _ => {}
        }
        let uid = current["metadata"]["uid"].clone();
        state.revision += 1;
        object["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        object["metadata"]["uid"] = uid;
        state.objects.insert(key, object.clone());
        self.record(&mut state, collection, "MODIFIED", object.clone());
        ok(StatusCode::OK, &object)
    }

    fn delete(&self, collection: &str, name: &str, body: &[u8]) -> Response<Body> {
        let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut state = self.lock();
        let key = (collection.to_string(), name.to_string());
        let Some(current) = state.objects.get(&key) else {
            return not_found(name);
        };
        if let Some(expected) = options["preconditions"]["resourceVersion"].as_str()
            && json!(expected) != current["metadata"]["resourceVersion"]
        {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                &format!("precondition failed for \"{name}\": resourceVersion differs"),
            );
        }
        let Some(mut object) = state.objects.remove(&key) else {
            return not_found(name);
        };
        state.revision += 1;
        object["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        self.record(&mut state, collection, "DELETED", object.clone());
        ok(StatusCode::OK, &object)
    }

    fn watch(&self, collection: &str, query: &BTreeMap<String, String>) -> Response<Body> {
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

/// `/api/v1/namespaces/ns/configmaps[/name]` or
/// `/apis/g/v/namespaces/ns/plural[/name]` -> (collection, name).
fn split_path(path: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let prefix = match *parts.first()? {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    if parts.get(prefix)? != &"namespaces" {
        return None;
    }
    let collection_len = prefix + 3;
    match parts.len() {
        n if n == collection_len => Some((parts.join("/"), None)),
        n if n == collection_len + 1 => Some((
            parts[..collection_len].join("/"),
            Some(parts[collection_len].to_string()),
        )),
        _ => None,
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `object` matches the label and field selectors (`k=v` terms).
fn selected(object: &Value, query: &BTreeMap<String, String>) -> bool {
    let terms = |key: &str| -> Vec<(String, String)> {
        query
            .get(key)
            .map(|s| {
                s.split(',')
                    .filter_map(|t| t.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels_ok = terms("labelSelector")
        .iter()
        .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v));
    let fields_ok = terms("fieldSelector")
        .iter()
        .all(|(k, v)| match k.as_str() {
            "metadata.name" => object["metadata"]["name"].as_str() == Some(v),
            "metadata.namespace" => object["metadata"]["namespace"].as_str() == Some(v),
            _ => false,
        });
    labels_ok && fields_ok
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code })
}

fn ok(code: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    ok(code, &status_json(code.as_u16(), reason, message))
}

fn not_found(name: &str) -> Response<Body> {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("\"{name}\" not found"),
    )
}
