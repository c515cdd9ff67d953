//! Model-based property test of the store: random sequences of task and schedule
//! mutations (create, rename, delete, link, unlink, forced and refused deletes) and
//! reopenings, checked after every step against a plain in-memory model.

use super::Store;
use super::StoreError;
use super::prelude::*;
use super::schedules::ScheduleRecord;
use super::tasks::TaskRecord;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
enum Op {
    CreateTask(u8),
    RenameTask(u8, u8),
    DeleteTask(u8),
    CreateSchedule(u8),
    Link(u8, u8),
    Unlink(u8, u8),
    DeleteSchedule(u8, bool),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0u8..6;
    prop_oneof![
        3 => n.clone().prop_map(Op::CreateTask),
        1 => (n.clone(), n.clone()).prop_map(|(a, b)| Op::RenameTask(a, b)),
        1 => n.clone().prop_map(Op::DeleteTask),
        2 => n.clone().prop_map(Op::CreateSchedule),
        3 => (n.clone(), n.clone()).prop_map(|(s, t)| Op::Link(s, t)),
        1 => (n.clone(), n.clone()).prop_map(|(s, t)| Op::Unlink(s, t)),
        1 => (n.clone(), any::<bool>()).prop_map(|(s, f)| Op::DeleteSchedule(s, f)),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default, Debug)]
struct Model {
    /// Task name -> id.
    tasks: BTreeMap<String, String>,
    /// Schedule name -> id.
    schedules: BTreeMap<String, String>,
    /// (schedule id, task id).
    links: BTreeSet<(String, String)>,
}

fn task_name(i: u8) -> String {
    format!("task-{i}")
}

fn schedule_name(i: u8) -> String {
    format!("sched-{i}")
}

fn task(name: &str) -> TaskRecord {
    TaskRecord {
        id: sundial_core::ids::new_id(),
        created_at: String::new(),
        updated_at: String::new(),
        // A webhook-action task needs no installed plugin.
        spec: serde_json::from_value(serde_json::json!({"name": name, "webhook": "w"})).unwrap(),
    }
}

fn schedule(name: &str) -> ScheduleRecord {
    ScheduleRecord {
        id: sundial_core::ids::new_id(),
        created_at: String::new(),
        updated_at: String::new(),
        spec: serde_json::from_value(serde_json::json!({"name": name, "rule": {"cron": "0 3 * * *"}}))
            .unwrap(),
        last_slot: None,
    }
}

/// What kind of answer a step got: Ok, or the error's kind.
fn kind<T>(r: &Result<T, StoreError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(StoreError::Conflict(_)) => "conflict",
        Err(StoreError::NotFound(_)) => "not_found",
        Err(_) => "other",
    }
}

/// What the model answers to creating `name` as `id`: a conflict when the name is taken.
fn create(names: &mut BTreeMap<String, String>, name: String, id: String) -> &'static str {
    match names.entry(name) {
        std::collections::btree_map::Entry::Occupied(_) => "conflict",
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(id);
            "ok"
        }
    }
}

async fn step(store: &dyn Storage, m: &mut Model, op: &Op) -> Result<(), String> {
    let (got, want) = match op {
        Op::CreateTask(i) => {
            let rec = task(&task_name(*i));
            let want = create(&mut m.tasks, task_name(*i), rec.id.clone());
            (kind(&store.insert_task(rec, "t").await), want)
        }
        Op::RenameTask(a, b) => {
            let (from, to) = (task_name(*a), task_name(*b));
            let r = store
                .update_task(
                    &from,
                    {
                        let to = to.clone();
                        Box::new(move |s| s.name = to)
                    },
                    String::new(),
                    "t",
                )
                .await;
            let want = match (m.tasks.get(&from).cloned(), m.tasks.contains_key(&to)) {
                (None, _) => "not_found",
                (Some(_), _) if from == to => "ok",
                (Some(_), true) => "conflict",
                (Some(id), false) => {
                    m.tasks.remove(&from);
                    m.tasks.insert(to, id);
                    "ok"
                }
            };
            (kind(&r), want)
        }
        Op::DeleteTask(i) => {
            let r = store.delete_task(&task_name(*i), "t").await;
            let want = match m.tasks.remove(&task_name(*i)) {
                None => "not_found",
                Some(id) => {
                    m.links.retain(|(_, t)| *t != id);
                    "ok"
                }
            };
            (kind(&r), want)
        }
        Op::CreateSchedule(i) => {
            let rec = schedule(&schedule_name(*i));
            let want = create(&mut m.schedules, schedule_name(*i), rec.id.clone());
            (kind(&store.insert_schedule(rec, "t").await), want)
        }
        Op::Link(s, t) | Op::Unlink(s, t) => {
            let attach = matches!(op, Op::Link(..));
            let r = store
                .link_task(&schedule_name(*s), &task_name(*t), attach, "t")
                .await;
            let want = match (m.schedules.get(&schedule_name(*s)), m.tasks.get(&task_name(*t))) {
                (Some(sid), Some(tid)) => {
                    let key = (sid.clone(), tid.clone());
                    if attach {
                        m.links.insert(key);
                        "ok"
                    } else if m.links.remove(&key) {
                        "ok"
                    } else {
                        "not_found"
                    }
                }
                _ => "not_found",
            };
            (kind(&r), want)
        }
        Op::DeleteSchedule(i, force) => {
            let r = store.delete_schedule(&schedule_name(*i), *force, "t").await;
            let want = match m.schedules.get(&schedule_name(*i)).cloned() {
                None => "not_found",
                Some(id) => {
                    let linked = m.links.iter().any(|(s, _)| *s == id);
                    if linked && !force {
                        "conflict"
                    } else {
                        m.links.retain(|(s, _)| *s != id);
                        m.schedules.remove(&schedule_name(*i));
                        "ok"
                    }
                }
            };
            (kind(&r), want)
        }
        Op::Reopen => ("ok", "ok"),
    };
    if got != want {
        return Err(format!("{op:?}: store answered {got}, the model expected {want}"));
    }
    Ok(())
}

