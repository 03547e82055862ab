//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_get_property(_cx: &mut dyn HostCx, _path_ptr: u64, _path_size: u64, _return_value_ptr: u64, _return_value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_set_property(_cx: &mut dyn HostCx, _path_ptr: u64, _path_size: u64, _value_ptr: u64, _value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
