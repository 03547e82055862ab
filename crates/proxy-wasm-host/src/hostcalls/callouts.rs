//! Placeholder until this family is written: every call answers UNIMPLEMENTED.
use crate::{HostCx, HostResult};

pub fn proxy_get_status(_cx: &mut dyn HostCx, _return_code: u64, _return_message_ptr: u64, _return_message_size: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_http_call(_cx: &mut dyn HostCx, _upstream_ptr: u64, _upstream_size: u64, _headers_ptr: u64, _headers_size: u64, _body_ptr: u64, _body_size: u64, _trailers_ptr: u64, _trailers_size: u64, _timeout_ms: u32, _return_call_id: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_grpc_call(_cx: &mut dyn HostCx, _upstream_ptr: u64, _upstream_size: u64, _service_ptr: u64, _service_size: u64, _method_ptr: u64, _method_size: u64, _metadata_ptr: u64, _metadata_size: u64, _message_ptr: u64, _message_size: u64, _timeout_ms: u32, _return_call_id: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_grpc_stream(_cx: &mut dyn HostCx, _upstream_ptr: u64, _upstream_size: u64, _service_ptr: u64, _service_size: u64, _method_ptr: u64, _method_size: u64, _metadata_ptr: u64, _metadata_size: u64, _return_stream_id: u64) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_grpc_send(_cx: &mut dyn HostCx, _stream_id: u32, _message_ptr: u64, _message_size: u64, _end_stream: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_grpc_cancel(_cx: &mut dyn HostCx, _call_id: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}

pub fn proxy_grpc_close(_cx: &mut dyn HostCx, _call_id: u32) -> HostResult {
    Err(abi::Status::Unimplemented.into())
}
