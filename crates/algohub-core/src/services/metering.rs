//! Usage metering with group commit.
//!
//! Design: a call hands its usage record to one background writer and waits
//! until the record is committed; only then does its response go out, so a
//! response the client received always has its record, even if the process is
//! killed right after. The writer takes everything queued while the previous
//! transaction ran and commits it as one batch (group commit), so metering
//! costs one transaction per batch, not per call. Records are keyed by request
//! id and inserted with `ON CONFLICT DO NOTHING`, so a retried batch never
//! counts a call twice.

use super::Hub;
use crate::error::{Code, Error, Result};
use crate::model::UsageRecord;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 1000;
/// Attempts per batch before its calls are answered with an error.
const ATTEMPTS: u32 = 4;

type Ack = oneshot::Sender<bool>;

pub(crate) struct Meter {
    tx: mpsc::UnboundedSender<(UsageRecord, Ack)>,
}

impl Meter {
    /// Starts the writer task (it stops when the meter is dropped).
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(store, rx));
        Self { tx }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<(UsageRecord, Ack)>) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        let (records, acks): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
        metrics::histogram!("algohub_metering_batch_size").record(records.len() as f64);
        if commit(&store, &records, ATTEMPTS).await {
            for ack in acks {
                let _ = ack.send(true);
            }
            continue;
        }
        // The batch keeps failing: commit its records one by one, so a record
        // the store refuses fails only its own call.
        for (record, ack) in records.into_iter().zip(acks) {
            let ok = commit(&store, std::slice::from_ref(&record), 2).await;
            if !ok {
                tracing::error!(request_id = %record.request_id, "usage record could not be stored");
            }
            let _ = ack.send(ok);
        }
    }
}

/// Commits records, retrying with a growing pause; whether it succeeded.
async fn commit(store: &Arc<dyn Store>, records: &[UsageRecord], attempts: u32) -> bool {
    for attempt in 0..attempts {
        match store.record_usage(records).await {
            Ok(()) => return true,
            Err(e) => {
                metrics::counter!("algohub_metering_errors_total").increment(1);
                tracing::warn!(error = %e, attempt, records = records.len(), "could not commit usage records");
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
        }
    }
    false
}

/// The usage record of a running call. If the call's future is dropped before
/// it is metered (the client went away, so the run was cancelled), the record
/// is queued as a cancelled call without waiting for its commit.
pub(crate) struct Unmetered<'a> {
    pub(crate) hub: &'a Hub,
    pub(crate) record: Option<UsageRecord>,
    pub(crate) started: std::time::Instant,
    /// Set once the run ended and the record holds its outcome: a drop after
    /// that queues the record as it is, not as cancelled.
    pub(crate) ran: bool,
}

impl Drop for Unmetered<'_> {
    fn drop(&mut self) {
        let (Some(mut record), Some(meter)) = (self.record.take(), &self.hub.meter) else {
            return;
        };
        if !self.ran {
            record.status = crate::model::UsageStatus::Error;
            record.error_code = Some("cancelled".into());
            record.royalty_microcredits = 0;
            record.duration_us =
                i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        }
        let (ack, _) = oneshot::channel();
        let _ = meter.tx.send((record, ack));
    }
}

impl Hub {
    /// Commits a usage record (batched with concurrent calls' records) and
    /// returns once it is durable; an error means it could not be stored.
    pub async fn meter(&self, record: UsageRecord) -> Result<()> {
        let Some(meter) = &self.meter else {
            return Ok(());
        };
        let failed = || {
            Error::new(
                Code::MeteringFailed,
                "the call could not be metered, so its result is withheld; try again",
            )
        };
        let (ack, committed) = oneshot::channel();
        meter.tx.send((record, ack)).map_err(|_| failed())?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(failed()),
        }
    }
}
