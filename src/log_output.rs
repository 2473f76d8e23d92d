//! Where log lines go: stderr. The one line per request is collected and
//! written in batches, so that a busy server makes one `write` per many
//! requests rather than one per request (it showed as a fifth of the
//! per-request cost). Every other line, and any line at WARN or above, is
//! written at once, after whatever is collected before it, so lines keep
//! their order and what an operator waits for is never held back.
//!
//! Collected lines are written when they reach `BATCH_BYTES`, at least every
//! `BATCH_DELAY` by a small thread, and when the program ends (`flush`).

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Collected request lines are written once they hold this much.
const BATCH_BYTES: usize = 16 * 1024;
/// Or at the latest after this long.
const BATCH_DELAY: Duration = Duration::from_millis(200);

/// The target whose INFO lines are collected: the request log's.
const BATCHED_TARGET: &str = "emailoctopus_connect::request_log";

/// Stderr with the request log batched. Cheap to clone.
#[derive(Clone, Default)]
pub struct LogOutput {
    collected: Arc<Mutex<Vec<u8>>>,
}

impl LogOutput {
    /// A writer whose collected lines are written at least every `BATCH_DELAY`.
    pub fn start() -> Self {
        let output = Self::default();
        let flusher = output.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || loop {
                std::thread::sleep(BATCH_DELAY);
                flusher.flush();
            })
            .expect("a thread starts");
        output
    }

    /// Writes what is collected. Call before the program ends.
    pub fn flush(&self) {
        write_out(&mut self.lock());
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves at worst a partial line.
        self.collected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes `collected` to stderr and empties it. A failed write (a closed
/// stderr) drops the lines: there is nowhere else to say so.
fn write_out(collected: &mut Vec<u8>) {
    if !collected.is_empty() {
        let _ = io::stderr().lock().write_all(collected);
        collected.clear();
    }
}

/// One event's line: `fmt` writes it whole, then drops the writer.
pub struct Line<'a> {
    output: &'a LogOutput,
    batched: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut collected = self.output.lock();
        collected.extend_from_slice(line);
        if !self.batched || collected.len() >= BATCH_BYTES {
            write_out(&mut collected);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogOutput {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            output: self,
            batched: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            output: self,
            batched: meta.target() == BATCHED_TARGET && *meta.level() >= Level::INFO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many bytes are collected after `log` runs under a subscriber
    /// that writes to `output`.
    fn collected_after(output: &LogOutput, log: impl FnOnce()) -> usize {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(output.clone())
            .with_max_level(Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        output.lock().len()
    }

    #[test]
    fn request_lines_are_collected_and_any_other_line_writes_everything_out() {
        let output = LogOutput::default();
        let one = collected_after(&output, || {
            tracing::info!(target: BATCHED_TARGET, "request");
        });
        assert!(one > 0);
        let two = collected_after(&output, || {
            tracing::info!(target: BATCHED_TARGET, "request");
        });
        assert_eq!(two, 2 * one);
        // A failed request, or a line of any other kind, goes out at once
        // with what was collected before it.
        let after_warning = collected_after(&output, || {
            tracing::warn!(target: BATCHED_TARGET, "request failed");
        });
        assert_eq!(after_warning, 0);
        collected_after(
            &output,
            || tracing::info!(target: BATCHED_TARGET, "request"),
        );
        let after_other = collected_after(&output, || tracing::info!("connected"));
        assert_eq!(after_other, 0);
    }

    #[test]
    fn a_full_batch_is_written_out() {
        let output = LogOutput::default();
        let mut most = 0;
        for _ in 0..1000 {
            let now = collected_after(&output, || {
                tracing::info!(target: BATCHED_TARGET, "request");
            });
            assert!(now < BATCH_BYTES);
            most = most.max(now);
        }
        assert!(most > BATCH_BYTES / 2, "it did collect: {most}");
    }
}
