//! Work that must finish once begun, whoever was waiting for it.

use std::future::Future;

/// Runs `work` in a task of its own and waits for it. If the caller goes
/// away meanwhile (a browser closes, a client times out), the work still
/// finishes: a code exchanged or a refresh token rotated is stored, a grant
/// is revoked. A panic in the work is the caller's panic again, so it is
/// caught and answered where any other would be.
pub async fn run_to_completion<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> T {
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(failed) => std::panic::resume_unwind(failed.into_panic()),
    }
}
