//! Which host functions and callbacks a set of transcripts exercises, read from the
//! transcripts themselves: a host call or callback is a line that starts with its name and
//! `(`. A callback row is told from its namesakes of other ABI versions by its parameter names
//! (`proxy_on_request_headers` has `end_of_stream` from 0.2.0 on). Transcripts name the guest
//! allocator `alloc` whichever export it is, so the caller says which one the case's guest
//! exports.

use std::collections::BTreeSet;

use proxy_wasm_host::abi::{Callback, CALLBACKS, HOST_FUNCTIONS};
use proxy_wasm_host::ALLOC;

/// What the transcripts exercise and what the ABI table has that they do not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Host functions called at least once, by name.
    pub host_functions: BTreeSet<&'static str>,
    /// Callback rows called at least once, by index in [`CALLBACKS`].
    pub callbacks: BTreeSet<usize>,
}

impl Coverage {
    /// Reads every line of `transcript`; its `alloc(` lines count for `allocator`, the
    /// allocator export of the guest that produced it.
    pub fn add(&mut self, transcript: &str, allocator: Option<Callback>) {
        for line in transcript.lines() {
            let line = line.trim_start();
            let Some((name, rest)) = line.split_once('(') else { continue };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            if name == ALLOC {
                if let Some(allocator) = allocator {
                    self.callbacks.insert(allocator as usize);
                }
                continue;
            }
            if let Some(f) = HOST_FUNCTIONS.iter().find(|f| f.name == name) {
                self.host_functions.insert(f.name);
                continue;
            }
            let args = rest.split_once(')').map_or("", |(a, _)| a);
            let params: Vec<&str> =
                args.split(", ").filter_map(|a| a.split_once('=').map(|(n, _)| n)).collect();
            if let Some(i) = CALLBACKS
                .iter()
                .position(|c| c.name == name && c.params.iter().map(|p| p.name).eq(params.iter().copied()))
            {
                self.callbacks.insert(i);
            }
        }
    }

    /// What no transcript exercised: host functions by name, callbacks by name and
    /// parameters, each with the ABI versions that have it.
    pub fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in HOST_FUNCTIONS {
            if !self.host_functions.contains(f.name) {
                out.push(format!("host function {}", f.name));
            }
        }
        for (i, c) in CALLBACKS.iter().enumerate() {
            if !self.callbacks.contains(&i) {
                let params: Vec<&str> = c.params.iter().map(|p| p.name).collect();
                let versions: Vec<&str> = c.versions.iter().map(|v| v.as_str()).collect();
                out.push(format!("callback {}({}) of ABI {}", c.name, params.join(", "), versions.join("/")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_host_calls_and_callback_rows() {
        let mut c = Coverage::default();
        c.add(
            "> request_headers {}\n\
             proxy_on_request_headers(context_id=2, num_headers=1)\n\
             \x20 proxy_log(level=INFO, message=\"a(b\") -> OK\n\
             \x20 alloc(size=3) -> ok\n\
             proxy_on_log(context_id=2)\n\
             _initialize()\n",
            Some(Callback::Malloc),
        );
        assert!(c.host_functions.contains("proxy_log"));
        assert_eq!(c.host_functions.len(), 1);
        let called: Vec<Callback> = c.callbacks.iter().map(|i| CALLBACKS[*i].callback).collect();
        assert_eq!(
            called,
            [Callback::Initialize, Callback::Malloc, Callback::OnRequestHeadersV010, Callback::OnLog]
        );
        let missing = c.missing();
        assert!(missing.contains(&"host function proxy_get_log_level".to_string()));
        assert!(missing.contains(
            &"callback proxy_on_request_headers(context_id, num_headers, end_of_stream) of ABI 0.2.0/0.2.1".to_string()
        ));
        assert!(!missing.iter().any(|m| m.starts_with("callback proxy_on_log(")));
    }
}
