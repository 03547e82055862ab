//! The WAMR engine for `proxy-wasm-host` (being written): so far the safe wrapper of WAMR's C
//! API it is built on ([`wamr`]).

pub mod wamr;
