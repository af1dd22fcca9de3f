//! Headless Chromium (Debian's `chromium`) driven through the Chrome
//! DevTools Protocol: open a page, evaluate JavaScript in it, take a
//! screenshot. The browser is started on a free loopback port with a
//! throw-away profile and killed when the handle drops.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::process::free_address;

/// A running headless Chromium with one page.
pub struct Chromium {
    child: Child,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// The browser binary: `chromium` (Debian), else `chromium-browser`.
fn binary() -> anyhow::Result<&'static str> {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(name);
        }
    }
    bail!("no chromium on the PATH (Debian package `chromium`; .ci/setup installs it)")
}

/// The body of `GET path` (the debugging port keeps connections open:
/// read up to the announced length).
async fn http_get(address: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())
                            .flatten()
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return Ok::<_, anyhow::Error>(body.to_string());
                }
            }
        }
        Ok(String::new())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .context("the debugging port did not answer")?
}

impl Chromium {
    /// Starts the browser with a `width` × `height` window and attaches to
    /// its first page.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let profile = tempfile::tempdir()?;
        let port = free_address()?;
        let child = Command::new(binary()?)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                &format!("--window-size={width},{height}"),
                &format!("--remote-debugging-port={}", port.port()),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromium")?;
        // Another process offers no event to await: ask its debugging port
        // until it answers with a page, bounded in time.
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Ok(list) = http_get(port, "/json/list").await
                && let Ok(targets) = serde_json::from_str::<Vec<Value>>(&list)
                && let Some(url) = targets
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            {
                break url.to_string();
            }
            if Instant::now() > deadline {
                bail!("chromium's debugging port {port} did not offer a page within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .context("attaching to the page")?;
        Ok(Chromium {
            child,
            socket,
            next_id: 1,
            _profile: profile,
        })
    }

    /// Sends `method` with `params` and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.socket.send(Message::text(request.to_string())).await?;
        let deadline = Duration::from_secs(30);
        loop {
            let message = tokio::time::timeout(deadline, self.socket.next())
                .await
                .with_context(|| format!("{method}: no answer within {deadline:?}"))?
                .context("the browser closed the connection")??;
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text)?;
            if answer["id"] != id {
                continue; // an event
            }
            if let Some(error) = answer.get("error") {
                bail!("{method}: {error}");
            }
            return Ok(answer["result"].clone());
        }
    }

    /// Opens `url` in the page.
    pub async fn open(&mut self, url: &str) -> anyhow::Result<()> {
        self.call("Page.enable", json!({})).await?;
        self.call("Page.navigate", json!({"url": url})).await?;
        Ok(())
    }

    /// The value of `expression` evaluated in the page (exceptions are
    /// errors).
    pub async fn evaluate(&mut self, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("{expression}: {exception}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `expression` until it is true (the page loads, and changes
    /// on its own by server-sent events), bounded by `limit`; returns the
    /// value of `report` then.
    pub async fn wait_until(
        &mut self,
        expression: &str,
        report: &str,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            // An exception is "not yet": the page may still be loading.
            if self.evaluate(expression).await.ok() == Some(Value::Bool(true)) {
                return self.evaluate(report).await;
            }
            if Instant::now() > deadline {
                let now = self.evaluate(report).await.unwrap_or_default();
                bail!("the page never showed {expression} within {limit:?}; it shows {now}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a PNG screenshot of the page to `path`.
    pub async fn screenshot(&mut self, path: &Path) -> anyhow::Result<()> {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = shot["data"].as_str().context("no screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        std::fs::write(path, png)?;
        Ok(())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
