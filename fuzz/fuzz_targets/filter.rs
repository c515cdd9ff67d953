//! Trigger filters: compiling any JSON never panics, and evaluating a compiled filter
//! against any valid event never panics; `not` inverts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial::event::cloudevent::parse_structured;
use sundial::event::filter::compile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (filter, event) = text.split_once('\u{0}').unwrap_or((&text, "{}"));
    let Ok(filter) = serde_json::from_str::<serde_json::Value>(filter) else {
        return;
    };
    let Ok(compiled) = compile(&filter) else {
        return;
    };
    let mut event: serde_json::Value = serde_json::from_str(event).unwrap_or(serde_json::json!({}));
    if let Some(m) = event.as_object_mut() {
        m.entry("specversion").or_insert("1.0".into());
        m.entry("id").or_insert("1".into());
        m.entry("source").or_insert("/fuzz".into());
        m.entry("type").or_insert("fuzz.event".into());
    }
    let Ok(event) = parse_structured(&event) else {
        return;
    };
    let yes = compiled.matches(&event);
    let negated = compile(&serde_json::json!({ "not": filter })).expect("not of a valid filter");
    assert_eq!(negated.matches(&event), !yes);
});
