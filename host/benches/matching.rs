//! Trigger matching cost per event with 10 and 10 000 triggers defined: the index looks
//! up the event's type and the glob prefixes it could match, so unrelated triggers
//! cost nothing.
//!
//! Run: `cargo bench -p sundial --bench matching`

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use sundial_core::event::cloudevent::{CloudEvent, parse_structured};
use sundial_core::event::index::TriggerIndex;
use sundial_core::trigger::TriggerSpec;

/// `n` triggers: a third exact types, a third globs, a third exact types with a filter;
/// one of them (`sync.failed` with a filter) matches the benchmark event.
fn index(n: usize) -> TriggerIndex {
    let mut compiled = Vec::with_capacity(n);
    for i in 0..n {
        let on = match i % 3 {
            _ if i == n / 2 => json!({"type": "sync.failed", "filter": {"all": [
                {"path": "data.host", "glob": "vm-*"}, {"path": "data.errors", "gt": 0}]}}),
            0 => json!({"type": format!("app{i}.event")}),
            1 => json!({"type": format!("svc{i}.*"), "subject": "x*"}),
            _ => json!({"type": format!("job{i}.done"), "filter": {"path": "data.ok", "eq": true}}),
        };
        let spec: TriggerSpec =
            serde_json::from_value(json!({"name": format!("t{i}"), "on": on, "targets": [{"task": "x"}]}))
                .unwrap();
        compiled.push(spec.compile(&format!("{i:06}")).unwrap());
    }
    TriggerIndex::new(compiled)
}

fn event() -> CloudEvent {
    parse_structured(
        &json!({"specversion": "1.0", "id": "1", "source": "/sync", "type": "sync.failed",
        "subject": "vm-web-01", "data": {"host": "vm-web-01", "errors": 3, "detail": "disk full"}}),
    )
    .unwrap()
}

fn matching(c: &mut Criterion) {
    let e = event();
    let mut group = c.benchmark_group("match_one_event");
    for n in [10usize, 10_000] {
        let index = index(n);
        let (found, cost) = index.matches_with_cost(&e);
        assert_eq!(found.len(), 1);
        println!(
            "{n} triggers: {} glob prefix lengths; per event {} lookups, {} candidates examined",
            index.glob_prefix_lengths(),
            cost.lookups,
            cost.examined
        );
        group.bench_function(format!("{n}_triggers"), |b| {
            b.iter(|| black_box(index.matches(black_box(&e))))
        });
    }
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
