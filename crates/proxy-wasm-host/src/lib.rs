//! The engine-agnostic Proxy-Wasm host.
//!
//! - [`engine`]: the engine SDK: [`Engine`], [`Module`], [`Instance`], the narrow interface an
//!   engine crate implements, and what the host gives it (checks, the raw host-call entry, the
//!   deadline watchdog).
//! - [`hostcalls`]: every host function of ABI 0.2.1, 0.2.0 and 0.1.0 and the WASI subset,
//!   written once; engines link them from the ABI table.
//! - [`Vm`], [`PluginHost`]: the plugin, VM and context lifecycle, fault handling.
//! - [`Embedder`], [`Stream`]: what a proxy implements; [`MemoryStream`] is an in-memory stream.
//! - [`Services`]: shared data, queues, metrics and foreign functions shared across VMs.
//! - [`policy`]: what happens when a plugin fails (failure policy, reload backoff, crash-loop
//!   limit), the VM models and the clock the policy reads; the stats
//!   ([`PluginHost::render_stats`]).
//! - [`CapabilityRestriction`]: which host functions and callbacks a VM may use.

pub use abi::{self, BufferType, Callback, LogLevel, MapType, Status, StreamType};

mod cache;
pub mod capabilities;
mod embedder;
pub mod engine;
mod error;
pub mod foreign;
mod headers;
mod host;
mod id_table;
pub mod hostcalls;
mod memory;
mod plugin;
pub mod policy;
mod security;
mod services;
mod stats;
mod trace;
mod vm;

pub use cache::PrecompiledCache;
pub use capabilities::{group_names, CallbackSet, CapabilityError, CapabilityRestriction, HostSet, GROUPS, WASI_GROUP};
pub use embedder::{
    DefaultEmbedder, Embedder, GrpcCall, HttpCall, LocalReply, MemoryStream, PluginInfo, PropertyCx, Stream,
    StreamEffect, VmToken,
};
pub use engine::{Capabilities, Engine, Export, ExternKind, Import, Instance, Interrupt, Limits, Module};
pub use error::{Error, Trap, TrapKind};
pub use headers::HeaderMap;
pub use host::{VmHost, VmHostConfig};
pub use memory::{read_vec, return_bytes, GuestMemory, HostCx, HostError, HostResult, WordSize};
pub use security::{PluginPolicy, SecurityCounters, SecurityStats, CREDENTIAL_HEADERS};
pub use services::{ForeignCx, ForeignFunction, Mailbox, MetricValue, Notification, Services};
pub use plugin::{module_binary, validate, CompiledModule, PluginHost, DEFAULT_CALLBACK_TIMING, PluginVm, RootId, StreamRef, VmConfig, WorkerVm};
pub use trace::{quote, quote_map, quote_whole, trap_text, CallbackRecord, Trace, ALLOC};
pub use vm::{vm_failed_reply, Action, HttpCallResponse, Vm};
pub use policy::{
    Backoff, Clock, CrashLoop, FailureKind, FailurePolicy, ManualClock, ReloadConfig, SystemClock, VmModel,
};
pub use stats::StatSample;
