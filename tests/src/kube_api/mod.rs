//! A Kubernetes API server for tests: the subset of the REST API cutover
//! uses, with Kubernetes semantics, over real HTTP so that kube's real
//! client talks to it.
//!
//! Any namespaced resource (`/api/v1/namespaces/{ns}/{plural}` and
//! `/apis/{group}/{version}/namespaces/{ns}/{plural}`): GET, LIST (label and
//! field selectors), POST (409 AlreadyExists), PUT and PATCH (JSON merge
//! patch; 409 Conflict on a stale `metadata.resourceVersion`), DELETE
//! (preconditions), WATCH (ADDED, MODIFIED, DELETED, BOOKMARK events from a
//! resourceVersion; an ERROR event with 410 Gone when that version is older
//! than the last compaction). One global resourceVersion counter, as etcd
//! gives Kubernetes. Custom resources (`/apis/...`) have a `/status`
//! subresource: writes to the object keep its status, writes to `/status`
//! change only the status. `metadata.generation` counts spec changes;
//! `metadata.finalizers` delay a deletion (the object gets a
//! `deletionTimestamp` and goes when the last finalizer is removed); and
//! deleting an object deletes the objects it owns (garbage collection by
//! owner reference uid).

mod discovery;
mod http;
mod watch;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ::http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use self::http::{Body, decode, not_found, ok, split_path, status};

/// Where an object lives: (collection path, name).
type ObjectKey = (String, String);

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    /// The collection's path.
    pub collection: String,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// The object after the change (before it, for DELETED).
    pub object: Value,
    /// The resourceVersion of the change.
    pub revision: u64,
}

struct State {
    revision: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: Vec<WatchEvent>,
    compacted: u64,
    requests: u64,
    requests_by: BTreeMap<String, u64>,
    gone: u64,
    used: BTreeSet<(String, Permission)>,
    /// Every request that could change something (`METHOD path`), in order.
    writes: Vec<String>,
    /// Tokens a TokenReview accepts: token → (user name, audiences).
    tokens: BTreeMap<String, (String, Vec<String>)>,
}

/// Header naming the user of a request (see [`FakeApiServer::client_as`]).
const USER_HEADER: &str = "x-test-user";

