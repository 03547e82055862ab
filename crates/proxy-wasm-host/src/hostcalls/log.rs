//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_log(_cx: &mut dyn HostCx, _level: u32, _message_ptr: u64, _message_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_log_level(_cx: &mut dyn HostCx, _return_level: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_current_time_nanoseconds(_cx: &mut dyn HostCx, _return_time: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_set_tick_period_milliseconds(_cx: &mut dyn HostCx, _period: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_get_configuration(_cx: &mut dyn HostCx, _return_ptr: u64, _return_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
