//! The PostgreSQL store against a real server: `SUNDIAL_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`, which `scripts/test` makes sure answers), a
//! fresh database per test, dropped at its end.

use super::*;
use crate::tokens::{Role, TokenRecord, TokenStore};

use super::testing::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_the_new_database_once() {
    let db = TestDb::new().await;
    let options = PgOptions::new(&db.url());
    let (a, b, c) = tokio::join!(
        PgStore::connect(&options),
        PgStore::connect(&options),
        PgStore::connect(&options)
    );
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(
        crate::MetaStore::schema_version(&a).unwrap(),
        schema::SCHEMA_VERSION as u64
    );
    let client = a.client().await.unwrap();
    let versions: i64 = client
        .query_one("SELECT count(*) FROM meta WHERE key = 'schema_version'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    assert!(crate::MetaStore::meta(&a, "created_at").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_a_newer_schema_is_refused() {
    let db = TestDb::new().await;
    let store = PgStore::connect(&PgOptions::new(&db.url())).await.unwrap();
    crate::MetaStore::set_meta(&store, "schema_version", "99")
        .await
        .unwrap();
    drop(store);
    match PgStore::connect(&PgOptions::new(&db.url())).await {
        Err(e @ StoreError::TooNew { found: 99, .. }) => {
            assert!(e.to_string().contains("upgrade Sundial"), "{e}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable_and_a_bad_url_invalid() {
    let mut options = PgOptions::new("postgres://postgres@127.0.0.1:1/none");
    options.timeout = std::time::Duration::from_secs(2);
    match PgStore::connect(&options).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("127.0.0.1:1"), "{m}"),
        Err(e) => panic!("expected unavailable, got {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    match PgStore::connect(&PgOptions::new(
        "postgres://user:hunter2@127.0.0.1:5432/x?bogus=1",
    ))
    .await
    {
        Err(e @ StoreError::Invalid(_)) => {
            assert!(!e.to_string().contains("hunter2"), "the password is shown: {e}")
        }
        Err(e) => panic!("expected invalid, got {e}"),
        Ok(_) => panic!("a bad URL was accepted"),
    }
    assert_eq!(
        redact_url("postgres://u:secret@h:5432/d"),
        "postgres://u:***@h:5432/d"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_names_stay_unique_and_the_last_admin_stays() {
    let db = TestDb::new().await;
    let store = PgStore::connect(&PgOptions::new(&db.url())).await.unwrap();
    let token = |name: &str, role| TokenRecord {
        id: sundial_core::ids::new_id(),
        name: name.into(),
        role,
        created_at: sundial_core::timestamp::now(),
    };
    store
        .insert_token("s1", token("admin", Role::Admin), "t")
        .await
        .unwrap();
    match store.insert_token("s2", token("admin", Role::Viewer), "t").await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("already exists"), "{m}"),
        other => panic!("a taken name: {other:?}"),
    }
    match store.revoke_token("admin", "t").await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("last admin"), "{m}"),
        other => panic!("the last admin: {other:?}"),
    }
    assert_eq!(store.token_count().unwrap(), 1);
    let found = store
        .token_by_hash(&crate::tokens::token_hash("s1"))
        .unwrap()
        .unwrap();
    assert_eq!(found.name, "admin");
}

/// Two nodes on one database: `a` with a lease of `lease`, `b` with the default.
async fn two_nodes(db: &TestDb, lease: std::time::Duration) -> (PgStore, PgStore) {
    let mut a = PgOptions::new(&db.url());
    a.node = "node-a".into();
    a.lease = lease;
    let mut b = PgOptions::new(&db.url());
    b.node = "node-b".into();
    (
        PgStore::connect(&a).await.unwrap(),
        PgStore::connect(&b).await.unwrap(),
    )
}

