//! `rekey`: re-seals every stored credential under the first key of the ring,
//! in the current form (its credentials subkey; see `crate::crypto`).
//! It goes in id order in batches and swaps each row only if it is unchanged
//! since it was read, so it is safe while servers run, and safe to interrupt
//! and run again (rows already under the first key are skipped).

use std::process::ExitCode;

use crate::config::StorageSettings;
use crate::connections::{aad, Field};
use crate::crypto::{KeyRing, Purpose, Sealer};
use crate::store::{ConnectionRow, Store, StoreError};

const BATCH: i64 = 200;
/// A row that keeps changing under us (refreshing constantly) is tried this often.
const ATTEMPTS: usize = 3;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub resealed: u64,
    pub unopenable: u64,
    pub already_current: u64,
}

pub async fn rekey(store: &Store, keys: &KeyRing) -> Result<RekeyReport, StoreError> {
    let keys = &keys.sealer(Purpose::Credentials);
    let mut report = RekeyReport::default();
    let mut after = None;
    loop {
        let batch = store.connections_after(after.as_ref(), BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.clone());
        for row in batch {
            reseal_row(store, keys, row, &mut report).await?;
        }
    }
    Ok(report)
}

async fn reseal_row(
    store: &Store,
    keys: &Sealer,
    mut row: ConnectionRow,
    report: &mut RekeyReport,
) -> Result<(), StoreError> {
    for _ in 0..ATTEMPTS {
        let current = keys.is_current(&row.sealed_access_token)
            && row
                .sealed_refresh_token
                .as_deref()
                .is_none_or(|r| keys.is_current(r));
        if current {
            report.already_current += 1;
            return Ok(());
        }
        let access = keys.open(&row.sealed_access_token, &aad(&row.id, Field::Access));
        let refresh = row
            .sealed_refresh_token
            .as_deref()
            .map(|sealed| keys.open(sealed, &aad(&row.id, Field::Refresh)))
            .transpose();
        let (Ok(access), Ok(refresh)) = (access, refresh) else {
            tracing::warn!(connection = %row.id, "cannot open this credential with any configured key; left as it is");
            report.unopenable += 1;
            return Ok(());
        };
        let new_access = keys.seal(&access, &aad(&row.id, Field::Access));
        let new_refresh = refresh.map(|r| keys.seal(&r, &aad(&row.id, Field::Refresh)));
        if store
            .reseal_connection(
                &row.id,
                &row.sealed_access_token,
                &new_access,
                new_refresh.as_deref(),
            )
            .await?
        {
            report.resealed += 1;
            return Ok(());
        }
        // Refreshed or deleted meanwhile: read it again.
        match store.get_connection(&row.id).await? {
            Some(fresh) => row = fresh,
            None => return Ok(()),
        }
    }
    tracing::warn!(connection = %row.id, "changed on every attempt; run rekey again");
    Ok(())
}

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
