//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_get_buffer_bytes(_cx: &mut dyn HostCx, _buffer_type: u32, _start: u64, _max_size: u64, _return_ptr: u64, _return_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_set_buffer_bytes(_cx: &mut dyn HostCx, _buffer_type: u32, _start: u64, _size: u64, _value_ptr: u64, _value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_buffer_status(_cx: &mut dyn HostCx, _buffer_type: u32, _return_size: u64, _return_flags: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
