//! The trigger index: which triggers an event matches, at a cost that does not grow
//! with the number of unrelated triggers (pure).
//!
//! Exact `type` patterns sit in a hash map. Glob patterns sit in a hash map keyed by
//! their literal prefix (the characters before the first wildcard); an event of type
//! `T` only looks up the prefixes of `T` whose lengths occur among the globs, so the
//! cost is about (number of distinct prefix lengths) lookups plus the candidates
//! that share the type, whatever the number of triggers.

use super::cloudevent::CloudEvent;
use crate::trigger::{Compiled, Pattern};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Enabled triggers, indexed by event type.
#[derive(Debug, Default)]
pub struct TriggerIndex {
    exact: HashMap<String, Vec<Arc<Compiled>>>,
    globs: HashMap<String, Vec<Arc<Compiled>>>,
    prefix_lengths: BTreeSet<usize>,
    len: usize,
}

impl TriggerIndex {
    /// Index these (enabled) triggers.
    pub fn new(triggers: impl IntoIterator<Item = Compiled>) -> TriggerIndex {
        TriggerIndex::from_shared(triggers.into_iter().map(Arc::new))
    }

    /// Index already shared triggers (rebuilding after one change clones no trigger).
    pub fn from_shared(triggers: impl IntoIterator<Item = Arc<Compiled>>) -> TriggerIndex {
        let mut index = TriggerIndex::default();
        for t in triggers {
            index.len += 1;
            match &t.kind {
                Pattern::Exact(kind) => index.exact.entry(kind.clone()).or_default().push(t),
                Pattern::Glob { prefix, .. } => {
                    index.prefix_lengths.insert(prefix.len());
                    index.globs.entry(prefix.clone()).or_default().push(t);
                }
            }
        }
        index
    }

    /// How many triggers are indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no trigger is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many distinct glob prefix lengths an event's type is probed at (at most).
    pub fn glob_prefix_lengths(&self) -> usize {
        self.prefix_lengths.len()
    }

    /// The triggers `event` matches, in a stable order (by id).
    pub fn matches(&self, event: &CloudEvent) -> Vec<Arc<Compiled>> {
        self.matches_with_cost(event).0
    }

    /// [`TriggerIndex::matches`], with what the lookup cost.
    pub fn matches_with_cost(&self, event: &CloudEvent) -> (Vec<Arc<Compiled>>, MatchCost) {
        let kind = event.kind.as_str();
        let mut cost = MatchCost::default();
        let mut out: Vec<Arc<Compiled>> = Vec::new();
        cost.lookups += 1;
        if let Some(list) = self.exact.get(kind) {
            cost.examined += list.len();
            out.extend(list.iter().filter(|t| t.matches_rest(event)).cloned());
        }
        for &n in &self.prefix_lengths {
            if n > kind.len() {
                break;
            }
            let Some(prefix) = kind.get(..n) else {
                continue; // not a character boundary: no glob prefix can end there
            };
            cost.lookups += 1;
            if let Some(list) = self.globs.get(prefix) {
                cost.examined += list.len();
                out.extend(
                    list.iter()
                        .filter(|t| t.kind.matches(kind) && t.matches_rest(event))
                        .cloned(),
                );
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        (out, cost)
    }
}

/// What matching one event cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MatchCost {
    /// Hash lookups: the exact type, and one per glob prefix length probed.
    pub lookups: usize,
    /// Triggers whose pattern and filters were evaluated (the candidates found).
    pub examined: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::TriggerSpec;
    use serde_json::json;

    fn trigger(id: &str, on: serde_json::Value) -> Compiled {
        let spec: TriggerSpec =
            serde_json::from_value(json!({"name": format!("t{id}"), "on": on, "targets": [{"task": "x"}]}))
                .unwrap();
        spec.compile(id).unwrap()
    }

    fn event(kind: &str, subject: Option<&str>) -> CloudEvent {
        let mut v = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": kind, "data": {"n": 5}});
        if let Some(s) = subject {
            v["subject"] = json!(s);
        }
        crate::event::cloudevent::parse_structured(&v).unwrap()
    }

    fn ids(index: &TriggerIndex, e: &CloudEvent) -> Vec<String> {
        index.matches(e).iter().map(|t| t.id.clone()).collect()
    }

    #[test]
    fn exact_glob_subject_source_and_filter() {
        let index = TriggerIndex::new([
            trigger("01", json!({"type": "sync.failed"})),
            trigger("02", json!({"type": "sync.*"})),
            trigger("03", json!({"type": "*.failed"})),
            trigger("04", json!({"type": "sync.failed", "subject": "alice"})),
            trigger("05", json!({"type": "sync.failed", "source": "/other"})),
            trigger(
                "06",
                json!({"type": "sync.failed", "filter": {"path": "data.n", "gt": 10}}),
            ),
            trigger("07", json!({"type": "sync.fail?d", "subject": "a*"})),
            trigger("08", json!({"type": "user.login"})),
        ]);
        assert_eq!(index.len(), 8);
        assert_eq!(ids(&index, &event("sync.failed", None)), ["01", "02", "03"]);
        assert_eq!(
            ids(&index, &event("sync.failed", Some("alice"))),
            ["01", "02", "03", "04", "07"]
        );
        assert_eq!(ids(&index, &event("sync.ok", Some("alice"))), ["02"]);
        assert_eq!(ids(&index, &event("user.login", None)), ["08"]);
        assert!(ids(&index, &event("nothing", None)).is_empty());
        assert!(ids(&index, &event("é", None)).is_empty());
    }

    #[test]
    fn unrelated_triggers_are_not_examined() {
        // 10 000 exact triggers of other types and 1 000 globs with other prefixes.
        let mut all: Vec<Compiled> = (0..10_000)
            .map(|i| trigger(&format!("{i:05}"), json!({"type": format!("other.{i}")})))
            .collect();
        all.extend((0..1000).map(|i| trigger(&format!("g{i:04}"), json!({"type": format!("x{i}.*")}))));
        all.push(trigger("zz", json!({"type": "sync.*"})));
        let index = TriggerIndex::new(all);
        // Glob prefixes "x0." to "x999." and "sync.": lengths 3 to 5.
        assert_eq!(index.glob_prefix_lengths(), 3);
        let (found, cost) = index.matches_with_cost(&event("sync.failed", None));
        assert_eq!(found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["zz"]);
        assert_eq!(
            cost,
            MatchCost {
                lookups: 4,
                examined: 1
            },
            "only `sync.*` is a candidate of 11 001 triggers"
        );
        let (found, cost) = index.matches_with_cost(&event("other.42", None));
        assert_eq!(found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["00042"]);
        assert_eq!(cost.examined, 1, "{cost:?}");
        // Candidates that share the type are examined, and only they.
        let (found, cost) = index.matches_with_cost(&event("x7.ok", None));
        assert_eq!(found.len(), 1);
        assert_eq!(cost.examined, 1, "{cost:?}");
        let (found, cost) = index.matches_with_cost(&event("nothing.here", None));
        assert!(found.is_empty());
        assert_eq!(cost.examined, 0, "{cost:?}");
    }
}
