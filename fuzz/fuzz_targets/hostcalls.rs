//! Every host function through the raw host-call entry (`call_row`), on arbitrary guest memory,
//! arguments, callback, context, stream phase, call data, word size, allocator behaviour,
//! capability restriction and security policy (hidden headers and properties, callout answers
//! sanitised or not, an upstream allow-list).
//!
//! The invariant: never a panic (libFuzzer reports one as a crash) and never an out-of-bounds
//! access (AddressSanitizer reports one); every call answers a status (or errno, or the plain
//! value of an `i32` row) or a trap.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use abi::{AbiVersion, Errno, Kind, Status, CALLBACKS, HOST_FUNCTIONS};
use proxy_wasm_host::hostcalls::call_row;
use proxy_wasm_host::hostcalls::testing::{TestCx, HEAP, MEM};
use proxy_wasm_host::{CapabilityRestriction, PluginPolicy, WordSize, CREDENTIAL_HEADERS};

/// A pointer or size as a fuzzer picks it: mostly inside memory, sometimes at its edges or
/// anywhere.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Arg {
    Low(u16),
    FromEnd(u16),
    Small(u8),
    Any(u64),
}

impl Arg {
    fn value(self) -> u64 {
        match self {
            Arg::Low(v) => u64::from(v),
            Arg::FromEnd(v) => MEM.wrapping_sub(u64::from(v)),
            Arg::Small(v) => u64::from(v),
            Arg::Any(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Alloc {
    Bump,
    Answer(Arg),
    Trap,
}

#[derive(Arbitrary, Debug)]
struct Call {
    row: u8,
    args: [Arg; 12],
    /// Pass one argument too few or too many now and then.
    wrong_count: Option<bool>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    abi: u8,
    word64: bool,
    callback: u8,
    context: u8,
    phase: u16,
    data: u8,
    alloc: Alloc,
    /// Restrict the VM to these rows (none: unrestricted).
    allowed: Vec<u8>,
    /// The plugin's policy, bit by bit: hide the credentials preset and `x-a`, sanitise
    /// callout answers, hide `source.address` and `request`, allow callouts to `auth` only.
    policy: u8,
    /// Written at the start of memory.
    memory: Vec<u8>,
    calls: Vec<Call>,
}

fuzz_target!(|input: Input| {
    let abi = AbiVersion::ALL[usize::from(input.abi) % AbiVersion::ALL.len()];
    let mut cx = TestCx::with_version(abi);
    cx.word = if input.word64 { WordSize::W64 } else { WordSize::W32 };
    let callback = CALLBACKS[usize::from(input.callback) % CALLBACKS.len()].callback;
    cx.arrange(callback, u32::from(input.context % 5), input.phase, input.data);
    if !input.allowed.is_empty() {
        let names = input.allowed.iter().map(|r| HOST_FUNCTIONS[usize::from(*r) % HOST_FUNCTIONS.len()].name);
        cx.restrict(CapabilityRestriction::allow(names).expect("table names are capabilities"));
    }
    if input.policy != 0 {
        let mut policy = PluginPolicy::default();
        if input.policy & 1 != 0 {
            policy = policy.hide_headers(CREDENTIAL_HEADERS).hide_headers(["x-a"]);
        }
        policy.sanitize_callout_responses = input.policy & 2 != 0;
        if input.policy & 4 != 0 {
            policy = policy.hide_properties(["source.address", "request"]);
        }
        if input.policy & 8 != 0 {
            policy = policy.allow_upstreams(["auth"]);
        }
        cx.set_policy(policy);
    }
    match input.alloc {
        Alloc::Bump => {}
        Alloc::Answer(a) => cx.alloc_answer = Some(a.value()),
        Alloc::Trap => cx.alloc_traps = true,
    }
    let n = input.memory.len().min(HEAP as usize);
    cx.mem[..n].copy_from_slice(&input.memory[..n]);
    for call in input.calls.iter().take(16) {
        let row = usize::from(call.row) % HOST_FUNCTIONS.len();
        let f = &HOST_FUNCTIONS[row];
        let mut count = f.params.len();
        match call.wrong_count {
            Some(true) => count += 1,
            Some(false) if count > 0 => count -= 1,
            _ => {}
        }
        let args: Vec<u64> = call.args.iter().take(count).map(|a| a.value()).collect();
        let word = cx.word;
        match call_row(row, word, &mut cx, &args) {
            Ok(answer) => match f.result {
                Kind::Status => assert!(Status::from_raw(answer as u32).is_some(), "{}: status {answer}", f.name),
                Kind::Errno => assert!(Errno::from_raw(answer as u32).is_some() || answer == 76, "{}: errno {answer}", f.name),
                _ => {}
            },
            Err(trap) => assert!(!trap.message.is_empty(), "{}: a trap says why", f.name),
        }
    }
    // The host state stays usable: a last call that needs no memory.
    let _ = call_row(abi::HostFunctionId::proxy_done.row(), cx.word, &mut cx, &[]);
});
