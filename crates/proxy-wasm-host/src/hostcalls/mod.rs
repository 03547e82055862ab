//! Every host function, written once, engine-agnostic.
//!
//! The entry points below are generated from [`abi::for_each_host_function!`]: one `pub fn` per
//! row, named as the import, taking a [`HostCx`] and the row's parameters in their
//! pointer-width-neutral [`abi::host_type!`]s, and returning the raw status (or errno) for the
//! guest, or a [`Trap`] that fails the VM. An engine trampoline only converts values and calls
//! the entry. The implementations live beside their siblings in one file per ABI section.

use crate::{HostCx, HostError, HostResult, Trap};

mod buffers;
mod callouts;
mod context;
mod log;
mod maps;
mod metrics;
mod properties;
mod shared;
mod stream;
mod wasi;

#[cfg(test)]
pub(crate) mod testing;

/// The implementations, by import name.
mod imp {
    pub(super) use super::buffers::*;
    pub(super) use super::callouts::*;
    pub(super) use super::context::*;
    pub(super) use super::log::*;
    pub(super) use super::maps::*;
    pub(super) use super::metrics::*;
    pub(super) use super::properties::*;
    pub(super) use super::shared::*;
    pub(super) use super::stream::*;
    pub(super) use super::wasi::*;
}

/// Turns an implementation's result into what the guest receives: 0 for OK, the status or
/// errno otherwise, or the trap. (Public for test-only host functions that engines link.)
#[inline]
pub fn finish(result: HostResult) -> Result<i32, Trap> {
    match result {
        Ok(()) => Ok(0),
        Err(HostError::Status(s)) => Ok(s.raw() as i32),
        Err(HostError::Errno(e)) => Ok(e.raw() as i32),
        Err(HostError::Trap(t)) => Err(t),
    }
}

macro_rules! define_entries {
    ($( { $module:ident, $name:ident, [$($ver:ident)*], ($($arg:ident : $kind:ident),*) -> $ret:ident } )*) => {
        $(
            #[doc = concat!("`", stringify!($module), ".", stringify!($name), "`: see the ABI reference.")]
            #[inline]
            #[allow(clippy::too_many_arguments)] // As many as the ABI function has.
            pub fn $name(cx: &mut dyn HostCx $(, $arg: abi::host_type!($kind))*) -> Result<i32, Trap> {
                if cx.host().trace.is_none() {
                    return finish(imp::$name(cx $(, $arg)*));
                }
                // Every argument widened to u64 (signed ones sign-extended), for the trace.
                let args: &[u64] = &[$($arg as u64),*];
                crate::trace::traced_host_call(cx, stringify!($name), args, |cx| finish(imp::$name(cx $(, $arg)*)))
            }
        )*
    };
}
abi::for_each_host_function!(define_entries);
