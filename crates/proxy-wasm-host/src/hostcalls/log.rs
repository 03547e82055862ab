//! Logging, time, tick period and the 0.1.0 configuration call.

use abi::{BufferType, Callback, LogLevel, Status};

use crate::host::BufferRef;
use crate::{return_bytes, HostCx, HostResult};

/// `proxy_log`: hands the message (lossy UTF-8) to the embedder's log sink with the plugin of
/// the effective context (`None` before any root context exists). A level below the
/// embedder's [`log_level`](crate::Embedder::log_level) is dropped without calling the sink.
///
/// `BadArgument` for an unknown level, `InvalidMemoryAccess` for a message outside memory
/// (checked even when the level would drop it).
pub fn proxy_log(cx: &mut dyn HostCx, level: u32, message_ptr: u64, message_size: u64) -> HostResult {
    let level = LogLevel::from_raw(level).ok_or(Status::BadArgument)?;
    let (mem, host) = cx.parts();
    let message = mem.read(message_ptr, message_size)?;
    let plugin = host.plugin().map(|p| &**p);
    if level >= host.embedder.log_level(plugin) {
        host.embedder.log(plugin, level, &String::from_utf8_lossy(message));
    }
    Ok(())
}

/// `proxy_get_log_level` (0.2.1): writes the embedder's level for this plugin as a `u32`.
pub fn proxy_get_log_level(cx: &mut dyn HostCx, return_level: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    let level = host.embedder.log_level(host.plugin().map(|p| &**p));
    mem.write_u32(return_level, level.raw())?;
    Ok(())
}

/// `proxy_get_current_time_nanoseconds`: writes the embedder's wall clock (ns since the Unix
/// epoch) as a `u64`.
pub fn proxy_get_current_time_nanoseconds(cx: &mut dyn HostCx, return_time: u64) -> HostResult {
    let (mut mem, host) = cx.parts();
    mem.write_u64(return_time, host.embedder.now_nanos())?;
    Ok(())
}

/// `proxy_set_tick_period_milliseconds`: sets the tick period of the effective context's root
/// context (0 stops the ticks). `BadArgument` when there is no such root context.
pub fn proxy_set_tick_period_milliseconds(cx: &mut dyn HostCx, period: u32) -> HostResult {
    let root = cx.host().root_mut().ok_or(Status::BadArgument)?;
    root.tick_period_ms = period;
    Ok(())
}

/// `proxy_get_configuration` (0.1.0): the plugin configuration during `proxy_on_configure`,
/// the VM configuration in every other callback, always OK (Envoy's
/// `Context::getConfiguration` answers the plugin's while it is being configured, else the
/// VM's). An empty configuration is returned as address 0 and length 0.
pub fn proxy_get_configuration(cx: &mut dyn HostCx, return_ptr: u64, return_size: u64) -> HostResult {
    let configuration = {
        let host = cx.host();
        let buffer = match host.current_callback() {
            Some(Callback::OnConfigure) => BufferType::PluginConfiguration,
            _ => BufferType::VmConfiguration,
        };
        match host.buffer(buffer)? {
            BufferRef::ReadOnly(b) => b.to_vec(),
            BufferRef::Mutable(b) => b.clone(),
        }
    };
    return_bytes(cx, return_ptr, return_size, &configuration)
}

#[cfg(test)]
mod tests {
    use abi::{AbiVersion, Callback, LogLevel, Status};

    use crate::hostcalls::testing::{status, TestCx, HEAP, MEM, OOB, RET_PTR, RET_SCALAR, RET_SIZE, ROOT, STREAM, TCP};
    use crate::hostcalls::{
        proxy_get_configuration, proxy_get_current_time_nanoseconds, proxy_get_log_level, proxy_log,
        proxy_set_tick_period_milliseconds,
    };

    fn logs(cx: &TestCx) -> Vec<(LogLevel, String)> {
        cx.embedder.seen.lock().unwrap().logs.clone()
    }

