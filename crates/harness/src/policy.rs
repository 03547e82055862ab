//! The security keys of an exchange's `plugin` section: `capability_restriction_config`,
//! `sanitize`, `allowed_upstreams` and `code`, each mistake naming its key.
//!
//! ```yaml
//! plugin:
//!   capability_restriction_config:          # Envoy's field; default: nothing restricted
//!     allowed_capabilities:                 # a mapping (Envoy's form; values empty) or a list
//!       proxy_log: {}
//!       http_callouts: {}                   # a group (see the README)
//!   sanitize:                               # ours: what the plugin may not read
//!     preset: credentials                   # authorization, cookie, proxy-authorization
//!     hidden_headers: [x-api-key]
//!     hidden_properties: [source.address, source.port]
//!     callout_responses: true               # hide them in callout answers and gRPC metadata too
//!   allowed_upstreams: [auth]               # ours: callouts only to these
//!   code:                                   # Envoy's AsyncDataSource, in vm_config.code
//!     local: {filename: plugin.wasm}        # or {inline_string: ...}, {inline_bytes: <base64>}
//!     sha256: <64 hex digits>               # ours for local code: the bytes must have it
//!     # or
//!     remote:
//!       http_uri: {uri: "https://...", timeout: 5s}
//!       sha256: <64 hex digits>             # required
//!       retry_policy: {num_retries: 2, retry_back_off: {base_interval: 0.5s, max_interval: 5s}}
//!     signature:                            # ours: an Ed25519 signature the module must carry
//!       public_key: <64 hex digits>         # or public_key_file: key.pub
//!       detached: plugin.wasm.sig           # else embedded in the module
//! ```
//!
//! Paths (`filename`, `detached`) are kept as written; [`resolve_paths`] makes them relative to
//! the exchange file's directory. The public key file is read while parsing: from the
//! exchange's directory with [`parse_in`](crate::exchange::parse_in).

use std::path::Path;
use std::time::Duration;

use code_source::{CodeSpec, Digest, PublicKey, Remote, RetryPolicy, SignatureCheck, Source};
use proxy_wasm_host::{CapabilityRestriction, PluginPolicy, CREDENTIAL_HEADERS};
use serde_norway::{Mapping, Value};

use crate::exchange::{bytes, err, key_str, show, text, ExchangeError, Result};

/// The security keys of a plugin section.
pub(crate) const KEYS: &[&str] = &["capability_restriction_config", "sanitize", "allowed_upstreams", "code"];

fn mapping<'a>(value: &'a Value, at: &str) -> Result<&'a Mapping> {
    match value {
        Value::Mapping(m) => Ok(m),
        other => err(format!("{at} must be a mapping, found {}", show(other))),
    }
}

fn only_keys(m: &Mapping, at: &str, keys: &[&str]) -> Result<()> {
    for key in m.keys() {
        let key = key_str(key)?;
        if !keys.contains(&key) {
            return err(format!("unknown key `{key}` in {at}; it has {}", keys.join(", ")));
        }
    }
    Ok(())
}

fn list_of_text(value: &Value, at: &str) -> Result<Vec<String>> {
    let Value::Sequence(items) = value else { return err(format!("{at} must be a list, found {}", show(value))) };
    items.iter().enumerate().map(|(i, v)| text(v, &format!("{at}[{i}]"))).collect()
}

