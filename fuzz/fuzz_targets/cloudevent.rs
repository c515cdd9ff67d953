//! CloudEvents parsing, structured and binary mode: never panics; an accepted event
//! serializes to JSON that parses back to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial_core::event::cloudevent::{parse_binary, parse_structured};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(event) = parse_structured(&value)
    {
        let again = parse_structured(&event.to_json()).expect("an accepted event parses again");
        assert_eq!(again, event);
    }
    // Binary mode: "name: value" header lines, a blank line, the body.
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let headers: Vec<(String, String)> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let _ = parse_binary(&headers, body.as_bytes());
});
