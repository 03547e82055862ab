//! The engine contract of `proxy-wasm-host` as tests, written once and run on every engine.
//!
//! An engine crate's integration tests call [`engine_contract_tests!`] with a closure that makes
//! its engine; the macro expands to one `#[test]` per case of [`cases`]:
//!
//! ```ignore
//! proxy_wasm_engine_tests::engine_contract_tests!(|| std::sync::Arc::new(MyEngine::default()));
//! ```
//!
//! The cases use hand-written guests in the Wasm text format, turned into binaries here (engines
//! receive binaries only), and assert what the engine SDK ([`proxy_wasm_host::engine`])
//! documents: compile errors, import and export listings, callback arguments and results,
//! signature checks, traps, start sections (their host calls, traps and deadline), the CPU
//! deadline (the host's watchdog through the engine's interrupt), the memory limit (-1 past it,
//! never more memory), re-entrant allocator calls, `proc_exit`, precompiled modules and the
//! thread contract. Where a capability is optional, the case checks that an engine without it
//! says so.

pub mod allocator;
pub mod cases;

#[doc(hidden)]
pub use proxy_wasm_host;

/// Expands to one `#[test]` per case of [`cases`], each run on a fresh engine made by
/// `$make` (an expression that makes an `Arc` of a type implementing
/// [`Engine`](proxy_wasm_host::Engine), for example `|| Arc::new(MyEngine::default())`).
#[macro_export]
macro_rules! engine_contract_tests {
    ($make:expr) => {
        $crate::engine_contract_tests!(@cases $make;
            compile_error_names_the_problem
            imports_and_exports_are_listed
            a_callback_gets_its_arguments_and_returns_its_value
            a_callback_with_the_wrong_signature_is_refused
            imports_are_checked_against_the_table
            unreachable_is_a_guest_trap_and_fails_the_vm
            an_endless_loop_hits_the_deadline
            interrupt_from_another_thread_stops_an_endless_loop
            interrupting_one_instance_leaves_another_alone
            a_memory_bomb_hits_the_memory_limit
            growing_past_the_modules_own_maximum_answers_minus_one
            the_memory_limit_is_per_instance
            a_start_function_past_the_memory_limit_gets_minus_one
            a_trapping_start_section_fails_instantiation
            a_start_section_looping_forever_hits_the_deadline
            a_host_function_calls_the_allocator_reentrantly
            a_host_function_writes_into_pages_its_allocator_added
            host_calls_read_memory_during_and_after_the_start_function
            a_restricted_call_inside_the_allocator_traps
            a_trapping_allocator_fails_the_call
            an_i64_argument_passes_through
            rows_without_a_status_return_to_the_guest
            serialize_and_deserialize_round_trip
            the_precompiled_cache_serves_a_restart_and_refuses_a_changed_file
            an_instance_moves_between_threads
            a_vm_per_worker_thread
        );
    };
    (@cases $make:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                let make = $make;
                $crate::cases::$case(&move || -> ::std::sync::Arc<dyn $crate::proxy_wasm_host::Engine> { make() });
            }
        )*
    };
}
