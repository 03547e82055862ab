//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_set_effective_context(_cx: &mut dyn HostCx, _context_id: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_done(_cx: &mut dyn HostCx) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_call_foreign_function(_cx: &mut dyn HostCx, _name_ptr: u64, _name_size: u64, _args_ptr: u64, _args_size: u64, _return_results_ptr: u64, _return_results_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