fn queued_run() -> sundial_core::run::Run {
    sundial_core::run::Run::queued(
        "task-1",
        "t",
        sundial_core::run::RunCause::Manual,
        serde_json::Value::Null,
        None,
        0,
        sundial_core::timestamp::now(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_starts_once_and_only_its_owner_records_its_end() {
    use crate::runs::RunStore;
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let run = a.enqueue_runs(vec![queued_run()]).await.unwrap().remove(0);
    // Both nodes try to start it: one does.
    let (sa, sb) = tokio::join!(
        a.start_run(&run.id, sundial_core::timestamp::now()),
        b.start_run(&run.id, sundial_core::timestamp::now())
    );
    let (owner, other, mut started) = match (sa.unwrap(), sb.unwrap()) {
        (Some(r), None) => (&a, &b, r),
        (None, Some(r)) => (&b, &a, r),
        (x, y) => panic!("started {} times", x.is_some() as u8 + y.is_some() as u8),
    };
    assert_eq!(started.attempt, 1);
    assert_eq!(
        owner
            .leases()
            .unwrap()
            .renew(std::slice::from_ref(&run.id))
            .await
            .unwrap(),
        vec![(run.id.clone(), false)]
    );
    // A cancel asked on the other node reaches the owner at its next renewal.
    assert!(other.leases().unwrap().request_cancel(&run.id).await.unwrap());
    assert_eq!(
        owner
            .leases()
            .unwrap()
            .renew(std::slice::from_ref(&run.id))
            .await
            .unwrap(),
        vec![(run.id.clone(), true)]
    );
    assert!(
        other
            .leases()
            .unwrap()
            .renew(std::slice::from_ref(&run.id))
            .await
            .unwrap()
            .is_empty()
    );
    started.status = sundial_core::run::RunStatus::Succeeded;
    started.finished_at = Some(sundial_core::timestamp::now());
    match other.save_run(started.clone()).await {
        Err(StoreError::Stale(m)) => assert!(m.contains("no longer this node's"), "{m}"),
        other => panic!("another node's completion was taken: {other:?}"),
    }
    let saved = owner.save_run(started).await.unwrap();
    assert_eq!(saved.status, sundial_core::run::RunStatus::Succeeded);
    // A finished run is nobody's: a second completion is refused too.
    match owner.save_run(saved).await {
        Err(StoreError::Stale(_)) => {}
        other => panic!("a second completion was taken: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_the_old_owner_cannot_record() {
    use crate::runs::RunStore;
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, std::time::Duration::from_millis(300)).await;
    let run = a.enqueue_runs(vec![queued_run()]).await.unwrap().remove(0);
    let mut started = a
        .start_run(&run.id, sundial_core::timestamp::now())
        .await
        .unwrap()
        .unwrap();
    // Alive and renewing: nobody takes it.
    assert!(
        b.leases()
            .unwrap()
            .take_expired(10, &[])
            .await
            .unwrap()
            .is_empty()
    );
    // `a` stops renewing (paused, partitioned, dead): once the lease is past, `b` takes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let taken = loop {
        let taken = b.leases().unwrap().take_expired(10, &[]).await.unwrap();
        if !taken.is_empty() {
            break taken;
        }
        assert!(std::time::Instant::now() < deadline, "never taken over");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].0.id, run.id);
    assert!(
        a.leases()
            .unwrap()
            .renew(std::slice::from_ref(&run.id))
            .await
            .unwrap()
            .is_empty(),
        "a's lease is gone"
    );
    // `a` comes back and tries to record its attempt: refused, nothing written.
    started.status = sundial_core::run::RunStatus::Succeeded;
    match a.save_run(started).await {
        Err(StoreError::Stale(m)) => assert!(m.contains("node-b"), "{m}"),
        other => panic!("a stale completion was recorded: {other:?}"),
    }
    // `b` settles it (here: back to the queue for a retry), and it can start again.
    let mut retry = taken.into_iter().next().unwrap().0;
    retry.status = sundial_core::run::RunStatus::Queued;
    b.save_run(retry).await.unwrap();
    let again = b
        .start_run(&run.id, sundial_core::timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempt, 2);
    assert_eq!(a.run(&run.id).unwrap().unwrap().attempt, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_left_waiting_are_offered_after_their_age() {
    use crate::runs::RunStore;
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let mut later = queued_run();
    later.not_before = Some(sundial_core::timestamp::text(
        chrono::Utc::now() + chrono::Duration::hours(1),
    ));
    let runs = a.enqueue_runs(vec![queued_run(), later]).await.unwrap();
    let age = std::time::Duration::from_millis(200);
    assert!(
        b.leases().unwrap().waiting(age, 10).await.unwrap().is_empty(),
        "too young"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let waiting = b.leases().unwrap().waiting(age, 10).await.unwrap();
    let ids: Vec<&str> = waiting.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec![runs[0].id.as_str()], "the due one only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_alone_keeps_a_second_run_of_a_task_from_starting_on_another_node() {
    use crate::runs::{RunStore, StartAlone};
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let runs = a.enqueue_runs(vec![queued_run(), queued_run()]).await.unwrap();
    let now = sundial_core::timestamp::now;
    let (x, y) = tokio::join!(
        a.leases().unwrap().start_alone(&runs[0].id, "task-1", now()),
        b.leases().unwrap().start_alone(&runs[1].id, "task-1", now())
    );
    let outcomes = [x.unwrap(), y.unwrap()];
    let started = outcomes
        .iter()
        .filter(|o| matches!(o, StartAlone::Started(_)))
        .count();
    let busy = outcomes
        .iter()
        .filter(|o| matches!(o, StartAlone::Busy(_)))
        .count();
    assert_eq!((started, busy), (1, 1), "{outcomes:?}");
    let running = a.leases().unwrap().running_of("task-1", "none").await.unwrap();
    assert_eq!(running.len(), 1);
    match b
        .leases()
        .unwrap()
        .start_alone(&running[0], "task-1", now())
        .await
        .unwrap()
    {
        StartAlone::Gone => {}
        other => panic!("a running run started again: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chains_budget_is_spent_once_for_the_whole_cluster() {
    use crate::runs::RunStore;
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let (la, lb) = (a.leases().unwrap(), b.leases().unwrap());
    assert_eq!(la.spend_chain("c", 4, 10).unwrap(), Ok(4));
    assert_eq!(
        lb.spend_chain("c", 6, 10).unwrap(),
        Ok(10),
        "the other node adds to it"
    );
    assert_eq!(
        la.spend_chain("c", 1, 10).unwrap(),
        Err(10),
        "over: refused, nothing spent"
    );
    assert_eq!(
        lb.spend_chain("d", 11, 10).unwrap(),
        Err(0),
        "one step larger than the budget"
    );
    assert_eq!(lb.spend_chain("d", 10, 10).unwrap(), Ok(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_applies_each_transition_with_the_checks_of_one_alone() {
    use super::batch::{Op, Reply, apply_all};
    use crate::runs::RunStore;
    use sundial_core::run::RunStatus;
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let now = sundial_core::timestamp::now;
    let (r1, r2) = (queued_run(), queued_run());
    let commits = a.stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    // Queued and started in one transaction; the second start of r1 finds it running,
    // a start of a run that does not exist is that op's error only.
    let replies = apply_all(
        &a,
        vec![
            Op::Enqueue(vec![r1.clone(), r2.clone()]),
            Op::Start {
                id: r1.id.clone(),
                now: now(),
            },
            Op::Start {
                id: r1.id.clone(),
                now: now(),
            },
            Op::Start {
                id: "nope".into(),
                now: now(),
            },
        ],
    )
    .await;
    assert_eq!(
        a.stats().commits.load(std::sync::atomic::Ordering::Relaxed),
        commits + 1
    );
    let mut replies = replies.into_iter();
    assert!(matches!(replies.next(), Some(Ok(Reply::Runs(r))) if r.len() == 2));
    let Some(Ok(Reply::Started(Some(mut started)))) = replies.next() else {
        panic!("r1 did not start")
    };
    assert_eq!((started.attempt, started.status), (1, RunStatus::Running));
    assert!(matches!(replies.next(), Some(Ok(Reply::Started(None)))));
    assert!(matches!(replies.next(), Some(Err(StoreError::NotFound(_)))));
    // The owner's columns are the ones a lone start writes: renewals find it.
    assert_eq!(
        a.leases()
            .unwrap()
            .renew(std::slice::from_ref(&r1.id))
            .await
            .unwrap(),
        vec![(r1.id.clone(), false)]
    );
    assert!(b.leases().unwrap().request_cancel(&r1.id).await.unwrap());
    // Another node's end, the owner's end, a second end: only the owner's, once.
    started.status = RunStatus::Succeeded;
    started.finished_at = Some(now());
    let replies = apply_all(&b, vec![Op::Save(started.clone(), Vec::new())]).await;
    assert!(matches!(&replies[0], Err(StoreError::Stale(m)) if m.contains("node-a")));
    let replies = apply_all(
        &a,
        vec![
            Op::Save(started.clone(), Vec::new()),
            Op::Save(started.clone(), Vec::new()),
        ],
    )
    .await;
    assert!(matches!(&replies[0], Ok(Reply::Saved(r, _)) if r.status == RunStatus::Succeeded));
    assert!(matches!(&replies[1], Err(StoreError::Stale(_))));
    let client = a.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT status, owner, attempt, lease_until IS NULL, cancel FROM runs WHERE id = $1",
            &[&r1.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "succeeded");
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<i32>>(2), None);
    assert!(row.get::<_, bool>(3));
    assert!(
        !row.get::<_, bool>(4),
        "a cancel asked of an ended attempt is void"
    );
    assert_eq!(a.run(&r1.id).unwrap().unwrap().status, RunStatus::Succeeded);
    // A queued run that a batch cannot insert (its id is taken) fails alone: the batch
    // is split and the others are queued.
    let r3 = queued_run();
    let replies = apply_all(
        &a,
        vec![Op::Enqueue(vec![r2.clone()]), Op::Enqueue(vec![r3.clone()])],
    )
    .await;
    assert!(
        matches!(&replies[0], Err(StoreError::Conflict(_))),
        "{:?}",
        replies[0].as_ref().err()
    );
    assert!(matches!(&replies[1], Ok(Reply::Runs(_))));
    assert_eq!(a.run(&r3.id).unwrap().unwrap().status, RunStatus::Queued);
    // Through the store's own batcher, concurrently: every run starts once.
    let runs: Vec<_> = (0..64).map(|_| queued_run()).collect();
    a.enqueue_runs(runs.clone()).await.unwrap();
    let starts = runs.iter().flat_map(|r| [(&a, r.id.clone()), (&b, r.id.clone())]);
    let results = futures::future::join_all(
        starts.map(|(s, id)| async move { s.start_run(&id, now()).await.unwrap() }),
    )
    .await;
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), runs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_node_holding_a_deliverys_claim_records_its_attempt() {
    use crate::webhooks::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookStore};
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let queued = Delivery {
        id: sundial_core::ids::new_id(),
        webhook_id: "hook-1".into(),
        webhook_name: "hook".into(),
        status: DeliveryStatus::Queued,
        created_at: sundial_core::timestamp::now(),
        finished_at: None,
        next_attempt_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        attempts: Vec::new(),
        event: None,
        event_seq: None,
        run: None,
        trigger: None,
        cause: "run".into(),
        depth: 0,
        root: None,
        error: None,
    };
    a.save_delivery(queued.clone(), None, Vec::new()).await.unwrap();
    let attempted = |mut d: Delivery, by: &str| {
        d.attempts.push(DeliveryAttempt {
            number: d.attempts.len() as u32 + 1,
            at: format!("{} by {by}", sundial_core::timestamp::now()),
            status_code: Some(200),
            latency_ms: 1,
            response: None,
            error: None,
        });
        d.status = DeliveryStatus::Delivered;
        d.next_attempt_at = None;
        d
    };
    // `a` claims it with a hold that runs out; `b` claims it again and records first.
    let by_a = a
        .claim_delivery(queued.clone(), std::time::Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let by_b = b
        .claim_delivery(queued.clone(), std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(
        a.claim_delivery(queued.clone(), std::time::Duration::ZERO)
            .await
            .unwrap()
            .is_none(),
        "b holds it"
    );
    // `a` comes back while `b`'s attempt is under way: not its claim any more.
    match a
        .save_delivery(attempted(by_a.clone(), "a"), None, Vec::new())
        .await
    {
        Err(StoreError::Stale(m)) => assert!(m.contains("node-b claimed it since"), "{m}"),
        other => panic!("a stale attempt was recorded: {other:?}"),
    }
    b.save_delivery(attempted(by_b, "b"), None, Vec::new())
        .await
        .unwrap();
    // ... or after `b` recorded it: `a` does not know of `b`'s attempt.
    match a.save_delivery(attempted(by_a, "a"), None, Vec::new()).await {
        Err(StoreError::Stale(m)) => assert!(m.contains("does not know of"), "{m}"),
        other => panic!("a stale attempt overwrote another: {other:?}"),
    }
    let stored = a.delivery(&queued.id).unwrap().unwrap();
    assert_eq!(stored.attempts.len(), 1);
    assert!(stored.attempts[0].at.ends_with("by b"));
    // A replay (no new attempt) is written whoever holds the claim.
    let mut replay = stored.clone();
    replay.status = DeliveryStatus::Queued;
    replay.next_attempt_at = Some(chrono::Utc::now());
    a.save_delivery(replay, None, Vec::new()).await.unwrap();
    assert_eq!(
        b.delivery(&queued.id).unwrap().unwrap().status,
        DeliveryStatus::Queued
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_another_node_stops_working_here() {
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    let token = |name: &str, role| TokenRecord {
        id: sundial_core::ids::new_id(),
        name: name.into(),
        role,
        created_at: sundial_core::timestamp::now(),
    };
    a.insert_token("admin-secret", token("admin", Role::Admin), "t")
        .await
        .unwrap();
    a.insert_token("ops-secret", token("ops", Role::Operator), "t")
        .await
        .unwrap();
    let hash = crate::tokens::token_hash("ops-secret");
    // `a` has read it (and keeps a copy); `b` revokes it.
    assert!(a.token_by_hash(&hash).unwrap().is_some());
    assert!(a.token_by_hash(&hash).unwrap().is_some());
    b.revoke_token("ops", "t").await.unwrap();
    // `b` reads its own write at once; `a` once the notice arrives (well within the
    // copies' 1 s life; the deadline only bounds a failing test).
    assert!(b.token_by_hash(&hash).unwrap().is_none());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.token_by_hash(&hash).unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked token still works on a"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A task changed on `b` is seen changed on `a` the same way.
    use crate::tasks::TaskStore;
    // A webhook-action task needs no installed plugin.
    let record = crate::tasks::TaskRecord {
        id: sundial_core::ids::new_id(),
        created_at: String::new(),
        updated_at: String::new(),
        spec: serde_json::from_value(serde_json::json!({"name": "job", "webhook": "w"})).unwrap(),
    };
    a.insert_task(record, "t").await.unwrap();
    assert!(a.task("job").unwrap().unwrap().spec.enabled);
    b.update_task(
        "job",
        Box::new(|s| s.enabled = false),
        sundial_core::timestamp::now(),
        "t",
    )
    .await
    .unwrap();
    while a.task("job").unwrap().unwrap().spec.enabled {
        assert!(
            std::time::Instant::now() < deadline,
            "the disabled task is still enabled on a"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_first_schema_is_brought_to_the_current_one() {
    let db = TestDb::new().await;
    {
        // A database as the first release left it: schema 1, with a delivery in it.
        let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(schema::MIGRATIONS[0]).await.unwrap();
        client
            .batch_execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', '1');
                 INSERT INTO deliveries (id, webhook_id, status, doc) VALUES ('d1', 'w1', 'delivered', '{}')",
            )
            .await
            .unwrap();
    }
    let store = PgStore::connect(&PgOptions::new(&db.url())).await.unwrap();
    assert_eq!(
        crate::MetaStore::schema_version(&store).unwrap(),
        schema::SCHEMA_VERSION as u64
    );
    let client = store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM deliveries WHERE id = 'd1' AND claimed_by IS NULL),
                    to_regclass('runs_by_owner') IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "the delivery is kept, unclaimed");
    assert!(row.get::<_, bool>(1), "schema 2 drops the index by owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_atomic_and_leave_a_claimed_delivery_to_its_attempt() {
    use crate::webhooks::{DeliveryStatus, WebhookStore};
    let db = TestDb::new().await;
    let (a, b) = two_nodes(&db, DEFAULT_LEASE).await;
    crate::replay_contract::check(&a).await;
    // `b` is attempting it: `a`'s replay neither makes it due (a third node could then
    // send it beside `b`) nor changes it.
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let d = crate::replay_contract::delivery(DeliveryStatus::Queued, Some(past), 0);
    a.enqueue_deliveries(vec![d.clone()]).await.unwrap();
    b.claim_delivery(d.clone(), std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("due and queued");
    let replayed = a.requeue_delivery(&d.id, chrono::Utc::now()).await.unwrap();
    assert_eq!(replayed, a.delivery(&d.id).unwrap().unwrap());
    assert!(
        a.claim_delivery(d.clone(), std::time::Duration::ZERO)
            .await
            .unwrap()
            .is_none(),
        "b still holds it"
    );
    // A claim left on a delivery that then died without an attempt (its webhook was
    // disabled while it waited): no due time, `claimed_by` still set. Replayed normally.
    let d = crate::replay_contract::delivery(DeliveryStatus::Queued, Some(past), 0);
    a.enqueue_deliveries(vec![d.clone()]).await.unwrap();
    let mut died = b
        .claim_delivery(d.clone(), std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("due and queued");
    died.status = DeliveryStatus::Dead;
    died.next_attempt_at = None;
    died.error = Some("the webhook is disabled".into());
    b.save_delivery(died, None, Vec::new()).await.unwrap();
    let replayed = a.requeue_delivery(&d.id, chrono::Utc::now()).await.unwrap();
    assert_eq!(replayed.status, DeliveryStatus::Queued);
    assert!(
        a.claim_delivery(d.clone(), std::time::Duration::ZERO)
            .await
            .unwrap()
            .is_some()
    );
}

/// A resend of an event whose stored copy no longer decodes is a duplicate all the
/// same, as on redb: the call it came in with succeeds and stores its other events,
/// and a resend of a readable one beside it still gets the copy stored first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_of_an_unreadable_event_is_a_duplicate_not_an_error() {
    use crate::events::{EventStore, tests::planned};
    let db = TestDb::new().await;
    let store = PgStore::connect(&PgOptions::new(&db.url())).await.unwrap();
    let first = store
        .ingest_events(vec![
            planned("a", "2026-11-01T00:00:00.000Z"),
            planned("c", "2026-11-01T00:00:00.000Z"),
        ])
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let changed = client
        .execute(
            "UPDATE events SET doc = '{not json' WHERE seq = $1",
            &[&first[0].record.seq],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let again = store
        .ingest_events(vec![
            planned("b", "2026-11-02T00:00:00.000Z"),
            planned("a", "2026-11-02T00:00:00.000Z"),
            planned("c", "2026-11-02T00:00:00.000Z"),
        ])
        .await
        .unwrap();
    let duplicate: Vec<bool> = again.iter().map(|s| s.duplicate).collect();
    assert_eq!(duplicate, [false, true, true]);
    assert_eq!(again[1].record.event.id, "a");
    assert_eq!(
        (again[2].record.seq.as_str(), again[2].record.received_at.as_str()),
        (first[1].record.seq.as_str(), "2026-11-01T00:00:00.000Z"),
        "c is answered with its first copy"
    );
    let b = store.event(&again[0].record.seq).unwrap().expect("b is stored");
    assert_eq!(b.event.id, "b");
}
