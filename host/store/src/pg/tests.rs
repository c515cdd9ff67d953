//! The PostgreSQL store against a real server: `SUNDIAL_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`, which `scripts/test` makes sure answers), a
//! fresh database per test, dropped at its end.

use super::*;
use crate::tokens::{Role, TokenRecord, TokenStore};

use super::testing::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_is_migrated_and_a_second_node_is_refused_clearly() {
    let db = TestDb::new().await;
    let options = PgOptions::new(&db.url());
    let (a, b) = tokio::join!(PgStore::connect(&options), PgStore::connect(&options));
    let (store, refused) = match (a, b) {
        (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
        (Ok(_), Ok(_)) => panic!("two nodes on one database were both let in"),
        (Err(a), Err(b)) => panic!("neither node started: {a}; {b}"),
    };
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused}");
    assert!(refused.to_string().contains("another Sundial node"), "{refused}");
    assert_eq!(
        crate::MetaStore::schema_version(&store).unwrap(),
        schema::SCHEMA_VERSION as u64
    );
    assert!(crate::MetaStore::meta(&store, "created_at").unwrap().is_some());
    // The lock goes with the node: once it is gone another starts.
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match PgStore::connect(&PgOptions::new(&db.url())).await {
            Ok(_) => break,
            Err(StoreError::Conflict(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => panic!("the next node did not start: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_a_newer_schema_is_refused() {
    let db = TestDb::new().await;
    let store = PgStore::connect(&PgOptions::new(&db.url())).await.unwrap();
    crate::MetaStore::set_meta(&store, "schema_version", "99")
        .await
        .unwrap();
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match PgStore::connect(&PgOptions::new(&db.url())).await {
            Err(StoreError::Conflict(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e @ StoreError::TooNew { found: 99, .. }) => {
                assert!(e.to_string().contains("upgrade Sundial"), "{e}");
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
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