/// `capability_restriction_config: {allowed_capabilities: ...}`.
pub(crate) fn capabilities(value: &Value, at: &str) -> Result<CapabilityRestriction> {
    let m = mapping(value, at)?;
    only_keys(m, at, &["allowed_capabilities"])?;
    let Some(allowed) = m.get("allowed_capabilities") else { return Ok(CapabilityRestriction::unrestricted()) };
    let at = format!("{}.allowed_capabilities`", at.trim_end_matches('`'));
    let names: Vec<String> = match allowed {
        Value::Null => Vec::new(),
        Value::Sequence(_) => list_of_text(allowed, &at)?,
        Value::Mapping(map) => {
            let mut names = Vec::new();
            for (k, v) in map {
                let name = text(k, &at)?;
                // Envoy's SanitizationConfig has no fields yet: the value must be empty.
                match v {
                    Value::Null => {}
                    Value::Mapping(inner) if inner.is_empty() => {}
                    other => {
                        return err(format!("{at}: the value of `{name}` must be empty ({{}}), found {}", show(other)))
                    }
                }
                names.push(name);
            }
            names
        }
        other => return err(format!("{at} must be a mapping of names or a list, found {}", show(other))),
    };
    CapabilityRestriction::allow(&names).map_err(|e| ExchangeError(format!("{at}: {e}")))
}

/// `sanitize: {preset, hidden_headers, hidden_properties, callout_responses}` into `policy`.
pub(crate) fn sanitize(value: &Value, at: &str, mut policy: PluginPolicy) -> Result<PluginPolicy> {
    let m = mapping(value, at)?;
    only_keys(m, at, &["preset", "hidden_headers", "hidden_properties", "callout_responses"])?;
    let key_at = |key: &str| format!("{}.{key}`", at.trim_end_matches('`'));
    if let Some(p) = m.get("preset") {
        match text(p, &key_at("preset"))?.as_str() {
            "credentials" => policy = policy.hide_headers(CREDENTIAL_HEADERS),
            other => return err(format!("{}: unknown preset `{other}`; the presets are: credentials", key_at("preset"))),
        }
    }
    if let Some(h) = m.get("hidden_headers") {
        let at = key_at("hidden_headers");
        let names = list_of_text(h, &at)?;
        for name in &names {
            if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return err(format!("{at}: `{name}` is not a header name"));
            }
        }
        policy = policy.hide_headers(names);
    }
    if let Some(p) = m.get("hidden_properties") {
        let at = key_at("hidden_properties");
        let paths = list_of_text(p, &at)?;
        for path in &paths {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return err(format!("{at}: `{path}` is not a property path (segments joined by `.`)"));
            }
        }
        policy = policy.hide_properties(paths);
    }
    if let Some(c) = m.get("callout_responses") {
        policy.sanitize_callout_responses =
            c.as_bool().ok_or_else(|| ExchangeError(format!("{} must be true or false", key_at("callout_responses"))))?;
    }
    Ok(policy)
}

/// `allowed_upstreams: [names]` into `policy`.
pub(crate) fn allowed_upstreams(value: &Value, at: &str, policy: PluginPolicy) -> Result<PluginPolicy> {
    Ok(policy.allow_upstreams(list_of_text(value, at)?))
}

/// A duration as protobuf's JSON writes it: `5s`, `0.25s`, or `250ms`.
fn duration(value: &Value, at: &str) -> Result<Duration> {
    let t = text(value, at)?;
    let bad = || ExchangeError(format!("{at}: `{t}` is not a duration (write it as 5s, 0.5s or 500ms)"));
    let (number, scale) = match t.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (t.strip_suffix('s').ok_or_else(bad)?, 1.0),
    };
    let n: f64 = number.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 || n * scale > 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(n * scale))
}

fn sha256(value: &Value, at: &str) -> Result<Digest> {
    Digest::parse(&text(value, at)?).map_err(|e| ExchangeError(format!("{at}: {e}")))
}

