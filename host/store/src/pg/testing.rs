//! A PostgreSQL database of its own for a test: on the server at `SUNDIAL_TEST_PG`
//! (default `postgres://postgres@127.0.0.1:5432`, which `scripts/test` makes sure
//! answers), dropped when the test ends.

fn server() -> String {
    std::env::var("SUNDIAL_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own for one test; dropped (connections cut) when this goes.
pub(crate) struct TestDb {
    name: String,
}

impl TestDb {
    /// Create it.
    pub(crate) async fn new() -> TestDb {
        let name = format!("sundial_s_{}", sundial_core::ids::new_id().to_lowercase());
        admin(&format!("CREATE DATABASE {name}")).await;
        TestDb { name }
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", server(), self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // A thread of its own: the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(admin(&sql))
        })
        .join();
    }
}

async fn admin(sql: &str) {
    let (client, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server()), tokio_postgres::NoTls)
            .await
            .expect("the test PostgreSQL server answers (scripts/test starts one)");
    tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
}