    #[test]
    fn log_sends_messages_at_or_above_the_level_to_the_embedder() {
        let mut cx = TestCx::new();
        let (p, n) = cx.put(100, b"hello");
        // RecordingEmbedder's level is DEBUG: TRACE is dropped, every other level is sent.
        for level in LogLevel::ALL {
            assert_eq!(status(proxy_log(&mut cx, level.raw(), p, n)), Status::Ok, "{level}");
        }
        let expected: Vec<_> = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error, LogLevel::Critical]
            .into_iter()
            .map(|l| (l, "hello".to_string()))
            .collect();
        assert_eq!(logs(&cx), expected);
    }

    #[test]
    fn log_accepts_an_empty_message_and_replaces_invalid_utf8() {
        let mut cx = TestCx::new();
        assert_eq!(status(proxy_log(&mut cx, LogLevel::Info.raw(), 0, 0)), Status::Ok);
        let (p, n) = cx.put(100, b"a\xffb");
        assert_eq!(status(proxy_log(&mut cx, LogLevel::Warn.raw(), p, n)), Status::Ok);
        assert_eq!(logs(&cx), vec![(LogLevel::Info, String::new()), (LogLevel::Warn, "a\u{fffd}b".to_string())]);
    }

    #[test]
    fn log_works_without_a_plugin() {
        let mut cx = TestCx::new();
        cx.enter(Callback::Initialize, 0);
        let (p, n) = cx.put(100, b"early");
        assert_eq!(status(proxy_log(&mut cx, LogLevel::Error.raw(), p, n)), Status::Ok);
        assert_eq!(logs(&cx), vec![(LogLevel::Error, "early".to_string())]);
    }

    #[test]
    fn log_refuses_bad_levels_and_bad_memory() {
        let cases: &[(u32, u64, u64, Status)] = &[
            (6, 100, 1, Status::BadArgument),
            (u32::MAX, 100, 1, Status::BadArgument),
            // The level is checked before memory.
            (6, OOB, 1, Status::BadArgument),
            (LogLevel::Info.raw(), OOB, 1, Status::InvalidMemoryAccess),
            (LogLevel::Info.raw(), MEM - 2, 3, Status::InvalidMemoryAccess),
            (LogLevel::Info.raw(), u64::MAX, 2, Status::InvalidMemoryAccess),
            (LogLevel::Info.raw(), 1, u64::MAX, Status::InvalidMemoryAccess),
            (LogLevel::Info.raw(), u64::from(u32::MAX), u64::from(u32::MAX), Status::InvalidMemoryAccess),
            // Memory is checked even when the level drops the message.
            (LogLevel::Trace.raw(), OOB, 1, Status::InvalidMemoryAccess),
        ];
        for &(level, ptr, len, expected) in cases {
            let mut cx = TestCx::new();
            assert_eq!(status(proxy_log(&mut cx, level, ptr, len)), expected, "level {level} ptr {ptr} len {len}");
            assert!(logs(&cx).is_empty());
        }
    }

    #[test]
    fn get_log_level_writes_the_embedder_level() {
        let mut cx = TestCx::new();
        cx.mem[RET_SCALAR as usize..RET_SCALAR as usize + 4].fill(0xaa);
        assert_eq!(status(proxy_get_log_level(&mut cx, RET_SCALAR)), Status::Ok);
        assert_eq!(cx.u32_at(RET_SCALAR), LogLevel::Debug.raw());
        for bad in [OOB, MEM - 3, u64::MAX] {
            assert_eq!(status(proxy_get_log_level(&mut cx, bad)), Status::InvalidMemoryAccess);
        }
    }

    #[test]
    fn current_time_writes_the_embedder_clock() {
        let mut cx = TestCx::new();
        assert_eq!(status(proxy_get_current_time_nanoseconds(&mut cx, RET_SCALAR)), Status::Ok);
        assert_eq!(cx.u64_at(RET_SCALAR), 1_700_000_000_123_456_789);
        for bad in [OOB, MEM - 7, u64::MAX - 3] {
            assert_eq!(status(proxy_get_current_time_nanoseconds(&mut cx, bad)), Status::InvalidMemoryAccess);
        }
    }

    #[test]
    fn tick_period_applies_to_the_root_of_the_effective_context() {
        let mut cx = TestCx::new();
        cx.enter(Callback::OnVmStart, ROOT);
        assert_eq!(status(proxy_set_tick_period_milliseconds(&mut cx, 250)), Status::Ok);
        assert_eq!(cx.root().tick_period_ms, 250);
        // From a stream or a connection, the stream's root.
        cx.enter(Callback::OnRequestHeaders, STREAM);
        assert_eq!(status(proxy_set_tick_period_milliseconds(&mut cx, 7)), Status::Ok);
        assert_eq!(cx.root().tick_period_ms, 7);
        cx.enter(Callback::OnNewConnection, TCP);
        assert_eq!(status(proxy_set_tick_period_milliseconds(&mut cx, 0)), Status::Ok);
        assert_eq!(cx.root().tick_period_ms, 0);
        // No context: no root.
        cx.enter(Callback::Initialize, 0);
        assert_eq!(status(proxy_set_tick_period_milliseconds(&mut cx, 5)), Status::BadArgument);
        assert_eq!(cx.root().tick_period_ms, 0);
    }

    #[test]
    fn get_configuration_answers_by_callback() {
        let cases: &[(Callback, u32, Status, &[u8])] = &[
            (Callback::OnVmStart, ROOT, Status::Ok, b"vm-config"),
            (Callback::OnConfigure, ROOT, Status::Ok, b"plugin-config"),
            // Envoy's Context::getConfiguration: the VM configuration outside configuration.
            (Callback::OnTick, ROOT, Status::Ok, b"vm-config"),
            (Callback::OnRequestHeaders, STREAM, Status::Ok, b"vm-config"),
        ];
        for &(callback, context, expected, value) in cases {
            let mut cx = TestCx::with_version(AbiVersion::V010);
            cx.enter(callback, context);
            assert_eq!(status(proxy_get_configuration(&mut cx, RET_PTR, RET_SIZE)), expected, "{callback}");
            if expected == Status::Ok {
                assert_eq!(cx.returned(RET_PTR, RET_SIZE), value);
                assert_eq!(u64::from(cx.u32_at(RET_PTR)), HEAP);
            } else {
                assert_eq!(cx.allocations, 0);
            }
        }
    }

    #[test]
    fn get_configuration_returns_an_empty_configuration_as_null() {
        let mut cx = TestCx::with_version(AbiVersion::V010);
        cx.host.vm_configuration.clear();
        cx.enter(Callback::OnVmStart, ROOT);
        cx.put(RET_PTR, &[0xaa; 8]);
        assert_eq!(status(proxy_get_configuration(&mut cx, RET_PTR, RET_SIZE)), Status::Ok);
        assert_eq!((cx.u32_at(RET_PTR), cx.u32_at(RET_SIZE)), (0, 0));
        assert_eq!(cx.allocations, 0);
    }

    #[test]
    fn get_configuration_checks_return_pointers_before_allocating() {
        for (ret_ptr, ret_size) in [(OOB, RET_SIZE), (RET_PTR, OOB), (MEM - 2, RET_SIZE), (RET_PTR, u64::MAX)] {
            let mut cx = TestCx::new();
            cx.enter(Callback::OnVmStart, ROOT);
            assert_eq!(status(proxy_get_configuration(&mut cx, ret_ptr, ret_size)), Status::InvalidMemoryAccess);
            assert_eq!(cx.allocations, 0);
        }
    }

    #[test]
    fn get_configuration_reports_allocator_faults() {
        for answer in [0, MEM - 4, u64::MAX] {
            let mut cx = TestCx::new();
            cx.enter(Callback::OnVmStart, ROOT);
            cx.alloc_answer = Some(answer);
            assert_eq!(status(proxy_get_configuration(&mut cx, RET_PTR, RET_SIZE)), Status::InvalidMemoryAccess);
        }
        let mut cx = TestCx::new();
        cx.enter(Callback::OnVmStart, ROOT);
        cx.alloc_traps = true;
        let trap = proxy_get_configuration(&mut cx, RET_PTR, RET_SIZE).unwrap_err();
        assert_eq!(trap.message, "allocator trapped");
    }
}
