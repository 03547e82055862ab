//! What the security policy refused, counted for the embedder's stats, and the slow paths that
//! refuse: a host function or callback outside a VM's [`CapabilityRestriction`].

use std::sync::atomic::{AtomicU64, Ordering};

use abi::{Callback, HostFunctionId, Kind, LogLevel, Status};

use crate::{CapabilityRestriction, VmHost};

/// Counters of refusals, shared by every VM of a [`PluginHost`](crate::PluginHost) (through its
/// [`Services`](crate::Services)). Read them with [`snapshot`](Self::snapshot).
#[derive(Debug, Default)]
pub struct SecurityCounters {
    host_calls_denied: AtomicU64,
    callbacks_skipped: AtomicU64,
    callouts_refused: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecurityStats {
    /// Calls of host functions a capability restriction does not allow.
    pub host_calls_denied: u64,
    /// Callbacks the host did not call because a capability restriction does not allow them.
    pub callbacks_skipped: u64,
    /// HTTP and gRPC callouts refused because their upstream is not on the plugin's list.
    pub callouts_refused: u64,
}

impl SecurityCounters {
    /// The counts now.
    pub fn snapshot(&self) -> SecurityStats {
        SecurityStats {
            host_calls_denied: self.host_calls_denied.load(Ordering::Relaxed),
            callbacks_skipped: self.callbacks_skipped.load(Ordering::Relaxed),
            callouts_refused: self.callouts_refused.load(Ordering::Relaxed),
        }
    }
}

/// WASI's `NOTCAPABLE` errno, what the reference host's WASI stubs answer.
const ENOTCAPABLE: i32 = 76;

/// A call of host function `id` that the VM's [`CapabilityRestriction`] does not allow: logs
/// the first one per function and VM at ERROR, counts it, and gives what the guest receives as
/// proxy-wasm-cpp-host's stubs answer (`exports.h` `_CREATE_PROXY_WASM_STUB`,
/// `_CREATE_WASI_STUB`): `INTERNAL_FAILURE` for a status, errno `NOTCAPABLE` (76) for a WASI
/// errno, 0 (no effect) for a row without a result.
#[cold]
#[inline(never)]
pub(crate) fn deny_host_call(host: &mut VmHost, id: HostFunctionId) -> i32 {
    host.services.security().host_calls_denied.fetch_add(1, Ordering::Relaxed);
    if !host.denials_logged.0.contains_row(id.row()) {
        host.denials_logged.0.insert_row(id.row());
        let message = format!(
            "call to `{}` refused: it is not among the VM's allowed capabilities{} (further calls are refused silently)",
            id.info().name,
            allowed_list(&host.capabilities)
        );
        let plugin = host.plugin().cloned();
        host.embedder.log(plugin.as_deref(), LogLevel::Error, &message);
    }
    match id.info().result {
        Kind::Status => Status::InternalFailure.raw() as i32,
        Kind::Errno => ENOTCAPABLE,
        _ => 0,
    }
}

/// Notes that the host skips `callback` on context `context_id` because the VM's
/// [`CapabilityRestriction`] does not allow it: counted, and logged the first time per VM.
#[cold]
#[inline(never)]
pub(crate) fn skip_callback(host: &mut VmHost, callback: Callback, context_id: u32) {
    host.services.security().callbacks_skipped.fetch_add(1, Ordering::Relaxed);
    if !host.denials_logged.1.contains(callback) {
        host.denials_logged.1.insert(callback);
        let message = format!(
            "callback `{callback}` not called: it is not among the VM's allowed capabilities{} (further skips are silent)",
            allowed_list(&host.capabilities)
        );
        let plugin = host.contexts.get(&context_id).and_then(|c| host.contexts.get(&c.root)).and_then(|r| match &r.kind {
            crate::host::ContextKind::Root(r) => Some(r.plugin.clone()),
            crate::host::ContextKind::Stream(_) => None,
        });
        host.embedder.log(plugin.as_deref(), LogLevel::Error, &message);
    }
}

fn allowed_list(capabilities: &CapabilityRestriction) -> String {
    format!(" ({})", capabilities.names().join(", "))
}
