//! Re-sealing every stored credential under the first key of the ring, in
//! the current form (its credentials subkey; see `crate::crypto`), for the
//! `rekey` subcommand. It goes in id order in batches and swaps each row
//! only if it is unchanged since it was read, so it is safe while servers
//! run, and safe to interrupt and run again (rows already under the first
//! key are skipped).

use super::sealing::{open_field, seal_field, Field};
use crate::crypto::{KeyRing, Purpose, Sealer};
use crate::store::{ConnectionFilter, ConnectionRow, Store, StoreError};

const BATCH: i64 = 200;
/// A row that keeps changing under us (refreshing constantly) is tried this often.
const ATTEMPTS: usize = 3;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub resealed: u64,
    pub unopenable: u64,
    pub already_current: u64,
}

/// Re-seals every credential in `store` under the first key of `keys`.
pub async fn rekey(store: &Store, keys: &KeyRing) -> Result<RekeyReport, StoreError> {
    let keys = &keys.sealer(Purpose::Credentials);
    let mut report = RekeyReport::default();
    let mut after = None;
    loop {
        let batch = store
            .find_connections(&ConnectionFilter::default(), after.as_ref(), BATCH)
            .await?
            .connections;
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
        let access = open_field(keys, &row.id, Field::Access, &row.sealed_access_token);
        let refresh = row
            .sealed_refresh_token
            .as_deref()
            .map(|sealed| open_field(keys, &row.id, Field::Refresh, sealed))
            .transpose();
        let (Ok(access), Ok(refresh)) = (access, refresh) else {
            tracing::warn!(connection = %row.id, "cannot open this credential with any configured key; left as it is");
            report.unopenable += 1;
            return Ok(());
        };
        let new_access = seal_field(keys, &row.id, Field::Access, &access);
        let new_refresh = refresh.map(|r| seal_field(keys, &row.id, Field::Refresh, &r));
        if store
            .reseal_connection(&row.id, row.generation, &new_access, new_refresh.as_deref())
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
