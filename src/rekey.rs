//! The `rekey` subcommand: opens the existing database and has
//! `connections::rekey` re-seal every stored credential under the first key
//! of the ring (safe while servers run, and to interrupt and run again).

use std::process::ExitCode;

use crate::config::StorageSettings;
use crate::connections::rekey;
use crate::store::{Store, StoreError};

/// The `rekey` subcommand. It never creates a database: a wrong
/// `DATABASE_URL` must not look like "nothing to re-seal".
pub async fn run(storage: &StorageSettings) -> ExitCode {
    let store = match Store::connect_existing(&storage.database_url, &storage.pool).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("error: DATABASE_URL: {error}");
            return ExitCode::from(match error {
                StoreError::Misconfigured(_) => crate::config::CONFIG_ERROR,
                _ => 1,
            });
        }
    };
    let result = rekey(&store, &storage.keys).await;
    store.close().await;
    match result {
        Ok(report) => {
            println!(
                "re-sealed {} credentials; {} could not be opened; {} were already under the first key",
                report.resealed, report.unopenable, report.already_current
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: rekey stopped: {error}; run it again to finish");
            ExitCode::FAILURE
        }
    }
}
