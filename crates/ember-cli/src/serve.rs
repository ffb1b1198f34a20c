//! `ember serve`: an HTTP JSON API over an exported model.
//!
//! - `POST /v1/recommend` `{"user": 7, "k": 10, "exclude": [3, 5]}` → `{"items": [{"id", "score"}…]}`;
//!   for history-based models (autoencoders, SASRec, BERT4Rec) also
//!   `{"history": [3, 5, 9], "k": 10}`: a user given by their items
//! - `POST /v1/audience` `{"item": 42, "k": 100}` → `{"users": [{"id", "score"}…]}`
//! - `GET /healthz` → model kind and sizes
//! - `GET /metrics` → request counts by route and status, and latency, in Prometheus text format
//!
//! Bad requests get a 4xx with `{"error": "…"}`. SIGINT or SIGTERM stops accepting requests,
//! lets the ones in flight finish, and exits 0.

use anyhow::{Context, Result};
use ember_infer::{ExportedModel, InferError, Scored};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tiny_http::{Header, Method, Request, Response, Server};

/// Largest k a query may ask for.
const MAX_K: usize = 10_000;
/// Largest request body read.
const MAX_BODY: u64 = 1 << 20;
/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 8] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendQuery {
    /// A known user, or …
    user: Option<i64>,
    /// … a user given by their items (history-based models).
    history: Option<Vec<i64>>,
    #[serde(default = "ten")]
    k: usize,
    #[serde(default)]
    exclude: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudienceQuery {
    item: i64,
    #[serde(default = "ten")]
    k: usize,
}

fn ten() -> usize {
    10
}

/// Request counts and latencies.
#[derive(Default)]
struct Metrics {
    /// (route, status) → count.
    requests: BTreeMap<(String, u16), u64>,
    /// Cumulative bucket counts, then the sum and count of all latencies.
    buckets: [u64; BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
}

impl Metrics {
    fn record(&mut self, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .entry((route.to_string(), status))
            .or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.latency_sum += seconds;
        self.latency_count += 1;
    }

    fn render(&self) -> String {
        let mut out = String::from("# TYPE ember_requests_total counter\n");
        for ((route, status), n) in &self.requests {
            out.push_str(&format!(
                "ember_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str("# TYPE ember_request_seconds histogram\n");
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            out.push_str(&format!(
                "ember_request_seconds_bucket{{le=\"{bound}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "ember_request_seconds_bucket{{le=\"+Inf\"}} {}\n",
            self.latency_count
        ));
        out.push_str(&format!("ember_request_seconds_sum {}\n", self.latency_sum));
        out.push_str(&format!(
            "ember_request_seconds_count {}\n",
            self.latency_count
        ));
        out
    }
}

/// An answer: status and JSON (or text) body.
struct Reply {
    status: u16,
    body: String,
    json: bool,
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: body.to_string(),
        json: true,
    }
}

fn error(status: u16, message: impl Into<String>) -> Reply {
    Reply {
        status,
        body: json!({ "error": message.into() }).to_string(),
        json: true,
    }
}

fn scored(list: Vec<Scored>) -> Value {
    list.into_iter()
        .map(|s| json!({ "id": s.id, "score": s.score }))
        .collect()
}

fn check_k(k: usize) -> Result<(), Reply> {
    if k == 0 || k > MAX_K {
        Err(error(400, format!("k must lie in 1..={MAX_K}, got {k}")))
    } else {
        Ok(())
    }
}

fn infer_error(e: InferError) -> Reply {
    match e {
        InferError::UnknownId { .. } => error(404, e.to_string()),
        InferError::Unsupported(_) => error(400, e.to_string()),
        other => error(500, other.to_string()),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, Reply> {
    serde_json::from_str(body).map_err(|e| error(400, format!("invalid JSON body: {e}")))
}

/// Routes one request; returns the route label for metrics and the reply.
fn handle(
    model: &ExportedModel,
    metrics: &Mutex<Metrics>,
    method: &Method,
    url: &str,
    body: &str,
) -> (&'static str, Reply) {
    let path = url.split('?').next().unwrap_or("");
    match (method, path) {
        (Method::Get, "/healthz") => {
            let m = model.manifest();
            let kind = serde_json::to_value(&m.model)
                .ok()
                .and_then(|v| v.get("kind").cloned())
                .unwrap_or(Value::Null);
            (
                "healthz",
                ok(
                    json!({ "status": "ok", "model": kind, "users": m.user_ids.len(), "items": m.item_ids.len(), "precision": m.precision }),
                ),
            )
        }
        (Method::Get, "/metrics") => {
            let text = metrics.lock().map(|m| m.render()).unwrap_or_default();
            (
                "metrics",
                Reply {
                    status: 200,
                    body: text,
                    json: false,
                },
            )
        }
        (Method::Post, "/v1/recommend") => {
            let reply = (|| {
                let q: RecommendQuery = parse(body)?;
                check_k(q.k)?;
                match (q.user, &q.history) {
                    (Some(user), None) => {
                        let items = model
                            .recommend(user, q.k, &q.exclude)
                            .map_err(infer_error)?;
                        Ok(ok(json!({ "user": user, "items": scored(items) })))
                    }
                    (None, Some(history)) => {
                        let items = model
                            .recommend_history(history, q.k, &q.exclude)
                            .map_err(infer_error)?;
                        Ok(ok(json!({ "items": scored(items) })))
                    }
                    _ => Err(error(
                        400,
                        "give exactly one of `user` (a known user id) and `history` (item ids)",
                    )),
                }
            })();
            ("recommend", reply.unwrap_or_else(|e| e))
        }
        (Method::Post, "/v1/audience") => {
            let reply = (|| {
                let q: AudienceQuery = parse(body)?;
                check_k(q.k)?;
                let users = model.audience(q.item, q.k).map_err(infer_error)?;
                Ok(ok(json!({ "item": q.item, "users": scored(users) })))
            })();
            ("audience", reply.unwrap_or_else(|e| e))
        }
        (_, "/healthz" | "/metrics" | "/v1/recommend" | "/v1/audience") => (
            "other",
            error(405, format!("method {method} is not allowed on {path}")),
        ),
        _ => (
            "other",
            error(
                404,
                format!("no route {path}: use /v1/recommend, /v1/audience, /healthz or /metrics"),
            ),
        ),
    }
}

fn serve_one(model: &ExportedModel, metrics: &Mutex<Metrics>, mut request: Request) {
    let started = Instant::now();
    let mut body = String::new();
    let read = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
    let method = request.method().clone();
    let url = request.url().to_string();
    let (route, reply) = match read {
        Ok(_) => handle(model, metrics, &method, &url, &body),
        Err(e) => ("other", error(400, format!("unreadable body: {e}"))),
    };
    let content_type = if reply.json {
        "application/json"
    } else {
        "text/plain; version=0.0.4"
    };
    let header = Header::from_bytes("Content-Type", content_type).expect("valid header");
    let status = reply.status;
    let _ = request.respond(
        Response::from_string(reply.body)
            .with_status_code(status)
            .with_header(header),
    );
    if let Ok(mut m) = metrics.lock() {
        m.record(route, status, started.elapsed().as_secs_f64());
    }
}

/// Serves `model_dir` on `addr` with `threads` workers until SIGINT/SIGTERM.
pub fn serve(model_dir: &Path, addr: &str, threads: usize) -> Result<()> {
    let model = Arc::new(ExportedModel::load(model_dir)?);
    let server = Arc::new(Server::http(addr).map_err(|e| anyhow::anyhow!("{addr}: {e}"))?);
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let (server, stopping, threads) = (server.clone(), stopping.clone(), threads.max(1));
        ctrlc::set_handler(move || {
            stopping.store(true, Ordering::SeqCst);
            for _ in 0..threads {
                server.unblock();
            }
        })
        .context("installing the signal handler")?;
    }
    // The first line on stdout is the bound address, so that tools (and tests) can use port 0.
    println!("listening on http://{}", server.server_addr());
    tracing::info!(
        "serving {} on {} with {} threads",
        model_dir.display(),
        server.server_addr(),
        threads.max(1)
    );
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (server, model, metrics, stopping) = (
                server.clone(),
                model.clone(),
                metrics.clone(),
                stopping.clone(),
            );
            std::thread::spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match server.recv() {
                        Ok(request) => serve_one(&model, &metrics, request),
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    tracing::info!("stopped");
    Ok(())
}
