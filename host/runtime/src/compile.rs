//! Where a component is compiled: in this process, or in a child process that builds
//! the same engine, compiles, and hands back the serialized native code.
//!
//! Compiling touches Cranelift's code and allocates a compile's working memory (a few
//! MiB for a small Rust plugin, hundreds of MiB for an interpreter component). In a
//! child process that memory and those code pages belong to the child and leave with
//! it; the daemon only deserializes the result, as it would a compile-cache entry. A
//! compile that crashes or is killed (out of memory) fails that load, not the daemon.
//!
//! The protocol between the two: the parent runs `PROGRAM ARGS… SETTINGS` with the
//! component's bytes on stdin; the child answers the serialized component on stdout
//! and exit status 0, or one line on stderr and [`REFUSED`] when the component does
//! not compile (invalid, over a pool limit), or 1 when anything else failed. `SETTINGS` is [`EngineSettings::to_arg`]:
//! everything of [`RuntimeConfig`](crate::RuntimeConfig) the engine's configuration
//! depends on, so the child's engine is built by the same function as the parent's.
//! wasmtime checks the compatibility again when the parent deserializes.

use crate::{PoolLimits, RuntimeConfig};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The exit status of a child that refused the component (its error on stderr).
pub const REFUSED: i32 = 3;

/// The stack available to wasm code, in bytes (wasmtime's default, 512 KiB).
const MAX_WASM_STACK: usize = 512 * 1024;

/// Where components are compiled. Default [`Compiler::InProcess`]; the daemon uses a
/// child process of its own binary (`sundial compile-component`).
#[derive(Debug, Clone, Default)]
pub enum Compiler {
    /// In this process, on the calling thread (and Cranelift's threads).
    #[default]
    InProcess,
    /// In a child process: `program args… SETTINGS`, speaking this module's protocol.
    /// When the program cannot be started, the compile runs in this process instead
    /// (with a warning); when it starts and dies, the load fails.
    Child {
        /// The program to run (the daemon passes its own executable).
        program: PathBuf,
        /// Arguments before the settings (the daemon passes `compile-component`).
        args: Vec<OsString>,
    },
}

/// What the engine's configuration is built from: the parts of a [`RuntimeConfig`]
/// that change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// [`RuntimeConfig::fuel_metering`].
    pub fuel_metering: bool,
    /// [`RuntimeConfig::max_instances`].
    pub max_instances: u32,
    /// [`RuntimeConfig::pool`].
    pub pool: PoolLimits,
}

impl EngineSettings {
    /// The settings of `config`.
    pub fn of(config: &RuntimeConfig) -> EngineSettings {
        EngineSettings {
            fuel_metering: config.fuel_metering,
            max_instances: config.max_instances,
            pool: config.pool,
        }
    }

    /// One command-line argument holding these settings.
    pub fn to_arg(&self) -> String {
        let p = &self.pool;
        format!(
            "fuel={},instances={},core={},memories={},tables={},per_run={},keep={}",
            u8::from(self.fuel_metering),
            self.max_instances,
            p.core_instances,
            p.memories,
            p.tables,
            p.core_instances_per_run,
            p.keep_resident_bytes
        )
    }

    /// Parse [`to_arg`](Self::to_arg)'s output; every key must be present once.
    pub fn from_arg(arg: &str) -> Result<EngineSettings, String> {
        let mut values = std::collections::BTreeMap::new();
        for part in arg.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("engine settings: {part:?} is not KEY=VALUE"))?;
            let value: u64 = value
                .parse()
                .map_err(|_| format!("engine settings: {key}={value:?} is not a number"))?;
            if values.insert(key, value).is_some() {
                return Err(format!("engine settings: {key} given twice"));
            }
        }
        let mut take = |key: &str| {
            values
                .remove(key)
                .ok_or_else(|| format!("engine settings: {key} is missing"))
        };
        let u32_of =
            |key: &str, v: u64| u32::try_from(v).map_err(|_| format!("engine settings: {key} is too large"));
        let settings = EngineSettings {
            fuel_metering: match take("fuel")? {
                0 => false,
                1 => true,
                v => return Err(format!("engine settings: fuel={v} is not 0 or 1")),
            },
            max_instances: u32_of("instances", take("instances")?)?,
            pool: PoolLimits {
                core_instances: u32_of("core", take("core")?)?,
                memories: u32_of("memories", take("memories")?)?,
                tables: u32_of("tables", take("tables")?)?,
                core_instances_per_run: u32_of("per_run", take("per_run")?)?,
                keep_resident_bytes: usize::try_from(take("keep")?)
                    .map_err(|_| "engine settings: keep is too large".to_string())?,
            },
        };
        if let Some(key) = values.keys().next() {
            return Err(format!("engine settings: unknown key {key}"));
        }
        Ok(settings)
    }

    /// The wasmtime configuration: component model, epoch interruption, optional fuel,
    /// the pooling allocator sized by `max_instances` and `pool`.
    pub(crate) fn config(&self) -> Config {
        let n = self.max_instances.max(1);
        let limits = self.pool;
        let per_run = limits.core_instances_per_run.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(per_run).max(limits.core_instances))
            .total_memories(n.saturating_mul(2).max(limits.memories))
            .total_tables(n.saturating_mul(per_run / 2).max(limits.tables))
            .total_stacks(n)
            .max_memories_per_component(limits.memories.max(1))
            .max_core_instances_per_component(limits.core_instances.max(1))
            .max_tables_per_component(limits.tables.max(1))
            .max_memory_size(sundial_core::limits::MAX_MEMORY_BYTES as usize)
            // Reset only the pages a run dirtied (Linux 6.7+ PAGEMAP_SCAN; falls back to
            // memset of the kept-resident prefix elsewhere) and keep them mapped, so the
            // next run neither page-faults nor flushes TLBs for them.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(limits.keep_resident_bytes)
            .table_keep_resident(1 << 16);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(self.fuel_metering)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        wasm
    }
}

