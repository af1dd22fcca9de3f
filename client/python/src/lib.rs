//! The gate client for Python: the Rust client (`cutover-client`) behind a
//! PyO3 module, so Python gates speak the protocol through the one
//! implementation the simulation and the tests cover.
//!
//! A `Client` owns a small tokio runtime (one worker thread) that runs the
//! coordinator session; `Gate.decide()` reads the installed plan without
//! touching that runtime. Blocking waits release the GIL.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cutover_client::{
    Client as RustClient, ClientConfig, Colour, Decision, Gate as RustGate, GateIdentity, Key,
    Mode, PipelineName,
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

/// One coordinator session for every gate of the process.
#[pyclass(name = "Client", module = "cutover_gate._native")]
struct Client {
    runtime: tokio::runtime::Runtime,
    client: Option<RustClient>,
}

impl Client {
    fn open(&self) -> PyResult<&RustClient> {
        self.client
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the client is closed"))
    }
}

#[pymethods]
impl Client {
    /// Connects (in the background) to the coordinator at `endpoint`
    /// (`http://host:7700`). Gates hold until the first plan arrives.
    #[new]
    #[pyo3(signature = (endpoint, client_name = None, progress_interval_ms = 200))]
    fn new(
        endpoint: &str,
        client_name: Option<String>,
        progress_interval_ms: u64,
    ) -> PyResult<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cutover-gate")
            .enable_all()
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("starting the client runtime: {e}")))?;
        let mut config = ClientConfig::new(endpoint)
            .progress_interval(Duration::from_millis(progress_interval_ms.max(1)));
        if let Some(name) = client_name {
            config = config.client_name(name);
        }
        let client = {
            let _entered = runtime.enter();
            RustClient::connect(config).map_err(value_error)?
        };
        Ok(Client {
            runtime,
            client: Some(client),
        })
    }

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
        let _entered = self.runtime.enter();
        let gate = self.open()?.gate(identity).map_err(value_error)?;
        Ok(Gate {
            inner: Mutex::new(gate),
        })
    }

    /// Whether a session to the coordinator is open now.
    fn connected(&self) -> PyResult<bool> {
        Ok(*self.open()?.connected().borrow())
    }

    /// Sessions opened so far (1 + reconnections).
    fn sessions_opened(&self) -> PyResult<u64> {
        Ok(self.open()?.sessions_opened())
    }

    /// Epoch of the plan held for `pipeline`, or None before the first.
    fn epoch(&self, pipeline: &str) -> PyResult<Option<u64>> {
        let pipeline = PipelineName::new(pipeline).map_err(value_error)?;
        Ok(self.open()?.plan(&pipeline).map(|p| p.epoch.0))
    }

    /// Sends a last progress report and closes the session.
    fn close(&mut self, py: Python<'_>) {
        if let Some(client) = self.client.take() {
            let runtime = &self.runtime;
            py.detach(|| runtime.block_on(client.shutdown()));
        }
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
}

/// The native part of the `cutover_gate` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EMIT", EMIT)?;
    m.add("DROP", DROP)?;
    m.add("HOLD", HOLD)?;
    m.add_class::<Client>()?;
    m.add_class::<Gate>()?;
    Ok(())
}
