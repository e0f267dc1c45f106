//! Metering as the use cases see it: a call's usage record is handed to the
//! node's `UsageSink` and the call is answered only once the sink says the
//! record is durable (a response the client received always has its record).
//! How records become durable (group commit, the node-local usage journal,
//! its loader and files) is node machinery: `algohub::metering`.

use crate::error::Result;
use crate::model::UsageRecord;
use std::sync::Arc;

/// The default of `Settings::metering_max_backlog`: journaled records the
/// store has not taken yet (the loader holds them in memory, about 200 bytes
/// each) beyond which calls stop using the journal: their records then go to
/// the store directly, so while the store is down calls are refused
/// (`metering_failed`) instead of piling up.
pub const DEFAULT_MAX_BACKLOG: u64 = 1_000_000;

/// Where a node's usage records go.
#[async_trait::async_trait]
pub trait UsageSink: Send + Sync {
    /// Makes a record durable (batched with concurrent calls' records) and
    /// returns once it is; an error means it could not be stored.
    async fn record(&self, record: UsageRecord) -> Result<()>;

    /// Queues the record of a call whose request went away, without waiting.
    fn record_detached(&self, record: UsageRecord);

    /// Waits until every record acknowledged so far is in the store (a
    /// journal's loader may be a batch behind); usage reads call it first, so
    /// a caller reads their own calls made through this node.
    async fn settle(&self) -> Result<()>;

    /// At shutdown, after `settle`: removes what the sink kept on the side
    /// (a journal) if all of it is in the store.
    fn retire(&self);
}

/// The usage writer of a node, or none when metering is off (commands that
/// never call algorithms; the benchmark turns it off to measure what
/// metering costs).
pub struct Metering {
    sink: Option<Arc<dyn UsageSink>>,
}

impl Metering {
    pub(crate) fn new(sink: Option<Arc<dyn UsageSink>>) -> Self {
        Self { sink }
    }

    /// Commits a usage record and returns once it is durable; an error
    /// means it could not be stored.
    pub async fn meter(&self, record: UsageRecord) -> Result<()> {
        match &self.sink {
            Some(sink) => sink.record(record).await,
            None => Ok(()),
        }
    }

    /// See `UsageSink::settle`.
    pub async fn settle_usage(&self) -> Result<()> {
        match &self.sink {
            Some(sink) => sink.settle().await,
            None => Ok(()),
        }
    }

    /// See `UsageSink::retire`.
    pub fn retire_usage_journal(&self) {
        if let Some(sink) = &self.sink {
            sink.retire();
        }
    }
}

/// The usage record of a running call. If the call's future is dropped before
/// it is metered (the client went away, so the run was cancelled), the record
/// is queued as a cancelled call without waiting for its commit.
pub(crate) struct Unmetered<'a> {
    pub(crate) metering: &'a Metering,
    pub(crate) record: Option<UsageRecord>,
    pub(crate) started: std::time::Instant,
    /// Set once the run ended and the record holds its outcome: a drop after
    /// that queues the record as it is, not as cancelled.
    pub(crate) ran: bool,
    /// The algorithm's call metrics, where the run's outcome is counted (a
    /// cancelled run's here).
    pub(crate) metrics: Arc<super::calls::CallMetrics>,
}

impl Drop for Unmetered<'_> {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if !self.ran {
            self.metrics.cancelled();
        }
        let Some(sink) = &self.metering.sink else {
            return;
        };
        if !self.ran {
            record.status = crate::model::UsageStatus::Error;
            record.error_code = Some("cancelled".into());
            record.royalty_microcredits = 0;
            record.duration_us =
                i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        }
        sink.record_detached(record);
    }
}
