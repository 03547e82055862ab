//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_define_metric(_cx: &mut dyn HostCx, _metric_type: u32, _name_ptr: u64, _name_size: u64, _return_metric_id: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_increment_metric(_cx: &mut dyn HostCx, _metric_id: u32, _delta: i64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_record_metric(_cx: &mut dyn HostCx, _metric_id: u32, _value: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_metric(_cx: &mut dyn HostCx, _metric_id: u32, _return_value: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
