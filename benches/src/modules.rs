//! The Wasm guests of the benchmarks, written here as WAT (or generated), so that our layer and
//! the raw-engine baselines run exactly the same guest code.

use crate::workload::LOOKUP_HEADER;

/// What every plugin here has after its memory: a bump allocator that resets when it reaches
/// the end of the second page, the ABI marker, the root callbacks (accepting) and the
/// end-of-stream callbacks (no-ops).
macro_rules! common_exports {
    () => {
        r#"  (global $heap (mut i32) (i32.const 65536))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.const 131072))
      (then (global.set $heap (i32.const 65536))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32))
"#
    };
}

/// The start of the small plugins, up to their stream callbacks: memory (2 pages) and
/// `common_exports!`. The module is left open.
macro_rules! preamble {
    () => {
        concat!("(module\n  (memory (export \"memory\") 2)\n", common_exports!())
    };
}

/// A guest exporting the HTTP stream callbacks as no-ops, with a bump allocator: the cheapest
/// plugin, so a benchmark measures the host.
pub const EMPTY_PLUGIN_WAT: &str = concat!(
    preamble!(),
    r#"  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
)
"#
);

/// How many `proxy_get_header_map_value` calls [`lookup_plugin_wat`] makes per request-headers
/// callback: the callback's own cost, the same in the baseline, is spread over this many.
pub const LOOKUPS_PER_CALL: u32 = 100;

/// A guest whose `proxy_on_request_headers` looks up [`LOOKUP_HEADER`] in the request headers
/// [`LOOKUPS_PER_CALL`] times with `proxy_get_header_map_value` (the host allocates each value
/// with the bump allocator and copies it in), trapping on any status but OK. The raw baselines
/// instantiate this same module with a hand-written host function of that name.
pub fn lookup_plugin_wat() -> String {
    format!(
        r#"{preamble}  (data (i32.const 1024) "{key}")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $i i32)
    (loop $again
      (if (i32.ne (call $get (i32.const 0) (i32.const 1024) (i32.const {key_len}) (i32.const 2048) (i32.const 2052)) (i32.const 0))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {LOOKUPS_PER_CALL}))))
    (i32.const 0))
)
"#,
        // Imports come before every definition.
        preamble = preamble!().replacen(
            "(module\n",
            "(module\n  (import \"env\" \"proxy_get_header_map_value\" (func $get (param i32 i32 i32 i32 i32) (result i32)))\n",
            1
        ),
        key = LOOKUP_HEADER,
        key_len = LOOKUP_HEADER.len(),
    )
}

/// A plugin of about `size` bytes of Wasm: the empty plugin's exports, three quarters of the
/// size in generated functions (loops, loads, stores, branches and calls, so that compilers do
/// real work) and a quarter in a data segment. `proxy_on_request_headers` calls the last
/// function, which may call each before it, so none is dead code.
pub fn big_plugin(size: usize) -> Vec<u8> {
    let data_len = size / 4;
    let code_target = size - data_len;
    // Measure what one generated function takes in binary Wasm, then make enough of them.
    let probe = |count: usize| wat::parse_str(module_wat(count, 0)).expect("the generated plugin is valid WAT").len();
    let per_function = (probe(1025) - probe(1)) / 1024;
    let count = (code_target / per_function).max(1);
    wat::parse_str(module_wat(count, data_len)).expect("the generated plugin is valid WAT")
}

/// The text of [`big_plugin`] with `count` generated functions and `data_len` bytes of data.
fn module_wat(count: usize, data_len: usize) -> String {
    let functions: String = (0..count).map(generated_function).collect();
    let data: String = (0..data_len).map(|i| format!("\\{:02x}", (i * 131 + 17) % 251)).collect();
    format!(
        r#"(module
  (memory (export "memory") {pages})
{common}  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $f{last} (local.get 1)))
    (i32.const 0))
{functions}  (data (i32.const 262144) "{data}")
)
"#,
        common = common_exports!(),
        pages = (262144 + data_len).div_ceil(65536) + 1,
        last = count - 1,
    )
}

/// Function `i` of [`big_plugin`]: four rounds of a small loop over memory, then a conditional
/// call of function `i - 1`.
fn generated_function(i: usize) -> String {
    let mut body = String::new();
    for round in 0..4 {
        let k = i * 7 + round * 13 + 1;
        body.push_str(&format!(
            r#"    (local.set $a (i32.add (local.get $x) (i32.const {k})))
    (local.set $b (i32.load (i32.and (local.get $a) (i32.const 65532))))
    (block $done{round} (loop $l{round}
      (br_if $done{round} (i32.ge_u (local.get $b) (i32.const {limit})))
      (local.set $b (i32.add (i32.mul (local.get $b) (i32.const 3)) (i32.const {k})))
      (local.set $a (i32.xor (local.get $a) (i32.rotl (local.get $b) (i32.const 5))))
      (br $l{round})))
    (i32.store (i32.and (local.get $a) (i32.const 65532)) (local.get $b))
    (local.set $x (i32.add (local.get $x) (i32.shr_u (local.get $a) (i32.const 3))))
"#,
            limit = 1000 + k,
        ));
    }
    let tail = if i == 0 {
        "(i32.add (local.get $a) (local.get $b))".to_string()
    } else {
        format!(
            "(if (result i32) (i32.and (local.get $a) (i32.const 1)) (then (call $f{} (local.get $b))) (else (i32.add (local.get $a) (local.get $b))))",
            i - 1
        )
    };
    format!("  (func $f{i} (param $x i32) (result i32) (local $a i32) (local $b i32)\n{body}    {tail})\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugins_are_valid_wasm() {
        wat::parse_str(EMPTY_PLUGIN_WAT).unwrap();
        wat::parse_str(lookup_plugin_wat()).unwrap();
    }

    #[test]
    fn the_big_plugin_has_about_the_size_asked() {
        for size in [64 << 10, 1 << 20] {
            let bytes = big_plugin(size);
            assert!((size - size / 20..size + size / 20).contains(&bytes.len()), "{} bytes for {size}", bytes.len());
        }
    }
}
