//! The runtime loading arbitrary bytes as a plugin: an error, never a panic or a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use sundial_runtime::{Runtime, RuntimeConfig};

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: None,
            max_instances: 8,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = runtime().load(data);
});
