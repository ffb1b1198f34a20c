//! `ember serve`: an HTTP JSON API over an exported model.
//!
//! - `POST /v1/recommend` `{"user": 7, "k": 10, "exclude": [3, 5]}` → `{"items": [{"id", "score"}…],
//!   "excluded": "all known interactions"}`; for history-based models (autoencoders, SASRec,
//!   BERT4Rec) also `{"history": [3, 5, 9], "k": 10}`: a user given by their items. The
//!   user's known items are left out as `"exclude_known"` says: `"all"` (the default),
//!   `"none"`, or `"since:YYYY-MM-DD"` (only those had on or after that day; not for a
//!   history, which has no dates); `"include_known": true`, the older form, means `"none"`.
//!   `"excluded"` names the policy applied. `"explain": N` (or `true`, meaning 3) adds to each
//!   item `"because": [{"item", "weight"}…]`, the user's own items that weigh most. `"names":
//!   true` adds each item's `"name"` (a model whose run read item names; others answer 400).
//! - `POST /v1/audience` `{"item": 42, "k": 100}` → `{"users": [{"id", "score"}…], "excluded"}`,
//!   the item's owners left out as `"exclude_known"` says; `"explain"` as above; `"names":
//!   true` adds the item's `"name"` and each user's `"label"` (`null` without one).
//! - `POST /v1/next-best-action` `{"user": 7}` → the best action and the runner-up with the
//!   parts of their scores (value, propensity, eligibility) and the explanation, and the
//!   actions not offered with the rule that ruled each out; `"exclude_known"` as above says
//!   which known items count as had; when started with `--actions`.
//! - `GET /healthz` → model kind and sizes
//! - `GET /metrics` → request counts by route and status, and latency, in Prometheus text format
//!
//! Keys (`user`, `item`, `exclude`, `history`, and every `id` and `item` of an answer) are the
//! data's own: for a model with string keys, JSON strings (`"C-000123"`); with integer keys,
//! JSON numbers, or JSON strings of digits for integers beyond ±2^53, which a JavaScript number
//! cannot hold (answers write those as strings too). A key of the other kind is a 400 naming
//! the field and the kind the model's keys are.
//!
//! Bad requests get a 4xx with `{"error": "…"}`. SIGINT or SIGTERM stops accepting connections,
//! answers every request already read or waiting on a connection (with `Connection: close`),
//! closes idle keep-alive connections (after `KEEP_ALIVE_GRACE` for one just answered), and
//! exits 0.

use anyhow::{Context, Result};
use axum::extract::State;
use clap::Args;
use ember_decide::nba::{self, ActionScore, NbaInputs};
use ember_decide::{
    DecideError, ExportedModel, InferError, Key, KeyKind, Known, Options, Recommendation,
    describe_exclusion,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest k a query may ask for.
const MAX_K: usize = 10_000;
/// Largest request body read.
const MAX_BODY: u64 = 1 << 20;
/// Time a client has to send its request line and headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Time a request has from its head to its answer (its body included).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Time the requests in flight have to finish after SIGINT/SIGTERM.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a draining connection that holds a request looks again whether it has become idle
/// (its response may have gone out without `Connection: close`, written before the drain).
const DRAIN_POLL: std::time::Duration = std::time::Duration::from_millis(5);
/// A draining connection answered this recently, without `Connection: close`, may be about to
/// send its next request: it gets this long to arrive (and be answered) before the connection
/// is closed. Connections idle for longer are closed at once.
const KEEP_ALIVE_GRACE: std::time::Duration = std::time::Duration::from_millis(100);
/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 8] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

/// "Because of" items given for `"explain": true`.
const DEFAULT_EXPLAIN: usize = 3;
/// Most "because of" items a request may ask for.
const MAX_EXPLAIN: usize = 50;

/// The action tables of `/v1/next-best-action`, read once at start.
pub struct ActionTables {
    actions: Vec<nba::Action>,
    categories: nba::ItemCategories,
    contacts: nba::ContactHistory,
}

