//! The gate client for Python: the Rust client (`cutover-client`) behind a
//! PyO3 module, so Python gates speak the protocol through the one
//! implementation the simulation and the tests cover.
//!
//! The process's sessions run in the client crate's pool (one per endpoint,
//! on a small tokio runtime of its own); `Gate.decide()` reads the installed
//! plan without touching that runtime. Blocking waits release the GIL.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use cutover_client::{
    Client as RustClient, ClientPool, ClientTls, Colour, Decision, Gate as RustGate, GateIdentity,
    Key, Mode, PipelineName,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// `decide()` result: the job emits the record.
const EMIT: u8 = 0;
/// `decide()` result: the other colour emits it; drop it.
const DROP: u8 = 1;
/// `decide()` result: not decidable yet; keep the record and ask again.
const HOLD: u8 = 2;

fn code(decision: Decision) -> u8 {
    match decision {
        Decision::Emit => EMIT,
        Decision::Drop => DROP,
        Decision::Hold => HOLD,
    }
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn parse_colour(colour: &str) -> PyResult<Colour> {
    colour.parse().map_err(value_error)
}

/// The process's clients, one session per endpoint, shared by its gates.
static POOL: OnceLock<Result<ClientPool, String>> = OnceLock::new();

fn pool() -> PyResult<&'static ClientPool> {
    POOL.get_or_init(|| {
        ClientPool::new(format!("python-{}", std::process::id())).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| PyRuntimeError::new_err(e.clone()))
}

/// The process's session to one coordinator endpoint, shared by every gate
/// that uses it (see `shared_client`).
#[pyclass(name = "Client", module = "cutover_gate._native")]
struct Client {
    endpoint: String,
}

impl Client {
    fn with<T>(&self, f: impl FnOnce(&RustClient) -> T) -> PyResult<T> {
        pool()?
            .with_client(&self.endpoint, |client| Ok(f(client)))
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

/// The process's client for `endpoint` (`http://host:7700`), connected in
/// the background on first use; each call counts a user: pair it with
/// `release_client`. Gates hold until the first plan arrives. For an
/// `https://` endpoint, `tls_ca`, `tls_cert` with `tls_key`, and
/// `token_file` replace `CUTOVER_TLS_CA`, `CUTOVER_TLS_CERT`,
/// `CUTOVER_TLS_KEY` and `CUTOVER_TOKEN_FILE` (the first use of an endpoint
/// in the process sets them).
#[pyfunction]
#[pyo3(signature = (endpoint, client_name = None, progress_interval_ms = 200, tls_ca = None, tls_cert = None, tls_key = None, token_file = None))]
#[allow(clippy::too_many_arguments)]
fn shared_client(
    endpoint: &str,
    client_name: Option<String>,
    progress_interval_ms: u64,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    token_file: Option<PathBuf>,
) -> PyResult<Client> {
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(PyValueError::new_err(
            "tls_cert and tls_key go together (a client certificate and its key)",
        ));
    }
    let mut tls = ClientTls::from_env();
    tls.ca = tls_ca.or(tls.ca);
    tls.identity = tls_cert.zip(tls_key).or(tls.identity);
    tls.token_file = token_file.or(tls.token_file);
    pool()?
        .acquire(endpoint, |mut config| {
            config = config
                .progress_interval(Duration::from_millis(progress_interval_ms.max(1)))
                .tls(tls);
            match client_name {
                Some(name) => config.client_name(name),
                None => config,
            }
        })
        .map_err(value_error)?;
    Ok(Client {
        endpoint: endpoint.to_string(),
    })
}

/// Ends one use of `endpoint`'s shared client; the last one sends a final
/// progress report (finished gates included) and closes the session, so
/// nothing is lost when the process exits right after.
#[pyfunction]
fn release_client(py: Python<'_>, endpoint: &str) -> PyResult<()> {
    let pool = pool()?;
    py.detach(|| pool.release(endpoint));
    Ok(())
}

#[pymethods]
impl Client {
    /// Registers a gate: one per operator subtask.
    #[pyo3(signature = (pipeline, colour, job_id, gate_uid, subtask_index, parallelism, attempt = 0))]
    #[allow(clippy::too_many_arguments)]
    fn gate(
        &self,
        pipeline: &str,
        colour: &str,
        job_id: String,
        gate_uid: String,
        subtask_index: u32,
        parallelism: u32,
        attempt: u32,
    ) -> PyResult<Gate> {
        let identity = GateIdentity {
            pipeline: PipelineName::new(pipeline).map_err(value_error)?,
            colour: parse_colour(colour)?,
            job_id,
            gate_uid,
            subtask_index,
            parallelism,
            attempt,
        };
        let gate = self
            .with(|client| client.gate(identity))?
            .map_err(value_error)?;
        Ok(Gate {
            inner: Mutex::new(gate),
        })
    }

    /// Whether a session to the coordinator is open now.
    fn connected(&self) -> PyResult<bool> {
        self.with(|client| *client.connected().borrow())
    }

    /// Sessions opened so far (1 + reconnections).
    fn sessions_opened(&self) -> PyResult<u64> {
        self.with(RustClient::sessions_opened)
    }

    /// Epoch of the plan held for `pipeline`, or None before the first.
    fn epoch(&self, pipeline: &str) -> PyResult<Option<u64>> {
        let pipeline = PipelineName::new(pipeline).map_err(value_error)?;
        self.with(|client| client.plan(&pipeline).map(|p| p.epoch.0))
    }
}

/// Decides, record by record, whether this gate's job emits.
#[pyclass(name = "Gate", module = "cutover_gate._native")]
struct Gate {
    inner: Mutex<RustGate>,
}

impl Gate {
    fn gate(&self) -> MutexGuard<'_, RustGate> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl Gate {
    /// EMIT, DROP or HOLD for a record at `key` (counted).
    fn decide(&self, key: i64) -> u8 {
        code(self.gate().decide(Key(key)))
    }

    /// The decision for `key` without counting it.
    fn peek(&self, key: i64) -> u8 {
        code(self.gate().peek(Key(key)))
    }

    /// Blocks (without the GIL) until `key` is decidable or `timeout_s`
    /// passes; returns the decision (HOLD on timeout), not counted.
    fn wait_until_decidable(&self, py: Python<'_>, key: i64, timeout_s: f64) -> PyResult<u8> {
        let timeout = Duration::try_from_secs_f64(timeout_s)
            .map_err(|e| value_error(format!("timeout {timeout_s}: {e}")))?;
        Ok(py.detach(|| code(self.gate().wait_until_decidable_blocking(Key(key), timeout))))
    }

    /// Reports the subtask's watermark; Flink's end-of-input watermark
    /// (`2**63 - 1`) marks the input finished.
    fn observe_watermark(&self, watermark: i64) {
        self.gate().observe_watermark(Key(watermark));
    }

    /// How many records the operator holds, and the lowest key among them.
    #[pyo3(signature = (count, lowest = None))]
    fn set_held(&self, count: u64, lowest: Option<i64>) {
        self.gate().set_held(count, lowest.map(Key));
    }

    /// Marks the subtask's input idle (or active again).
    fn set_idle(&self, idle: bool) {
        self.gate().set_idle(idle);
    }

    /// Marks the subtask's input finished.
    fn finish(&self) {
        self.gate().finish();
    }

    /// "EVENT_TIME" or "WATERMARK": the key the pipeline decides on.
    fn mode(&self) -> &'static str {
        match self.gate().mode() {
            Mode::EventTime => "EVENT_TIME",
            Mode::Watermark => "WATERMARK",
        }
    }

    /// Records emitted so far.
    fn emitted(&self) -> u64 {
        self.gate().emitted()
    }

    /// Records dropped so far.
    fn dropped(&self) -> u64 {
        self.gate().dropped()
    }

    /// Epoch of the plan the gate holds, or None before the first.
    fn epoch(&self) -> Option<u64> {
        self.gate().plan().map(|p| p.epoch.0)
    }

    /// Whether the gate's session to the coordinator is open now.
    fn connected(&self) -> bool {
        self.gate().connection_report().connected
    }

    /// What the gate's session says about its connection: whether it ever
    /// connected, since when it is in its state, how many attempts failed
    /// and the last error (for logs and error messages).
    fn connection_report(&self) -> String {
        self.gate().connection_report().to_string()
    }
}

/// Raises ValueError, naming the address and the fix, unless every
/// coordinator address in `endpoint` (separated by commas) is one a gate
/// can use: `http://` or `https://`, with a host, no path.
#[pyfunction]
fn check_endpoint(endpoint: &str) -> PyResult<()> {
    cutover_client::connection_report::check_endpoints(endpoint).map_err(value_error)
}

/// The native part of the `cutover_gate` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EMIT", EMIT)?;
    m.add("DROP", DROP)?;
    m.add("HOLD", HOLD)?;
    m.add_class::<Client>()?;
    m.add_class::<Gate>()?;
    m.add_function(wrap_pyfunction!(shared_client, m)?)?;
    m.add_function(wrap_pyfunction!(release_client, m)?)?;
    m.add_function(wrap_pyfunction!(check_endpoint, m)?)?;
    Ok(())
}
