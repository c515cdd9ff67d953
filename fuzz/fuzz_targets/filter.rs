//! Trigger filters: compiling any JSON never panics, and evaluating a compiled filter
//! against any valid event never panics; and the filter laws hold, each checked through
//! a different operator than the one it is about (so no law restates the code): one
//! part of `all`/`any` is that part, `f and not f` never matches, `f or not f` always
//! does, and for a condition `ne` is `not eq`, `in [v]` is `eq v`, `gte`/`lte` are
//! `gt`/`lt` or `eq`, and `exists: false` is `not exists: true`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sundial_core::event::cloudevent::{CloudEvent, parse_structured};
use sundial_core::event::filter::compile;

/// Whether `filter` (JSON) matches `event`, if it compiles.
fn eval(filter: &Value, event: &CloudEvent) -> Option<bool> {
    compile(filter).ok().map(|f| f.matches(event))
}

/// `Some(a) == Some(b)` whenever both compile.
fn same(a: Option<bool>, b: Option<bool>, law: &str, filter: &Value) {
    if let (Some(a), Some(b)) = (a, b) {
        assert_eq!(a, b, "{law} fails for {filter}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (filter, event) = text.split_once('\u{0}').unwrap_or((&text, "{}"));
    let Ok(filter) = serde_json::from_str::<Value>(filter) else {
        return;
    };
    let Ok(compiled) = compile(&filter) else {
        return;
    };
    let mut event: Value = serde_json::from_str(event).unwrap_or(json!({}));
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
    let f = filter.clone();
    same(eval(&json!({"all": [f]}), &event), Some(yes), "all[f] = f", &filter);
    same(eval(&json!({"any": [f]}), &event), Some(yes), "any[f] = f", &filter);
    same(eval(&json!({"all": [f, {"not": f}]}), &event), Some(false), "f and not f", &filter);
    same(eval(&json!({"any": [f, {"not": f}]}), &event), Some(true), "f or not f", &filter);
    same(eval(&json!({"not": {"not": f}}), &event), Some(yes), "not not f = f", &filter);
    // Laws of the condition operators, on conditions with exactly one operator.
    let Some(obj) = filter.as_object() else {
        return;
    };
    let (Some(path), 2) = (obj.get("path"), obj.len()) else {
        return;
    };
    let Some((op, arg)) = obj.iter().find(|(k, _)| *k != "path") else {
        return;
    };
    let cond = |op: &str, arg: &Value| eval(&json!({"path": path, op: arg}), &event);
    match op.as_str() {
        "eq" => {
            same(cond("ne", arg), Some(!yes), "ne = not eq", &filter);
            same(cond("in", &json!([arg])), Some(yes), "in [v] = eq v", &filter);
        }
        "gte" => {
            let either = cond("gt", arg).zip(cond("eq", arg)).map(|(a, b)| a || b);
            same(either, Some(yes), "gte = gt or eq", &filter);
        }
        "lte" => {
            let either = cond("lt", arg).zip(cond("eq", arg)).map(|(a, b)| a || b);
            same(either, Some(yes), "lte = lt or eq", &filter);
        }
        "exists" => {
            if let Some(b) = arg.as_bool() {
                same(cond("exists", &json!(!b)), Some(!yes), "exists false = not exists true", &filter);
            }
        }
        _ => {}
    }
});
