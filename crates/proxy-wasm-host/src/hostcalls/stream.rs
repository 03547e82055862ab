//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_continue_stream(_cx: &mut dyn HostCx, _stream_type: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_close_stream(_cx: &mut dyn HostCx, _stream_type: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_continue_request(_cx: &mut dyn HostCx) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_continue_response(_cx: &mut dyn HostCx) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_clear_route_cache(_cx: &mut dyn HostCx) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_send_local_response(_cx: &mut dyn HostCx, _status_code: u32, _details_ptr: u64, _details_size: u64, _body_ptr: u64, _body_size: u64, _headers_ptr: u64, _headers_size: u64, _grpc_status: i32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
