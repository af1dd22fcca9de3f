//! The library's shared state: one client pool per copy of the library
//! (per classloader), with one coordinator session per endpoint, counted by
//! the gates using it (see `cutover_client::pool`).

use std::sync::OnceLock;

use cutover_client::ClientPool;

static POOL: OnceLock<Result<ClientPool, String>> = OnceLock::new();

/// The pool of this copy of the library.
pub(crate) fn pool() -> Result<&'static ClientPool, String> {
    POOL.get_or_init(|| {
        ClientPool::new(format!("jvm-{}", std::process::id())).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}
