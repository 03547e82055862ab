//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_get_header_map_size(_cx: &mut dyn HostCx, _map_type: u32, _return_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_header_map_pairs(_cx: &mut dyn HostCx, _map_type: u32, _return_ptr: u64, _return_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_set_header_map_pairs(_cx: &mut dyn HostCx, _map_type: u32, _map_ptr: u64, _map_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_header_map_value(_cx: &mut dyn HostCx, _map_type: u32, _key_ptr: u64, _key_size: u64, _return_ptr: u64, _return_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_add_header_map_value(_cx: &mut dyn HostCx, _map_type: u32, _key_ptr: u64, _key_size: u64, _value_ptr: u64, _value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_replace_header_map_value(_cx: &mut dyn HostCx, _map_type: u32, _key_ptr: u64, _key_size: u64, _value_ptr: u64, _value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_remove_header_map_value(_cx: &mut dyn HostCx, _map_type: u32, _key_ptr: u64, _key_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