impl ActionTables {
    /// Reads the actions table and, when given, item categories and contact history, their
    /// keys of the kinds of `model`'s.
    pub fn read(
        model: &ExportedModel,
        actions: &Path,
        items: Option<&Path>,
        contacts: Option<&Path>,
    ) -> Result<Self> {
        let actions = nba::read_actions(actions, model.item_key_kind())?;
        let categories = match items {
            Some(path) => nba::read_categories(path, model.item_key_kind())?,
            None => nba::ItemCategories::default(),
        };
        let contacts = match contacts {
            Some(path) => nba::read_contacts(path, &actions, model.user_key_kind())?,
            None => nba::ContactHistory::default(),
        };
        Ok(Self {
            actions,
            categories,
            contacts,
        })
    }

    fn inputs(&self, today: i64, explain: usize, known: Known) -> NbaInputs<'_> {
        NbaInputs {
            actions: &self.actions,
            categories: &self.categories,
            contacts: &self.contacts,
            today,
            explain,
            known,
        }
    }
}

/// A request body: a JSON object whose fields are read by name, each error naming the field
/// and what it must be (never a Rust type).
struct Body(Map<String, Value>);

impl Body {
    /// Parses `text` as a JSON object with no fields beyond `allowed`.
    fn parse(text: &str, allowed: &[&str]) -> Result<Self, Reply> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| error(400, format!("invalid JSON body: {e}")))?;
        let Value::Object(map) = value else {
            return Err(error(400, "the body must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
            return Err(error(
                400,
                format!("unknown field `{unknown}`: expected {}", list.join(", ")),
            ));
        }
        Ok(Self(map))
    }

    fn field(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A key of `kind`, the kind of the model's `whose` (`users`, `items`).
    fn key(&self, name: &str, kind: KeyKind, whose: &str) -> Result<Option<Key>, Reply> {
        self.field(name)
            .map(|v| key_of(v, kind).ok_or_else(|| wrong_key(name, v, kind, whose, false)))
            .transpose()
    }

    /// A list of keys of `kind`, the kind of the model's `whose`.
    fn keys(&self, name: &str, kind: KeyKind, whose: &str) -> Result<Option<Vec<Key>>, Reply> {
        let Some(v) = self.field(name) else {
            return Ok(None);
        };
        let list = v
            .as_array()
            .ok_or_else(|| wrong_key(name, v, kind, whose, true))?;
        list.iter()
            .map(|x| key_of(x, kind).ok_or_else(|| wrong_key(name, x, kind, whose, true)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// `k`: a whole number in 1..=MAX_K (default 10).
    fn k(&self) -> Result<usize, Reply> {
        let Some(v) = self.field("k") else {
            return Ok(10);
        };
        match v.as_u64() {
            Some(k) if (1..=MAX_K as u64).contains(&k) => Ok(k as usize),
            _ => Err(error(
                400,
                format!("`k` must be a whole number from 1 to {MAX_K}, got {v}"),
            )),
        }
    }

    /// A true/false field (default false).
    fn flag(&self, name: &str) -> Result<bool, Reply> {
        match self.field(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(error(
                400,
                format!("`{name}` must be true or false, got {v}"),
            )),
        }
    }

    /// `names`: with `true`, answers name their items (`naming`); a model without item names
    /// (its run had no `name` column in `[data.items]`) refuses it rather than answer without.
    fn naming<'m>(
        &self,
        model: &'m ExportedModel,
        naming: fn(&'m ExportedModel) -> Naming<'m>,
    ) -> Result<Naming<'m>, Reply> {
        if !self.flag("names")? {
            return Ok(Naming::Nothing);
        }
        if !model.has_item_names() {
            return Err(error(
                400,
                "`names`: this model has no item names (its run had no `name` column in \
                 [data.items])",
            ));
        }
        Ok(naming(model))
    }

    /// `explain`: `true` (3 items), `false`, or a number of items from 0 to 50.
    fn explain(&self, default: usize) -> Result<usize, Reply> {
        match self.field("explain") {
            None => Ok(default),
            Some(Value::Bool(true)) => Ok(DEFAULT_EXPLAIN),
            Some(Value::Bool(false)) => Ok(0),
            Some(v) => match v.as_u64() {
                Some(n) if n as usize <= MAX_EXPLAIN => Ok(n as usize),
                _ => Err(error(
                    400,
                    format!(
                        "`explain` must be true, false or a number of items from 0 to {MAX_EXPLAIN}, got {v}"
                    ),
                )),
            },
        }
    }

    /// The exclusion policy: `exclude_known` (`"all"`, the default; `"none"`;
    /// `"since:YYYY-MM-DD"`), or its older alias `include_known: true` (`"none"`), checked
    /// against `model`.
    fn exclusion(&self, model: &ExportedModel) -> Result<Known, Reply> {
        let policy = match (self.field("exclude_known"), self.field("include_known")) {
            (Some(_), Some(_)) => {
                return Err(error(
                    400,
                    "give `exclude_known` or its older alias `include_known`, not both",
                ));
            }
            (Some(Value::String(text)), None) => ember_decide::parse_exclusion(text)
                .map_err(|e| error(400, format!("`exclude_known`: {e}")))?,
            (Some(v), None) => {
                return Err(error(
                    400,
                    format!(
                        "`exclude_known` must be \"all\", \"none\" or \"since:YYYY-MM-DD\", got {v}"
                    ),
                ));
            }
            (None, _) if self.flag("include_known")? => Known::Include,
            (None, _) => Known::Exclude,
        };
        model.check_exclusion(policy).map_err(infer_error)?;
        Ok(policy)
    }

    /// A day, `"YYYY-MM-DD"` or a day number.
    fn day(&self, name: &str) -> Result<Option<i64>, Reply> {
        let Some(v) = self.field(name) else {
            return Ok(None);
        };
        let parsed = match v {
            Value::String(s) => ember_decide::parse_day(s),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            error(
                400,
                format!("`{name}` must be a date \"YYYY-MM-DD\" or a day number, got {v}"),
            )
        })
    }
}

/// The largest integer a JSON number holds exactly everywhere (a JavaScript number): 2^53.
const EXACT_JSON_INTEGER: i64 = 1 << 53;

/// `v` as a key of `kind`: a string key is a JSON string; an integer key a JSON number, or a
/// JSON string of an integer beyond ±2^53 (which a JSON number may not carry exactly).
fn key_of(v: &Value, kind: KeyKind) -> Option<Key> {
    match (kind, v) {
        (KeyKind::String, Value::String(s)) => Key::parse(KeyKind::String, s),
        (KeyKind::Integer, Value::Number(n)) => n.as_i64().map(Key::Integer),
        (KeyKind::Integer, Value::String(s)) => {
            let key = s.parse::<i64>().ok()?;
            (key.unsigned_abs() > EXACT_JSON_INTEGER as u64).then_some(Key::Integer(key))
        }
        _ => None,
    }
}

/// A key as JSON: a string key as a string, an integer key as a number, or as a string of
/// digits beyond ±2^53.
fn key_json(key: &Key) -> Value {
    match key {
        Key::Integer(k) if k.unsigned_abs() > EXACT_JSON_INTEGER as u64 => json!(k.to_string()),
        Key::Integer(k) => json!(k),
        Key::String(s) => json!(s),
    }
}

/// The 400 for field `name` whose value `v` is not a key of `kind` (a list of keys, when
/// `list`), the kind of the model's `whose`.
fn wrong_key(name: &str, v: &Value, kind: KeyKind, whose: &str, list: bool) -> Reply {
    let what = match (kind, list) {
        (KeyKind::Integer, false) => {
            "an integer key (a JSON number, or a string of digits beyond ±2^53)"
        }
        (KeyKind::Integer, true) => {
            "a list of integer keys (JSON numbers, or strings of digits beyond ±2^53)"
        }
        (KeyKind::String, false) => "a string key (a JSON string)",
        (KeyKind::String, true) => "a list of string keys (JSON strings)",
    };
    error(
        400,
        format!(
            "`{name}` must be {what}, got {v}: the model's {whose} have {} keys",
            kind.name()
        ),
    )
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

fn because(list: &[ember_decide::Because]) -> Value {
    list.iter()
        .map(|b| json!({ "item": key_json(&b.item), "weight": b.weight }))
        .collect()
}

/// What answers say beside the keys they list, for `"names": true`: each item's name, or each
/// user's label.
#[derive(Clone, Copy)]
enum Naming<'a> {
    Nothing,
    Items(&'a ExportedModel),
    Users(&'a ExportedModel),
}

impl Naming<'_> {
    /// `("name", the item's name)` or `("label", the user's label)`; `null` for one the
    /// attribute table had none for.
    fn of(self, key: &Key) -> Option<(&'static str, Value)> {
        let (field, text) = match self {
            Naming::Nothing => return None,
            Naming::Items(model) => ("name", model.item_name_of(key)),
            Naming::Users(model) => ("label", model.user_label_of(key)),
        };
        Some((field, text.map_or(Value::Null, |t| Value::String(t.into()))))
    }
}

/// Answers as JSON: `{"id", "score"}`, with `"because"` when explanations were asked for and
/// `"name"` (items) or `"label"` (users) when names were.
fn scored(list: Vec<Recommendation>, explain: bool, naming: Naming) -> Value {
    list.into_iter()
        .map(|r| {
            let mut answer = json!({ "id": key_json(&r.id), "score": r.score });
            if let Some((field, text)) = naming.of(&r.id) {
                answer[field] = text;
            }
            if explain {
                answer["because"] = because(&r.because);
            }
            answer
        })
        .collect()
}

fn infer_error(e: InferError) -> Reply {
    match e {
        InferError::UnknownId { .. } => error(404, e.to_string()),
        InferError::Unsupported(_) | InferError::KeyKind { .. } => error(400, e.to_string()),
        other => error(500, other.to_string()),
    }
}

fn decide_error(e: DecideError) -> Reply {
    match e {
        DecideError::Model(e) => infer_error(e),
        DecideError::Invalid(message) => error(400, message),
        other => error(500, other.to_string()),
    }
}

fn action_score(s: &ActionScore, naming: Naming) -> Value {
    let mut answer = json!({
        "action": s.action,
        "item": key_json(&s.item),
        "score": s.score,
        "parts": { "value": s.value, "propensity": s.propensity, "eligibility": s.eligibility },
        "because": because(&s.because),
    });
    if let Some((_, name)) = naming.of(&s.item) {
        answer["name"] = name;
    }
    answer
}

/// Routes one request; returns the route label for metrics and the reply.
fn handle(
    model: &ExportedModel,
    actions: Option<&ActionTables>,
    metrics: &Mutex<Metrics>,
    method: &str,
    url: &str,
    body: &str,
) -> (&'static str, Reply) {
    let path = url.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/healthz") => {
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
        ("GET", "/metrics") => {
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
        ("POST", "/v1/recommend") => {
            let reply = (|| {
                let q = Body::parse(
                    body,
                    &[
                        "user",
                        "history",
                        "k",
                        "exclude",
                        "exclude_known",
                        "include_known",
                        "explain",
                        "names",
                    ],
                )?;
                let naming = q.naming(model, Naming::Items)?;
                let k = q.k()?;
                let items = model.item_key_kind();
                let exclude = q.keys("exclude", items, "items")?.unwrap_or_default();
                let explain = q.explain(0)?;
                let known = q.exclusion(model)?;
                let excluded = describe_exclusion(known);
                let options = Options {
                    exclude: &exclude,
                    known,
                    explain,
                };
                let user = q.key("user", model.user_key_kind(), "users")?;
                match (user, q.keys("history", items, "items")?) {
                    (Some(user), None) => {
                        let items = model
                            .recommend_for(&user, k, &options)
                            .map_err(infer_error)?;
                        Ok(ok(
                            json!({ "user": key_json(&user), "items": scored(items, explain > 0, naming), "excluded": excluded }),
                        ))
                    }
                    (None, Some(history)) => {
                        let items = model
                            .recommend_history_for(&history, k, &options)
                            .map_err(infer_error)?;
                        Ok(ok(
                            json!({ "items": scored(items, explain > 0, naming), "excluded": excluded }),
                        ))
                    }
                    _ => Err(error(
                        400,
                        "give exactly one of `user` (a known user key) and `history` (item keys)",
                    )),
                }
            })();
            ("recommend", reply.unwrap_or_else(|e| e))
        }
        ("POST", "/v1/audience") => {
            let reply = (|| {
                let q = Body::parse(
                    body,
                    &[
                        "item",
                        "k",
                        "exclude_known",
                        "include_known",
                        "explain",
                        "names",
                    ],
                )?;
                let item_naming = q.naming(model, Naming::Items)?;
                let item = q
                    .key("item", model.item_key_kind(), "items")?
                    .ok_or_else(|| error(400, "`item` (an item key) is required"))?;
                let explain = q.explain(0)?;
                let known = q.exclusion(model)?;
                let options = Options {
                    exclude: &[],
                    known,
                    explain,
                };
                let users = model
                    .audience_for(&item, q.k()?, &options)
                    .map_err(infer_error)?;
                let user_naming = match item_naming {
                    Naming::Nothing => Naming::Nothing,
                    _ => Naming::Users(model),
                };
                let mut answer = json!({
                    "item": key_json(&item),
                    "users": scored(users, explain > 0, user_naming),
                    "excluded": describe_exclusion(known),
                });
                if let Some((field, name)) = item_naming.of(&item) {
                    answer[field] = name;
                }
                Ok(ok(answer))
            })();
            ("audience", reply.unwrap_or_else(|e| e))
        }
        ("POST", "/v1/next-best-action") => {
            let reply = (|| {
                let Some(tables) = actions else {
                    return Err(error(
                        404,
                        "next-best-action is not served: start `ember serve` with --actions FILE",
                    ));
                };
                let q = Body::parse(
                    body,
                    &["user", "explain", "today", "exclude_known", "names"],
                )?;
                let naming = q.naming(model, Naming::Items)?;
                let user = q
                    .key("user", model.user_key_kind(), "users")?
                    .ok_or_else(|| error(400, "`user` (a known user key) is required"))?;
                let today = q.day("today")?.unwrap_or_else(crate::output::today);
                let known = q.exclusion(model)?;
                let inputs = tables.inputs(today, q.explain(DEFAULT_EXPLAIN)?, known);
                let d =
                    nba::next_best_action(model, user.clone(), &inputs).map_err(decide_error)?;
                let ineligible: Vec<Value> = d
                    .ineligible
                    .iter()
                    .map(|(action, why)| json!({ "action": action, "reason": why.to_string() }))
                    .collect();
                Ok(ok(json!({
                    "user": key_json(&user),
                    "best": d.best.as_ref().map(|s| action_score(s, naming)),
                    "runner_up": d.runner_up.as_ref().map(|s| action_score(s, naming)),
                    "not_offered": ineligible,
                    "excluded": describe_exclusion(known),
                })))
            })();
            ("next-best-action", reply.unwrap_or_else(|e| e))
        }
        (
            _,
            "/healthz" | "/metrics" | "/v1/recommend" | "/v1/audience" | "/v1/next-best-action",
        ) => (
            "other",
            error(405, format!("method {method} is not allowed on {path}")),
        ),
        _ => (
            "other",
            error(
                404,
                format!(
                    "no route {path}: use /v1/recommend, /v1/audience, /v1/next-best-action, \
                     /healthz or /metrics"
                ),
            ),
        ),
    }
}

/// What every request handler shares.
struct Shared {
    model: ExportedModel,
    actions: Option<ActionTables>,
    metrics: Mutex<Metrics>,
    /// Set on SIGINT/SIGTERM: every response from then on closes its connection.
    draining: AtomicBool,
}

/// Answers one request: reads the body (up to the limit), runs `handle` on a blocking thread
/// (scoring is CPU work) and records the route, status and latency.
async fn answer(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> axum::response::Response {
    let started = Instant::now();
    let too_large = || {
        let message = format!("the request body is over {MAX_BODY} bytes (1 MiB), the limit");
        ("other", error(413, message))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (route, reply) = if declared.is_some_and(|n| n > MAX_BODY) {
        too_large()
    } else {
        match axum::body::to_bytes(body, MAX_BODY as usize).await {
            Err(e) if is_length_limit(&e) => too_large(),
            Err(e) => ("other", error(400, format!("unreadable body: {e}"))),
            Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
                Err(_) => ("other", error(400, "the body is not UTF-8 text")),
                Ok(text) => {
                    let shared = shared.clone();
                    let url = uri.to_string();
                    tokio::task::spawn_blocking(move || {
                        handle(
                            &shared.model,
                            shared.actions.as_ref(),
                            &shared.metrics,
                            method.as_str(),
                            &url,
                            &text,
                        )
                    })
                    .await
                    .unwrap_or_else(|_| ("other", error(500, "the request handler failed")))
                }
            },
        }
    };
    let content_type = if reply.json {
        "application/json"
    } else {
        "text/plain; version=0.0.4"
    };
    let status = reply.status;
    if let Ok(mut m) = shared.metrics.lock() {
        m.record(route, status, started.elapsed().as_secs_f64());
    }
    let mut response = axum::response::Response::builder()
        .status(status)
        .header(axum::http::header::CONTENT_TYPE, content_type);
    if shared.draining.load(Ordering::SeqCst) {
        // The client learns not to send on this connection again, and hyper closes it once
        // the response is out.
        response = response.header(axum::http::header::CONNECTION, "close");
    }
    response
        .body(axum::body::Body::from(reply.body))
        .expect("a valid response")
}

/// Whether reading a body failed on the size limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[derive(Args)]
pub struct ServeArgs {
    /// An exported model directory (`ember export`).
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on (port 0 picks a free port; the first stdout line names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// An actions table (`id,items,value[,categories,cap,cooldown_days]`): enables
    /// POST /v1/next-best-action.
    #[arg(long)]
    actions: Option<PathBuf>,
    /// Item categories (`item,category`), for actions with an allow-list.
    #[arg(long, requires = "actions")]
    items: Option<PathBuf>,
    /// Past contacts (`customer,action,day`), for caps and cool-downs.
    #[arg(long, requires = "actions")]
    contacts: Option<PathBuf>,
}

/// `ember serve`: reads the action tables, if any, then serves.
pub fn run(args: ServeArgs) -> Result<()> {
    let model = crate::output::load_model(&args.model)?;
    let actions = match &args.actions {
        Some(path) => Some(ActionTables::read(
            &model,
            path,
            args.items.as_deref(),
            args.contacts.as_deref(),
        )?),
        None => None,
    };
    serve(model, &args.model, &args.addr, args.threads, actions)
}

/// Serves `model` (loaded from `model_dir`) on `addr` with `threads` worker threads until
/// SIGINT/SIGTERM; with `actions`, also next best actions.
///
/// The server is axum on tokio, driven through hyper so that a client gets
/// `HEADER_TIMEOUT` to send its request head and `REQUEST_TIMEOUT` for its body and answer
/// (408); on a signal it stops accepting, answers the requests already sent and closes idle
/// connections (for up to `DRAIN_TIMEOUT`), and exits 0.
pub fn serve(
    model: ExportedModel,
    model_dir: &Path,
    addr: &str,
    threads: usize,
    actions: Option<ActionTables>,
) -> Result<()> {
    if let Some(tables) = &actions {
        tables.inputs(0, 0, Known::Exclude).check(&model)?;
    }
    let shared = Arc::new(Shared {
        model,
        actions,
        metrics: Mutex::new(Metrics::default()),
        draining: AtomicBool::new(false),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("starting the server's threads")?;
    runtime.block_on(listen(shared, addr, model_dir, threads.max(1)))
}

async fn listen(shared: Arc<Shared>, addr: &str, model_dir: &Path, threads: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--addr {addr}"))?;
    let local = listener.local_addr().context("the bound address")?;
    // The first line on stdout is the bound address, so that tools (and tests) can use port 0.
    println!("listening on http://{local}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tracing::info!(
        "serving {} on {local} with {threads} threads",
        model_dir.display()
    );
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(shared.clone())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    // Every connection holds a receiver: the sender sees them all closed when the last
    // connection has ended.
    let (drain, _) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(connection(stream, app.clone(), drain.subscribe()));
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    tracing::info!("stopping: answering the requests already sent, closing idle connections");
    shared.draining.store(true, Ordering::SeqCst);
    let _ = drain.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, drain.closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}: stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves one connection until the client closes it or, once `drain` turns true, until it
/// holds no request: one read (even in part) or waiting unread on the socket is answered
/// first, with `Connection: close`, and one answered within `KEEP_ALIVE_GRACE` waits that long
/// for its client's next request.
///
/// hyper's own graceful shutdown closes a connection between two requests at once, and with
/// it a request the client has already sent but hyper has not read yet: under 16 keep-alive
/// client threads that left 6 to 12 requests a run unanswered, and 35 to 50 of the 64 sent
/// while the server was stopped (crates/ember-cli/tests/cli.rs::serve_drains_what_it_accepted).
async fn connection(
    stream: tokio::net::TcpStream,
    app: axum::Router,
    mut drain: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let Ok((io, peek)) = Watched::new(stream) else {
        return;
    };
    let activity = io.activity.clone();
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let mut served = std::pin::pin!(http.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        _ = served.as_mut() => return,
        _ = drain.wait_for(|draining| *draining) => {}
    }
    let mut tick = tokio::time::interval(DRAIN_POLL);
    loop {
        tokio::select! {
            _ = served.as_mut() => return,
            _ = tick.tick() => {
                if activity.is_idle() && !bytes_waiting(&peek) {
                    served.as_mut().graceful_shutdown();
                    let _ = served.await;
                    return;
                }
            }
        }
    }
}

/// Whether the client has sent bytes the server has not read yet.
fn bytes_waiting(peek: &std::net::TcpStream) -> bool {
    // The socket is non-blocking (tokio's): nothing to read is `WouldBlock`, the client's close
    // is `Ok(0)`.
    matches!(peek.peek(&mut [0u8; 1]), Ok(n) if n > 0)
}

/// A connection's socket that notes what it last did ([`Activity`]).
struct Watched {
    stream: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

/// What a connection's socket last did, for the drain to tell an idle connection from one
/// holding a request.
struct Activity {
    /// Whether the last bytes moved were a request coming in rather than a response going
    /// out: between the two, hyper holds a request, perhaps only part of its head.
    request_in: AtomicBool,
    opened: Instant,
    /// When bytes last went out, in microseconds since `opened`.
    last_out_us: std::sync::atomic::AtomicU64,
}

impl Activity {
    /// Neither holding a request nor answered within `KEEP_ALIVE_GRACE`.
    fn is_idle(&self) -> bool {
        let last_out = std::time::Duration::from_micros(self.last_out_us.load(Ordering::SeqCst));
        !self.request_in.load(Ordering::SeqCst)
            && self.opened.elapsed().saturating_sub(last_out) >= KEEP_ALIVE_GRACE
    }
}

impl Watched {
    /// Wraps `stream`; also returns a second handle on the same socket, to peek at unread bytes
    /// while hyper owns this one.
    fn new(stream: tokio::net::TcpStream) -> std::io::Result<(Self, std::net::TcpStream)> {
        let stream = stream.into_std()?;
        let peek = stream.try_clone()?;
        let watched = Self {
            stream: tokio::net::TcpStream::from_std(stream)?,
            activity: Arc::new(Activity {
                request_in: AtomicBool::new(false),
                opened: Instant::now(),
                last_out_us: 0.into(),
            }),
        };
        Ok((watched, peek))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.request_in.store(true, Ordering::SeqCst);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Watched {
    fn note_write(&self, polled: &Poll<std::io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            let since_opened = self.activity.opened.elapsed().as_micros() as u64;
            self.activity
                .last_out_us
                .store(since_opened, Ordering::SeqCst);
            self.activity.request_in.store(false, Ordering::SeqCst);
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