/// How long a compile in a child process may take before the child is killed and the
/// load fails: 300 s (an interpreter component compiles in well under a minute).
pub const CHILD_DEADLINE: Duration = Duration::from_secs(300);

/// The most the child may answer: 512 MiB of serialized code (an interpreter
/// component's is about 40 MB).
const MAX_ANSWER_BYTES: u64 = 512 << 20;

/// Why the child's side did not produce code.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildError {
    /// The component does not compile for this engine (invalid, over a pool limit).
    Refused(String),
    /// Anything else: bad settings, the engine could not be built.
    Failed(String),
}

/// The child's side: build the engine of `settings`, compile `component` (checking it
/// against the pool's limits, as a load does), and return its serialized form.
pub fn compile_serialized(settings: &EngineSettings, component: &[u8]) -> Result<Vec<u8>, ChildError> {
    let engine = Engine::new(&settings.config()).map_err(|e| ChildError::Failed(format!("{e:#}")))?;
    // `Component::new`, not `Engine::precompile_component`: only the former checks the
    // component against the pooling allocator's limits, so a component over one is
    // refused here rather than when the parent deserializes it.
    let compiled = Component::new(&engine, component).map_err(|e| ChildError::Refused(format!("{e:#}")))?;
    compiled
        .serialize()
        .map_err(|e| ChildError::Failed(format!("serializing the compiled component: {e:#}")))
}

/// The child's whole job, for a `main`: read the component from `input`, write the
/// serialized form to `output`; the process's exit status: 0, [`REFUSED`] with the
/// reason on `errors` when the component does not compile, 1 (with the reason) when
/// anything else failed.
pub fn serve_child(
    settings: &str,
    input: &mut impl Read,
    output: &mut impl Write,
    errors: &mut impl Write,
) -> i32 {
    // Under memory pressure the kernel's OOM killer picks this process, not the daemon.
    #[cfg(target_os = "linux")]
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let one_line = |text: String| text.replace('\n', " ");
    let settings = match EngineSettings::from_arg(settings) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(errors, "{}", one_line(e));
            return 1;
        }
    };
    let mut component = Vec::new();
    if let Err(e) = input.read_to_end(&mut component) {
        let _ = writeln!(errors, "reading the component: {e}");
        return 1;
    }
    match compile_serialized(&settings, &component) {
        Ok(blob) => match output.write_all(&blob).and_then(|()| output.flush()) {
            Ok(()) => 0,
            Err(e) => {
                let _ = writeln!(errors, "writing the compiled component: {e}");
                1
            }
        },
        Err(ChildError::Refused(reason)) => {
            let _ = writeln!(errors, "{}", one_line(reason));
            REFUSED
        }
        Err(ChildError::Failed(reason)) => {
            let _ = writeln!(errors, "{}", one_line(reason));
            1
        }
    }
}

/// How a compile in a child process ended, when it did not give the code.
#[derive(Debug)]
pub(crate) enum ChildFailure {
    /// The program could not be started: compile in this process instead.
    Unavailable(String),
    /// The component does not compile (the child's reason).
    Refused(String),
    /// The child started and ended without an answer (crashed, killed, failed, too
    /// slow, too long an answer): nothing said about the component.
    Died(String),
}

