//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_get_shared_data(_cx: &mut dyn HostCx, _key_ptr: u64, _key_size: u64, _return_value_ptr: u64, _return_value_size: u64, _return_cas: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_set_shared_data(_cx: &mut dyn HostCx, _key_ptr: u64, _key_size: u64, _value_ptr: u64, _value_size: u64, _cas: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_register_shared_queue(_cx: &mut dyn HostCx, _name_ptr: u64, _name_size: u64, _return_queue_id: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_resolve_shared_queue(_cx: &mut dyn HostCx, _vm_id_ptr: u64, _vm_id_size: u64, _name_ptr: u64, _name_size: u64, _return_queue_id: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_enqueue_shared_queue(_cx: &mut dyn HostCx, _queue_id: u32, _value_ptr: u64, _value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_dequeue_shared_queue(_cx: &mut dyn HostCx, _queue_id: u32, _return_value_ptr: u64, _return_value_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
