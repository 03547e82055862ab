//! The Proxy-Wasm ABI as data: enums and status codes, the table of every host function and
//! callback of ABI 0.2.1, 0.2.0 and 0.1.0, the serialized header-map codec, and ABI version
//! detection.
//!
//! This crate has no dependencies. Everything that knows a host function's name or signature
//! takes it from [`for_each_host_function!`] and [`for_each_callback!`].

mod codec;
mod enums;
pub mod table;
mod version;

pub use codec::{decode_map, decode_map_lenient, encode_map, encoded_len, MapError, MapLimits, Pairs};
pub use enums::{Action, BufferType, ClockId, Errno, LogLevel, MapType, MetricType, PeerType, Status, StreamType};
pub use table::{
    host_function, host_function_row, AbiVersion, Callback, CallbackInfo, HostFunction, HostFunctionId, HostModule, Kind, Param,
    RestrictedPhase, Versions,
    CALLBACKS, HOST_FUNCTIONS, MEMORY_EXPORT, WASI_MODULES,
};
pub use version::{detect_version, VersionError};
