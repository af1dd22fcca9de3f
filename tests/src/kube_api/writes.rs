//! LIST and the writes (POST, PUT, PATCH, DELETE) with the API server's
//! bookkeeping: resourceVersion checks, uid, creation time, generation,
//! the status subresource, finalizers and garbage collection of owned
//! objects.

use std::collections::BTreeMap;
use std::time::SystemTime;

use ::http::{Response, StatusCode};
use serde_json::{Value, json};

use super::http::{Body, merge_patch, not_found, ok, selected, status};
use super::{FakeApiServer, ObjectKey, State};

/// How an update changes the stored object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Write {
    /// PUT on the object: everything but the status.
    Replace,
    /// Merge PATCH on the object: everything but the status.
    Patch,
    /// PUT on `/status`: the status alone.
    ReplaceStatus,
    /// Merge PATCH on `/status`: the status alone.
    PatchStatus,
}

/// Custom resources have a status subresource; built-in ones here do not.
fn has_status_subresource(collection: &str) -> bool {
    collection.starts_with("apis/") && !collection.starts_with("apis/events.k8s.io/")
}

fn conflict(name: &str) -> Response<Body> {
    status(
        StatusCode::CONFLICT,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn finalizers_empty(object: &Value) -> bool {
    object["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty)
}

impl FakeApiServer {
    pub(super) fn list(
        &self,
        collection: &str,
        query: &BTreeMap<String, String>,
    ) -> Response<Body> {
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

    pub(super) fn create(&self, collection: &str, body: &[u8]) -> Response<Body> {
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
        if has_status_subresource(collection)
            && let Value::Object(map) = &mut object
        {
            map.remove("status");
        }
        state.revision += 1;
        let metadata = &mut object["metadata"];
        metadata["resourceVersion"] = json!(state.revision.to_string());
        metadata["uid"] = json!(format!("uid-{}", state.revision));
        metadata["creationTimestamp"] = json!(now_rfc3339());
        metadata["generation"] = json!(1);
        if let Some(namespace) = collection
            .split('/')
            .skip_while(|p| *p != "namespaces")
            .nth(1)
        {
            metadata["namespace"] = json!(namespace);
        }
        state.objects.insert(key, object.clone());
        self.record(&mut state, collection, "ADDED", object.clone());
        ok(StatusCode::CREATED, &object)
    }

    pub(super) fn update(
        &self,
        collection: &str,
        name: &str,
        body: &[u8],
        write: Write,
    ) -> Response<Body> {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
        };
        let mut state = self.lock();
        let key = (collection.to_string(), name.to_string());
        let Some(current) = state.objects.get(&key).cloned() else {
            return not_found(name);
        };
        if let Some(v) = body["metadata"]["resourceVersion"].as_str()
            && json!(v) != current["metadata"]["resourceVersion"]
        {
            return conflict(name);
        }
        let mut next = match write {
            Write::Replace => body,
            Write::Patch => {
                let mut next = current.clone();
                merge_patch(&mut next, &body);
                next
            }
            Write::ReplaceStatus | Write::PatchStatus => {
                let mut patched = current.clone();
                if write == Write::ReplaceStatus {
                    patched["status"] = body["status"].clone();
                } else {
                    merge_patch(&mut patched, &body);
                }
                let mut next = current.clone();
                next["status"] = patched["status"].clone();
                next
            }
        };
        if matches!(write, Write::Replace | Write::Patch) && has_status_subresource(collection) {
            next["status"] = current["status"].clone();
        }
        if let Value::Object(map) = &mut next
            && map.get("status").is_some_and(Value::is_null)
        {
            map.remove("status");
        }
        // What the server owns in metadata stays the server's.
        for field in ["uid", "creationTimestamp", "deletionTimestamp", "namespace"] {
            match current["metadata"].get(field) {
                Some(value) => next["metadata"][field] = value.clone(),
                None => {
                    if let Some(m) = next["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        let spec_changed = next.get("spec") != current.get("spec");
        next["metadata"]["generation"] = json!(generation + i64::from(spec_changed));
        next["metadata"]["name"] = json!(name);
        next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if next == current {
            // Nothing changed: no new version, no event (as the API server).
            return ok(StatusCode::OK, &current);
        }
        if current["metadata"].get("deletionTimestamp").is_some() && finalizers_empty(&next) {
            let object = self.remove(&mut state, &key);
            return ok(StatusCode::OK, &object.unwrap_or(next));
        }
        state.revision += 1;
        next["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        state.objects.insert(key, next.clone());
        self.record(&mut state, collection, "MODIFIED", next.clone());
        ok(StatusCode::OK, &next)
    }

    pub(super) fn delete(&self, collection: &str, name: &str, body: &[u8]) -> Response<Body> {
        let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut state = self.lock();
        let key = (collection.to_string(), name.to_string());
        let Some(current) = state.objects.get(&key).cloned() else {
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
        match self.delete_object(&mut state, &key) {
            Some(object) => ok(StatusCode::OK, &object),
            None => not_found(name),
        }
    }

    /// Deletes `key`: marks it for deletion while it has finalizers,
    /// removes it (and what it owns) otherwise.
    fn delete_object(&self, state: &mut State, key: &ObjectKey) -> Option<Value> {
        let mut object = state.objects.get(key).cloned()?;
        if finalizers_empty(&object) {
            return self.remove(state, key);
        }
        if object["metadata"].get("deletionTimestamp").is_none() {
            state.revision += 1;
            object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            object["metadata"]["resourceVersion"] = json!(state.revision.to_string());
            state.objects.insert(key.clone(), object.clone());
            self.record(state, &key.0, "MODIFIED", object.clone());
        }
        Some(object)
    }

    /// Removes `key` and deletes the objects it owns.
    fn remove(&self, state: &mut State, key: &ObjectKey) -> Option<Value> {
        let mut object = state.objects.remove(key)?;
        state.revision += 1;
        object["metadata"]["resourceVersion"] = json!(state.revision.to_string());
        self.record(state, &key.0, "DELETED", object.clone());
        let uid = object["metadata"]["uid"].clone();
        let owned: Vec<ObjectKey> = state
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for child in owned {
            self.delete_object(state, &child);
        }
        Some(object)
    }
}
