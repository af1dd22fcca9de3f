//! The library's shared state: one tokio runtime, and one client (one
//! coordinator session) per endpoint, counted by the gates using it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cutover_client::{Client, ClientConfig, ClientError};
use tokio::runtime::Runtime;

/// Clients by endpoint, with the number of open gates on each.
static CLIENTS: Mutex<Option<HashMap<String, (Client, usize)>>> = Mutex::new(None);
static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime running every session of this copy of the library.
pub(crate) fn runtime() -> Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("cutover-gate")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the gate runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `f` with the client of `endpoint` (connected first if needed) and
/// counts one more user of it.
pub(crate) fn with_client<T>(
    endpoint: &str,
    f: impl FnOnce(&Client) -> Result<T, ClientError>,
) -> Result<T, String> {
    let runtime = runtime()?;
    let _entered = runtime.enter();
    let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    let clients = clients.get_or_insert_with(HashMap::new);
    if !clients.contains_key(endpoint) {
        let client = Client::connect(
            ClientConfig::new(endpoint).client_name(format!("jvm-{}", std::process::id())),
        )
        .map_err(|e| e.to_string())?;
        clients.insert(endpoint.to_string(), (client, 0));
    }
    let Some((client, users)) = clients.get_mut(endpoint) else {
        return Err(format!("no client for {endpoint}"));
    };
    let out = f(client).map_err(|e| e.to_string())?;
    *users += 1;
    Ok(out)
}

/// One user of `endpoint`'s client is gone; the last one closes the
/// session (sending the final progress first).
pub(crate) fn release(endpoint: &str) {
    let last = {
        let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
        let Some(clients) = clients.as_mut() else {
            return;
        };
        match clients.get_mut(endpoint) {
            Some((_, users)) if *users > 1 => {
                *users -= 1;
                None
            }
            Some(_) => clients.remove(endpoint).map(|(client, _)| client),
            None => None,
        }
    };
    if let (Some(client), Ok(runtime)) = (last, runtime()) {
        runtime.block_on(client.shutdown());
    }
}
