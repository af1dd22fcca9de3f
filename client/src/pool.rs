//! One client — one coordinator session — per endpoint in a process, shared
//! by every gate that uses it and closed with the last one. For the gate
//! libraries of other languages (the JVM and Python gates), whose gates come
//! and go without a Rust owner of the client: they acquire the endpoint when
//! a gate opens and release it when the gate closes.
//!
//! The pool owns a small tokio runtime (one worker thread) that runs the
//! sessions; deciding never touches it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::runtime::Runtime;

use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::ClientError;

/// Clients by endpoint, each with its number of users.
pub struct ClientPool {
    runtime: Runtime,
    client_name: String,
    clients: Mutex<HashMap<String, (Client, usize)>>,
}

impl ClientPool {
    /// A pool whose sessions name themselves `client_name`.
    pub fn new(client_name: impl Into<String>) -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cutover-gate")
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        Ok(ClientPool {
            runtime,
            client_name: client_name.into(),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The runtime the sessions run on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Client, usize)>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more user of `endpoint`'s client, connecting it first if
    /// it has none (with `configure` applied to its settings).
    pub fn acquire(
        &self,
        endpoint: &str,
        configure: impl FnOnce(ClientConfig) -> ClientConfig,
    ) -> Result<(), ClientError> {
        let _entered = self.runtime.enter();
        let mut clients = self.clients();
        if let Some((_, users)) = clients.get_mut(endpoint) {
            *users += 1;
            return Ok(());
        }
        let config = configure(ClientConfig::new(endpoint).client_name(self.client_name.clone()));
        let client = Client::connect(config)?;
        clients.insert(endpoint.to_string(), (client, 1));
        Ok(())
    }

    /// Runs `f` with `endpoint`'s client (acquired before).
    pub fn with_client<T>(
        &self,
        endpoint: &str,
        f: impl FnOnce(&Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let _entered = self.runtime.enter();
        let clients = self.clients();
        let (client, _) = clients
            .get(endpoint)
            .ok_or_else(|| ClientError::NotAcquired(endpoint.to_string()))?;
        f(client)
    }

    /// One user of `endpoint`'s client is gone; the last one closes the
    /// session, sending the final progress first.
    pub fn release(&self, endpoint: &str) {
        let last = {
            let mut clients = self.clients();
            match clients.get_mut(endpoint) {
                Some((_, users)) if *users > 1 => {
                    *users -= 1;
                    None
                }
                Some(_) => clients.remove(endpoint).map(|(client, _)| client),
                None => None,
            }
        };
        if let Some(client) = last {
            self.runtime.block_on(client.shutdown());
        }
    }

    /// Users of `endpoint`'s client (0: none open).
    pub fn users(&self, endpoint: &str) -> usize {
        self.clients().get(endpoint).map_or(0, |(_, users)| *users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_per_endpoint_closed_with_its_last_user() {
        let pool = ClientPool::new("test").expect("a runtime");
        let endpoint = "http://127.0.0.1:1";
        assert!(matches!(
            pool.with_client(endpoint, |_| Ok(())),
            Err(ClientError::NotAcquired(_))
        ));
        pool.acquire(endpoint, |c| c).expect("connects lazily");
        pool.acquire(endpoint, |c| c).expect("the same client");
        assert_eq!(pool.users(endpoint), 2);
        let opened = pool
            .with_client(endpoint, |c| Ok(c as *const Client as usize))
            .expect("acquired");
        pool.release(endpoint);
        let still = pool
            .with_client(endpoint, |c| Ok(c as *const Client as usize))
            .expect("one user left");
        assert_eq!(opened, still);
        pool.release(endpoint);
        assert_eq!(pool.users(endpoint), 0);
        assert!(pool.with_client(endpoint, |_| Ok(())).is_err());
        pool.release(endpoint); // releasing what is gone changes nothing
    }
}
