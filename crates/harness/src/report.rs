//! What happened in an exchange, as one JSON object (`pwhost run --json`).

use proxy_wasm_host::{HeaderMap, MetricValue};
use serde_json::{json, Map, Value};

use crate::scripted::Outcome;

/// Bytes as text (invalid UTF-8 replaced).
fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// A header map as a list of `[name, value]` pairs, in order.
fn pairs(map: &HeaderMap) -> Value {
    Value::Array(map.pairs().iter().map(|(k, v)| json!([text(k), text(v)])).collect())
}

/// The outcome as JSON:
/// - `request`, `response`: the last stream's final `headers` and `trailers` (lists of pairs)
///   and `body`;
/// - `connection`: the last TCP connection's final `downstream` and `upstream` data;
/// - `local_reply`: `status`, `details`, `headers`, `body`, `grpc_status`, or null;
/// - `callouts`: each HTTP callout's `upstream`, `headers`, `body`, `trailers`, `timeout_ms`;
/// - `grpc_calls`: each gRPC call's `upstream`, `service`, `method`, `metadata`, `message`;
/// - `logs`: `level`, `message`, `plugin`; `metrics`: name to value (a histogram's samples as
///   a list);
/// - `stats`: every stat of the host ([`PluginHost::stats`](proxy_wasm_host::PluginHost::stats)),
///   each `name`, `labels` (an object) and `value`, in the order rendered;
/// - `trap`: the engine's message, or null;
/// - `callbacks`: `callback`, `context_id`, `args`, and `result` (a number) or `trap`;
/// - `actions`: each stream step's index (from 0) and the action the plugin answered;
/// - `error`: null; `pwhost run` sets it to a line saying why when the plugin was refused or
///   did not start (the other keys then hold what happened until then).
pub fn outcome_json(out: &Outcome) -> Value {
    let s = &out.stream;
    let metrics: Map<String, Value> = out
        .metrics
        .iter()
        .map(|(name, v)| {
            let v = match v {
                MetricValue::Counter(c) => json!(c),
                MetricValue::Gauge(g) => json!(g),
                MetricValue::Histogram(samples) => json!(samples),
            };
            (name.clone(), v)
        })
        .collect();
    json!({
        "request": {"headers": pairs(&s.request_headers), "body": text(&s.request_body), "trailers": pairs(&s.request_trailers)},
        "response": {"headers": pairs(&s.response_headers), "body": text(&s.response_body), "trailers": pairs(&s.response_trailers)},
        "connection": {"downstream": text(&s.downstream_data), "upstream": text(&s.upstream_data)},
        "local_reply": out.local_reply.as_ref().map(|r| json!({
            "status": r.status,
            "details": r.details,
            "headers": pairs(&r.headers),
            "body": text(&r.body),
            "grpc_status": r.grpc_status,
        })),
        "callouts": out.callouts.iter().map(|c| json!({
            "upstream": c.upstream,
            "headers": pairs(&c.headers),
            "body": text(&c.body),
            "trailers": pairs(&c.trailers),
            "timeout_ms": c.timeout_ms,
        })).collect::<Vec<_>>(),
        "grpc_calls": out.grpc_calls.iter().map(|c| json!({
            "upstream": c.upstream,
            "service": c.service,
            "method": c.method,
            "metadata": pairs(&c.metadata),
            "message": c.message.as_deref().map(text),
        })).collect::<Vec<_>>(),
        "logs": out.logs.iter().map(|l| json!({"level": l.level.name(), "message": l.message, "plugin": l.plugin})).collect::<Vec<_>>(),
        "metrics": metrics,
        "stats": out.stats.iter().map(|s| json!({
            "name": s.name,
            "labels": s.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<String, Value>>(),
            "value": s.value,
        })).collect::<Vec<_>>(),
        "trap": out.trap,
        "callbacks": out.callbacks.iter().map(|c| {
            let mut v = json!({"callback": c.callback.name(), "context_id": c.context_id, "args": c.args});
            match &c.result {
                Some(Ok(r)) => v["result"] = json!(r),
                Some(Err(t)) => v["trap"] = json!(t),
                None => {}
            }
            v
        }).collect::<Vec<_>>(),
        "actions": out.actions.iter().map(|(i, a)| json!({"step": i, "action": a.name()})).collect::<Vec<_>>(),
        "error": null,
    })
}
