//! Store write throughput through the group-commit writer: durable commits of
//! run-sized JSON records, by one writer at a time and by 64 concurrent writers.
//!
//! Run: `cargo bench -p sundial --bench store`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::TableDefinition;
use sundial_store::prelude::*;
use sundial_store::{Store, StoreError};

const BENCH: TableDefinition<&str, &[u8]> = TableDefinition::new("bench");

async fn put(store: &Store, key: String, value: &'static [u8]) {
    store
        .write(move |txn| {
            txn.open_table(BENCH)?.insert(key.as_str(), value)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

fn group_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1024).unwrap();
    // About the size of a finished echo run record.
    let value: &'static [u8] = Box::leak(vec![b'x'; 600].into_boxed_slice());
    let mut group = c.benchmark_group("store_durable_writes");
    for writers in [1usize, 64] {
        group.throughput(Throughput::Elements(writers as u64));
        group.bench_function(format!("{writers}_concurrent"), |b| {
            b.to_async(&rt).iter(|| {
                let store = store.clone();
                async move {
                    let mut tasks = Vec::with_capacity(writers);
                    for _ in 0..writers {
                        let store = store.clone();
                        tasks.push(tokio::spawn(async move {
                            put(&store, sundial_core::ids::new_id(), value).await
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
            })
        });
    }
    group.finish();
    let stats = store.stats();
    eprintln!(
        "mutations per commit over the whole benchmark: {:.1}",
        stats.mutations_per_commit()
    );
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
