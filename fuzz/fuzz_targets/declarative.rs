//! The `apply` file parser: never panics, and an accepted file written back out parses
//! to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial::declarative::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text) {
        let out = config.to_toml().expect("an accepted configuration writes out");
        let again = Config::parse(&out).expect("the written file parses");
        assert_eq!(again, config);
    }
});
