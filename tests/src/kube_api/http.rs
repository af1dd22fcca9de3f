//! HTTP plumbing of the fake API server: paths, query decoding, selectors,
//! JSON merge patches and Status responses.

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// Response bodies.
pub(super) type Body = BoxBody<Bytes, Infallible>;

/// A request's target: the collection, an object in it, a subresource.
pub(super) struct Target {
    /// `api/v1/namespaces/ns/configmaps` or `apis/g/v/namespaces/ns/plural`.
    pub collection: String,
    /// The object's name, if the path names one.
    pub name: Option<String>,
    /// `status` for `/status`; no other subresource is served.
    pub status: bool,
}

/// `/api/v1/namespaces/ns/configmaps[/name[/status]]` or
/// `/apis/g/v/namespaces/ns/plural[/name[/status]]`.
pub(super) fn split_path(path: &str) -> Option<Target> {
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
    if parts.len() < collection_len {
        return None;
    }
    let collection = parts[..collection_len].join("/");
    let name = parts.get(collection_len).map(|n| n.to_string());
    let status = match parts.get(collection_len + 1) {
        None => false,
        Some(&"status") if parts.len() == collection_len + 2 => true,
        Some(_) => return None,
    };
    Some(Target {
        collection,
        name,
        status,
    })
}

/// Applies a JSON merge patch (RFC 7386) to `target`.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

pub(super) fn decode(s: &str) -> String {
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
pub(super) fn selected(object: &Value, query: &BTreeMap<String, String>) -> bool {
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

pub(super) fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code })
}

pub(super) fn ok(code: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

pub(super) fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    ok(code, &status_json(code.as_u16(), reason, message))
}

pub(super) fn not_found(name: &str) -> Response<Body> {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("\"{name}\" not found"),
    )
}
