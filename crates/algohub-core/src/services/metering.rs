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
        let mut ok = false;
        for attempt in 0..ATTEMPTS {
            match store.record_usage(&records).await {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    metrics::counter!("algohub_metering_errors_total").increment(1);
                    tracing::warn!(error = %e, attempt, records = records.len(), "could not commit usage records");
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        metrics::histogram!("algohub_metering_batch_size").record(records.len() as f64);
        for ack in acks {
            let _ = ack.send(ok);
        }
    }
}

/// The usage record of a running call. If the call's future is dropped before
/// it is metered (the client went away, so the run was cancelled), the record
/// is queued as a cancelled call without waiting for its commit.
pub(crate) struct Unmetered<'a> {
    pub(crate) hub: &'a Hub,
    pub(crate) record: Option<UsageRecord>,
    pub(crate) started: std::time::Instant,
}

impl Drop for Unmetered<'_> {
    fn drop(&mut self) {
        let (Some(mut record), Some(meter)) = (self.record.take(), &self.hub.meter) else {
            return;
        };
        record.status = crate::model::UsageStatus::Error;
        record.error_code = Some("cancelled".into());
        record.royalty_microcredits = 0;
        record.duration_us = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
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
