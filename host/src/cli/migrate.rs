//! `sundial migrate --from redb:DIR --to postgres://…`: move a single-node store into
//! an empty PostgreSQL database for cluster mode (docs/cluster.md).

use super::EXIT_USAGE;
use super::client::Failure;
use std::path::Path;

/// Copy the stopped store of `from` (`redb:DIR`) into the empty database `to`.
pub(crate) async fn migrate(from: &str, to: &str) -> Result<(), Failure> {
    let fail = |m: String| (EXIT_USAGE, m);
    let Some(dir) = from.strip_prefix("redb:").filter(|d| !d.is_empty()) else {
        return Err(fail(format!(
            "--from: {from:?} is not redb:DIR (the data directory of a stopped daemon)"
        )));
    };
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(fail(format!(
            "--to: {:?} is not a postgres:// URL",
            sundial_store::pg::redact_url(to)
        )));
    }
    let shown = sundial_store::pg::redact_url(to);
    let target = sundial_store::PgStore::connect(&sundial_store::PgOptions::new(to))
        .await
        .map_err(|e| fail(format!("opening {shown}: {e}")))?;
    let copied = sundial_store::migrate::redb_to_postgres(Path::new(dir), &target)
        .await
        .map_err(|e| fail(format!("migrating {dir} to {shown}: {e}")))?;
    println!("copied the store in {dir} to {shown}:");
    for (table, n) in &copied.rows {
        println!("  {table}: {n}");
    }
    for (table, n) in &copied.unreadable {
        println!("  left out of {table}: {n} record(s) that cannot be read");
    }
    println!(
        "Start the nodes with --store {shown}; give each the secret key ({dir}/secret.key, \
         or SUNDIAL_SECRET_KEY) and an admin token ({dir}/admin.token is still valid)."
    );
    Ok(())
}