/// The store's records, by name, are the model's (both ways: every one of the model is
/// stored, and nothing else is), and each name resolves to its id.
fn same_names(
    noun: &str,
    stored: BTreeMap<String, String>,
    model: &BTreeMap<String, String>,
    resolve: impl Fn(&str) -> Result<Option<String>, StoreError>,
) -> Result<(), String> {
    if stored != *model {
        return Err(format!("{noun}s {stored:?} != model {model:?}"));
    }
    for (name, id) in model {
        let got = resolve(name).map_err(|e| e.to_string())?;
        if got.as_ref() != Some(id) {
            return Err(format!("{noun} {name} resolves to {got:?}, not {id}"));
        }
    }
    Ok(())
}

/// The store's state equals the model's.
fn check(store: &dyn Storage, m: &Model) -> Result<(), String> {
    let (tasks, _) = store.tasks_page(None, 1000).map_err(|e| e.to_string())?;
    let names = tasks.into_iter().map(|t| (t.spec.name, t.id)).collect();
    same_names("task", names, &m.tasks, |name| {
        Ok(store.task(name)?.map(|t| t.id))
    })?;
    let (schedules, _) = store.schedules_page(None, 1000).map_err(|e| e.to_string())?;
    let names = schedules.into_iter().map(|s| (s.spec.name, s.id)).collect();
    same_names("schedule", names, &m.schedules, |name| {
        Ok(store.schedule(name)?.map(|s| s.id))
    })?;
    for (name, id) in &m.schedules {
        let linked: BTreeSet<String> = store
            .schedule_tasks(id)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let want: BTreeSet<String> = m
            .links
            .iter()
            .filter(|(s, _)| s == id)
            .map(|(_, t)| t.clone())
            .collect();
        if linked != want {
            return Err(format!("schedule {name} drives {linked:?}, model {want:?}"));
        }
    }
    Ok(())
}

/// Open the store again once the previous handle's writer thread has let go of it.
async fn reopen(dir: &std::path::Path) -> Result<Store, String> {
    let mut last = String::new();
    for _ in 0..200 {
        match Store::open(dir, 64) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Err(format!("reopening: {last}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_mutations_match_a_model(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let result: Result<(), String> = rt.block_on(async {
            let mut store = Store::open(dir.path(), 64).map_err(|e| e.to_string())?;
            let mut model = Model::default();
            for op in &ops {
                if matches!(op, Op::Reopen) {
                    drop(store);
                    store = reopen(dir.path()).await?;
                }
                step(&store, &mut model, op).await?;
                check(&store, &model)?;
            }
            Ok(())
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

proptest! {
    // Fewer cases: each makes a database on the PostgreSQL server.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The same model against the PostgreSQL store; `Reopen` is a node stopping and
    /// another connecting.
    #[test]
    fn postgres_store_mutations_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let result: Result<(), String> = rt.block_on(async {
            let db = crate::pg::testing::TestDb::new().await;
            let connect = || async {
                crate::PgStore::connect(&crate::PgOptions::new(&db.url()))
                    .await
                    .map_err(|e| e.to_string())
            };
            let mut store = connect().await?;
            let mut model = Model::default();
            for op in &ops {
                if matches!(op, Op::Reopen) {
                    drop(store);
                    store = connect().await?;
                }
                step(&store, &mut model, op).await?;
                check(&store, &model)?;
            }
            Ok(())
        });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