/// `code: {local | remote, sha256, signature}`; a relative `public_key_file` is read from
/// `dir` when given.
pub(crate) fn code(value: &Value, at: &str, dir: Option<&Path>) -> Result<CodeSpec> {
    let m = mapping(value, at)?;
    only_keys(m, at, &["local", "remote", "sha256", "signature"])?;
    let key_at = |key: &str| format!("{}.{key}`", at.trim_end_matches('`'));
    let mut spec = match (m.get("local"), m.get("remote")) {
        (Some(local), None) => {
            let at = key_at("local");
            let l = mapping(local, &at)?;
            only_keys(l, &at, &["filename", "inline_bytes", "inline_string"])?;
            if l.len() != 1 {
                return err(format!("{at} takes exactly one of filename, inline_bytes, inline_string"));
            }
            let source = if let Some(f) = l.get("filename") {
                Source::File(text(f, &format!("{}.filename`", at.trim_end_matches('`')))?.into())
            } else if let Some(b) = l.get("inline_bytes") {
                let at = format!("{}.inline_bytes`", at.trim_end_matches('`'));
                let encoded = text(b, &at)?;
                Source::Inline(bytes(&Value::Mapping(Mapping::from_iter([("base64".into(), encoded.into())])), &at)?)
            } else {
                let s = l.get("inline_string").map(|s| bytes(s, &format!("{}.inline_string`", at.trim_end_matches('`'))));
                Source::Inline(s.transpose()?.unwrap_or_default())
            };
            CodeSpec { source, sha256: None, signature: None }
        }
        (None, Some(remote)) => {
            let at = key_at("remote");
            let r = mapping(remote, &at)?;
            only_keys(r, &at, &["http_uri", "sha256", "retry_policy"])?;
            let sub = |key: &str| format!("{}.{key}`", at.trim_end_matches('`'));
            let http = mapping(r.get("http_uri").ok_or_else(|| ExchangeError(format!("{at} needs `http_uri`")))?, &sub("http_uri"))?;
            only_keys(http, &sub("http_uri"), &["uri", "cluster", "timeout"])?;
            let uri = text(http.get("uri").ok_or_else(|| ExchangeError(format!("{} needs `uri`", sub("http_uri"))))?, &sub("http_uri.uri"))?;
            let timeout = match http.get("timeout") {
                Some(t) => duration(t, &sub("http_uri.timeout"))?,
                None => Duration::from_secs(5),
            };
            let mut retry = RetryPolicy::default();
            if let Some(p) = r.get("retry_policy") {
                let pat = sub("retry_policy");
                let p = mapping(p, &pat)?;
                only_keys(p, &pat, &["num_retries", "retry_back_off"])?;
                if let Some(n) = p.get("num_retries") {
                    retry.num_retries = n
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| ExchangeError(format!("{}.num_retries` must be a small non-negative integer", pat.trim_end_matches('`'))))?;
                }
                if let Some(b) = p.get("retry_back_off") {
                    let bat = format!("{}.retry_back_off`", pat.trim_end_matches('`'));
                    let b = mapping(b, &bat)?;
                    only_keys(b, &bat, &["base_interval", "max_interval"])?;
                    if let Some(v) = b.get("base_interval") {
                        retry.base_interval = duration(v, &format!("{}.base_interval`", bat.trim_end_matches('`')))?;
                        retry.max_interval = retry.base_interval.saturating_mul(10);
                    }
                    if let Some(v) = b.get("max_interval") {
                        retry.max_interval = duration(v, &format!("{}.max_interval`", bat.trim_end_matches('`')))?;
                    }
                }
            }
            let sha = match r.get("sha256") {
                Some(s) => sha256(s, &sub("sha256"))?,
                None => return err(format!("{at} needs `sha256`: remote code is only run when its SHA-256 is known")),
            };
            CodeSpec { source: Source::Remote(Remote { uri, timeout, retry }), sha256: Some(sha), signature: None }
        }
        (Some(_), Some(_)) => return err(format!("{at} takes `local` or `remote`, not both")),
        (None, None) => return err(format!("{at} needs `local` or `remote`")),
    };
    if let Some(s) = m.get("sha256") {
        if spec.sha256.is_some() {
            return err(format!("{at}: the sha256 of remote code goes in `remote.sha256`"));
        }
        spec.sha256 = Some(sha256(s, &key_at("sha256"))?);
    }
    if let Some(s) = m.get("signature") {
        let sat = key_at("signature");
        let s = mapping(s, &sat)?;
        only_keys(s, &sat, &["public_key", "public_key_file", "detached"])?;
        let sub = |key: &str| format!("{}.{key}`", sat.trim_end_matches('`'));
        let public_key = match (s.get("public_key"), s.get("public_key_file")) {
            (Some(k), None) => {
                PublicKey::from_hex(&text(k, &sub("public_key"))?).map_err(|e| ExchangeError(format!("{}: {e}", sub("public_key"))))?
            }
            (None, Some(f)) => {
                let path = std::path::PathBuf::from(text(f, &sub("public_key_file"))?);
                let path = match dir {
                    Some(dir) if path.is_relative() => dir.join(path),
                    _ => path,
                };
                code_source::read_public_key(&path).map_err(|e| ExchangeError(format!("{}: {e}", sub("public_key_file"))))?
            }
            _ => return err(format!("{sat} takes one of public_key, public_key_file")),
        };
        let detached = s.get("detached").map(|d| text(d, &sub("detached")).map(Into::into)).transpose()?;
        spec.signature = Some(SignatureCheck { public_key, detached });
    }
    Ok(spec)
}