/// What RBAC would have to grant for a request: (API group, resource or
/// `resource/status`, verb).
pub type Permission = (String, String, String);

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
                requests_by: BTreeMap::new(),
                gone: 0,
                used: BTreeSet::new(),
                writes: Vec::new(),
                tokens: BTreeMap::new(),
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

    /// Makes TokenReviews accept `token` as `user`'s for `audiences`, as
    /// the API server does for a ServiceAccount token it issued.
    pub fn issue_token(&self, token: &str, user: &str, audiences: &[&str]) {
        self.lock().tokens.insert(
            token.to_string(),
            (
                user.to_string(),
                audiences.iter().map(|a| a.to_string()).collect(),
            ),
        );
    }

    /// A TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`):
    /// authenticated when the token was issued here for one of the
    /// requested audiences (every audience when none is requested).
    fn review_token(&self, body: &[u8]) -> Response<Body> {
        let Ok(review) = serde_json::from_slice::<Value>(body) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "not a TokenReview");
        };
        let token = review["spec"]["token"].as_str().unwrap_or("");
        let wanted: Vec<String> = review["spec"]["audiences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let known = self.lock().tokens.get(token).cloned();
        let verdict = match known {
            None => json!({"authenticated": false, "error": "invalid bearer token"}),
            Some((user, audiences)) => {
                let shared: Vec<&String> = if wanted.is_empty() {
                    audiences.iter().collect()
                } else {
                    audiences.iter().filter(|a| wanted.contains(a)).collect()
                };
                if shared.is_empty() {
                    json!({"authenticated": false,
                           "error": "token audiences are invalid for the target audiences"})
                } else {
                    json!({"authenticated": true, "user": {"username": user}, "audiences": shared})
                }
            }
        };
        let mut answer = review.clone();
        answer["status"] = verdict;
        ok(StatusCode::CREATED, &answer)
    }

    /// A kube client for this server, default namespace `default`.
    pub fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::new(format!("http://{}", self.address).parse()?);
        Ok(kube::Client::try_from(config)?)
    }

    /// A kube client whose requests are recorded as `user`'s.
    pub fn client_as(&self, user: &str) -> anyhow::Result<kube::Client> {
        let mut config = kube::Config::new(format!("http://{}", self.address).parse()?);
        config.headers.push((
            ::http::HeaderName::from_static(USER_HEADER),
            ::http::HeaderValue::from_str(user)?,
        ));
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

    /// Every change from now on (for simulated controllers in tests).
    pub fn changes(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    /// Every object of `collection` now.
    pub fn list_raw(&self, collection: &str) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|((c, _), _)| c == collection)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Every permission the requests of clients from
    /// [`FakeApiServer::client_as`]`(user)` needed so far.
    pub fn permissions_used_by(&self, user: &str) -> BTreeSet<Permission> {
        self.lock()
            .used
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Every request that could change something (not a GET), as `METHOD
    /// path`, in the order served.
    pub fn writes(&self) -> Vec<String> {
        self.lock().writes.clone()
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Requests served so far to clients from
    /// [`FakeApiServer::client_as`]`(user)`.
    pub fn requests_by(&self, user: &str) -> u64 {
        self.lock().requests_by.get(user).copied().unwrap_or(0)
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
        let user = request
            .headers()
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        *self.lock().requests_by.entry(user.clone()).or_insert(0) += 1;
        let content_type = request
            .headers()
            .get(::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let merge = content_type.starts_with("application/merge-patch+json");
        let path = request.uri().path().trim_end_matches('/').to_string();
        if method != Method::GET {
            self.lock().writes.push(format!("{method} {path}"));
        }
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
        if method == Method::POST && path == "/apis/authentication.k8s.io/v1/tokenreviews" {
            self.lock().used.insert((
                user,
                (
                    "authentication.k8s.io".to_string(),
                    "tokenreviews".to_string(),
                    "create".to_string(),
                ),
            ));
            return self.review_token(&body);
        }
        if method == Method::GET
            && let Some(document) = discovery::document(&path)
        {
            return ok(StatusCode::OK, &document);
        }
        let Some(target) = split_path(&path) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("no route {path}"),
            );
        };
        let verb = match (&method, &target.name) {
            (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                "watch"
            }
            (&Method::GET, None) => "list",
            (&Method::GET, Some(_)) => "get",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, _) => "delete",
            _ => "unknown",
        };
        let parts: Vec<&str> = target.collection.split('/').collect();
        let group = if parts.first() == Some(&"apis") {
            parts[1]
        } else {
            ""
        };
        let mut resource = parts.last().copied().unwrap_or("").to_string();
        if target.status {
            resource.push_str("/status");
        }
        self.lock()
            .used
            .insert((user, (group.to_string(), resource, verb.to_string())));
        let collection = target.collection;
        if target.status {
            let Some(name) = target.name else {
                return not_found(&path);
            };
            return match method {
                Method::GET => match self.get_raw(&collection, &name) {
                    Some(object) => ok(StatusCode::OK, &object),
                    None => not_found(&name),
                },
                Method::PUT => self.update(&collection, &name, &body, writes::Write::ReplaceStatus),
                Method::PATCH => self.update(&collection, &name, &body, writes::Write::PatchStatus),
                method => status(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    &format!("{method} {path}"),
                ),
            };
        }
        match (method, target.name) {
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
            (Method::PUT, Some(name)) => {
                self.update(&collection, &name, &body, writes::Write::Replace)
            }
            (Method::PATCH, Some(name)) if merge => {
                self.update(&collection, &name, &body, writes::Write::Patch)
            }
            (Method::PATCH, Some(_)) => status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "only application/merge-patch+json patches are served",
            ),
            (Method::DELETE, Some(name)) => self.delete(&collection, &name, &body),
            (method, _) => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("{method} {path}"),
            ),
        }
    }
}