/// Kills and reaps the child unless disarmed, so no early return leaves it running or
/// a zombie.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The parent's side: run `program args… SETTINGS` on `component`, killing it after
/// [`CHILD_DEADLINE`].
pub(crate) fn compile_in_child(
    program: &std::path::Path,
    args: &[OsString],
    settings: &EngineSettings,
    component: &[u8],
) -> Result<Vec<u8>, ChildFailure> {
    let mut command = Command::new(program);
    #[cfg(unix)]
    {
        // `ps` shows `sundial compile-component …` rather than `/proc/self/exe …`.
        use std::os::unix::process::CommandExt;
        command.arg0("sundial");
    }
    let child = command
        .args(args)
        .arg(settings.to_arg())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ChildFailure::Unavailable(format!("{}: {e}", program.display())))?;
    let mut reaper = Reaper(Some(child));
    let child = reaper.0.as_mut().expect("just set");
    let pid = child.id();
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    // Killing by pid is safe until the child is reaped, which happens only after this
    // scope (the `Reaper` or the `wait` below).
    let kill = move || {
        // SAFETY: kill(2) on our own child, not reaped yet.
        #[cfg(unix)]
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    };
    let exchange = std::thread::scope(|scope| -> Result<_, ChildFailure> {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let thread = |name: &str| std::thread::Builder::new().name(name.to_string());
        let spawn_failed = |e: std::io::Error| {
            kill();
            ChildFailure::Died(format!("starting a thread for the compiler process: {e}"))
        };
        // Past the deadline the child is killed, which ends every read below. Also
        // when this closure returns early (`done` dropped): nothing reads the child then.
        let watchdog = thread("sundial-compile-watch")
            .spawn_scoped(scope, move || match finished.recv_timeout(CHILD_DEADLINE) {
                Ok(()) => false,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    kill();
                    false
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    kill();
                    true
                }
            })
            .map_err(spawn_failed)?;
        // The child reads all of stdin before it writes; a thread feeds it so a child
        // that stops reading early cannot block this one.
        let mut stdin = stdin;
        thread("sundial-compile-feed")
            .spawn_scoped(scope, move || {
                let _ = stdin.write_all(component);
            })
            .map_err(spawn_failed)?;
        let mut stderr = stderr;
        let reader = thread("sundial-compile-err")
            .spawn_scoped(scope, move || {
                let mut text = Vec::new();
                let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text);
                String::from_utf8_lossy(&text).trim().to_string()
            })
            .map_err(spawn_failed)?;
        let mut stdout = stdout;
        let mut blob = Vec::new();
        let read = (&mut stdout).take(MAX_ANSWER_BYTES + 1).read_to_end(&mut blob);
        let too_long = read.is_ok() && blob.len() as u64 > MAX_ANSWER_BYTES;
        if too_long {
            kill(); // it would block on the pipe nobody reads any more
        }
        drop(stdout);
        let message = reader.join().unwrap_or_default();
        let _ = done.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        Ok((read.map(|_| blob), message, timed_out, too_long))
    });
    let (blob, message, timed_out, too_long) = exchange?;
    let mut child = reaper.0.take().expect("not reaped yet");
    let status = child
        .wait()
        .map_err(|e| ChildFailure::Died(format!("waiting for the compiler: {e}")))?;
    if timed_out {
        return Err(ChildFailure::Died(format!(
            "the compiler process took longer than {} s and was killed",
            CHILD_DEADLINE.as_secs()
        )));
    }
    if too_long {
        return Err(ChildFailure::Died(format!(
            "the compiler process answered more than {MAX_ANSWER_BYTES} bytes"
        )));
    }
    if status.success() {
        return match blob {
            Ok(blob) => Ok(blob),
            Err(e) => Err(ChildFailure::Died(format!("reading the compiled component: {e}"))),
        };
    }
    if status.code() == Some(REFUSED) {
        return Err(ChildFailure::Refused(message));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let hint = if signal == libc::SIGKILL {
                " (killed: out of memory?)"
            } else {
                ""
            };
            return Err(ChildFailure::Died(format!(
                "the compiler process ended by signal {signal}{hint}"
            )));
        }
    }
    Err(ChildFailure::Died(format!(
        "the compiler process failed ({status}): {message}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_command_line_and_bad_ones_are_refused() {
        let settings = EngineSettings {
            fuel_metering: false,
            max_instances: 7,
            pool: PoolLimits {
                core_instances: 11,
                memories: 2,
                tables: 9,
                core_instances_per_run: 5,
                keep_resident_bytes: 1 << 16,
            },
        };
        assert_eq!(EngineSettings::from_arg(&settings.to_arg()), Ok(settings));
        let good = settings.to_arg();
        for bad in [
            String::new(),
            good.replace("fuel=0", "fuel=2"),
            good.replace("fuel=0,", ""),
            format!("{good},fuel=1"),
            format!("{good},extra=1"),
            good.replace("instances=7", "instances=x"),
            good.replace("instances=7", "instances=99999999999"),
        ] {
            assert!(EngineSettings::from_arg(&bad).is_err(), "{bad}");
        }
    }
}