/// Makes the relative paths of `spec` (a local file, a detached signature) relative to `dir`.
pub fn resolve_paths(spec: &mut CodeSpec, dir: &Path) {
    if let Source::File(path) = &mut spec.source {
        if path.is_relative() {
            *path = dir.join(&*path);
        }
    }
    if let Some(SignatureCheck { detached: Some(path), .. }) = &mut spec.signature {
        if path.is_relative() {
            *path = dir.join(&*path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::parse;

    fn plugin(yaml: &str) -> std::result::Result<crate::Exchange, String> {
        parse(&format!("plugin:\n{yaml}\nsteps: []\n")).map_err(|e| e.to_string())
    }

    #[test]
    fn capabilities_in_envoys_form_or_as_a_list() {
        let e = plugin("  capability_restriction_config:\n    allowed_capabilities: {proxy_log: {}, http_callouts: null}").unwrap();
        assert_eq!(e.vm.capabilities.names(), ["http_callouts", "proxy_log"]);
        let e = plugin("  capability_restriction_config: {allowed_capabilities: [proxy_on_request_headers]}").unwrap();
        assert!(e.vm.capabilities.is_restricted());
        let e = plugin("  capability_restriction_config: {allowed_capabilities: {}}").unwrap();
        assert!(!e.vm.capabilities.is_restricted(), "empty: nothing restricted, as in Envoy");
    }

    #[test]
    fn bad_capabilities_name_the_key_and_the_name() {
        for (yaml, expected) in [
            (
                "  capability_restriction_config: {allowed_capabilities: [proxy_htp_call]}",
                "`plugin.capability_restriction_config.allowed_capabilities`: unknown capability `proxy_htp_call`: not a host function, callback or group of this host (did you mean `proxy_http_call`?)",
            ),
            (
                "  capability_restriction_config: {allowed_capabilities: [compression]}",
                "`plugin.capability_restriction_config.allowed_capabilities`: unknown capability `compression`",
            ),
            (
                "  capability_restriction_config: {allowed_capabilities: [\"Proxy Log\"]}",
                "capability name \"Proxy Log\" is malformed",
            ),
            (
                "  capability_restriction_config: {allowed_capabilities: {proxy_log: {argument_list: [a]}}}",
                "the value of `proxy_log` must be empty ({}), found",
            ),
            ("  capability_restriction_config: {allowed: [proxy_log]}", "unknown key `allowed` in `plugin.capability_restriction_config`"),
        ] {
            let e = plugin(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}\n{e}");
        }
    }

    #[test]
    fn sanitize_and_upstreams() {
        let e = plugin(
            "  sanitize: {preset: credentials, hidden_headers: [X-Api-Key], hidden_properties: [source.address], callout_responses: true}\n  allowed_upstreams: [auth]",
        )
        .unwrap();
        let p = &e.plugin.policy;
        assert!(p.hides_header(b"cookie") && p.hides_header(b"x-api-key"));
        assert!(p.hides_property(b"source\0address"));
        assert!(p.sanitize_callout_responses);
        assert!(p.allows_upstream("auth") && !p.allows_upstream("other"));
        for (yaml, expected) in [
            ("  sanitize: {preset: secrets}", "`plugin.sanitize.preset`: unknown preset `secrets`; the presets are: credentials"),
            ("  sanitize: {hidden_headers: [\"\"]}", "`plugin.sanitize.hidden_headers`: `` is not a header name"),
            ("  sanitize: {hidden_properties: [source..port]}", "`source..port` is not a property path"),
            ("  sanitize: {hide: [a]}", "unknown key `hide` in `plugin.sanitize`"),
            ("  allowed_upstreams: auth", "`plugin.allowed_upstreams` must be a list"),
        ] {
            let e = plugin(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}\n{e}");
        }
    }

    #[test]
    fn code_sources_in_envoys_shape() {
        let sha = "ab".repeat(32);
        let e = plugin(&format!(
            "  code:\n    remote:\n      http_uri: {{uri: \"http://127.0.0.1:1/p.wasm\", timeout: 250ms}}\n      sha256: {sha}\n      retry_policy: {{num_retries: 3, retry_back_off: {{base_interval: 0.1s}}}}"
        ))
        .unwrap();
        let code = e.code.unwrap();
        let Source::Remote(r) = &code.source else { panic!() };
        assert_eq!(r.timeout, Duration::from_millis(250));
        assert_eq!(r.retry, RetryPolicy { num_retries: 3, base_interval: Duration::from_millis(100), max_interval: Duration::from_secs(1) });
        assert_eq!(code.sha256.unwrap().hex(), sha);
        let e = plugin("  code: {local: {inline_string: \"(module)\"}, sha256: 0000000000000000000000000000000000000000000000000000000000000000}").unwrap();
        assert_eq!(e.code.unwrap().source, Source::Inline(b"(module)".to_vec()));
        let e = plugin("  code: {local: {inline_bytes: AGFzbQ==}}").unwrap();
        assert_eq!(e.code.unwrap().source, Source::Inline(b"\0asm".to_vec()));
    }

    #[test]
    fn bad_code_sources_name_the_key() {
        let sha = "ab".repeat(32);
        for (yaml, expected) in [
            ("  code: {remote: {http_uri: {uri: \"http://x/p.wasm\"}}}", "`plugin.code.remote` needs `sha256`: remote code is only run when its SHA-256 is known"),
            ("  code: {remote: {http_uri: {uri: \"http://x/\"}, sha256: abc}}", "`plugin.code.remote.sha256`: sha256 \"abc\" is not a SHA-256: it has 3 characters"),
            (&format!("  code: {{remote: {{http_uri: {{uri: x, timeout: 5}}, sha256: {sha}}}}}"), "`plugin.code.remote.http_uri.timeout`: `5` is not a duration"),
            ("  code: {local: {filename: a, inline_string: b}}", "`plugin.code.local` takes exactly one of filename, inline_bytes, inline_string"),
            ("  code: {}", "`plugin.code` needs `local` or `remote`"),
            ("  code: {local: {filename: a}, signature: {public_key: abcd}}", "`plugin.code.signature.public_key`: bad key: expected 64 hexadecimal digits, found 4 characters"),
            ("  code: {local: {filename: a}, signature: {public_key_file: /nonexistent/k.pub}}", "`plugin.code.signature.public_key_file`: cannot read /nonexistent/k.pub"),
        ] {
            let e = plugin(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}\n{e}");
        }
        let e = parse("others: [{code: {local: {filename: a}}}]\nsteps: []").unwrap_err().to_string();
        assert!(e.contains("`others[0].code`: the others run the first plugin's module; `code` goes in `plugin`"), "{e}");
    }
}
