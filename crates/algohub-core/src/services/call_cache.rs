//! What a call needs to know about an algorithm (its row, versions, build
//! hashes) and the artifacts it runs, kept in memory so that a call does no
//! store read once warm.
//!
//! Design: entries are filled from the store on a miss and dropped when the
//! change feed reports the algorithm changed (on this node right after the
//! write, on other nodes at their next policy poll), or all at once when an
//! account changes. A miss records the cache generation before it reads the
//! store and inserts only if no invalidation happened meanwhile, so a read that
//! raced a change can never leave a stale entry behind. Artifacts are
//! content-addressed and immutable, so they never go stale; the map is bounded.

use crate::model::{AlgoId, Artifact};
use crate::model::{Algorithm, Version};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Artifacts kept at most (they are small modules or http definitions).
const MAX_ARTIFACTS: usize = 256;
/// Algorithms kept at most.
const MAX_TARGETS: usize = 10_000;

pub(crate) struct CallTarget {
    /// Shared with the calls that resolve against it (not cloned per call).
    pub algorithm: Arc<Algorithm>,
    /// Newest semantic version first.
    pub versions: Vec<Version>,
    /// (version hash, artifact digest) of every build, newest first.
    pub builds: Vec<(String, String)>,
    /// Its calls' metrics (`algorithm="owner/name"`, as the algorithm is
    /// named now: a change to it drops the entry).
    pub metrics: Arc<super::calls::CallMetrics>,
}

#[derive(Default)]
pub(crate) struct CallCache {
    generation: AtomicU64,
    targets: RwLock<FxHashMap<(String, String), Arc<CallTarget>>>,
    artifacts: RwLock<FxHashMap<String, Arc<Artifact>>>,
}

impl CallCache {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn target(&self, owner: &str, name: &str) -> Option<Arc<CallTarget>> {
        self.targets
            .read()
            .get(&(owner.to_string(), name.to_string()))
            .cloned()
    }

    /// Keeps `target` unless the cache was invalidated since `generation`.
    pub fn insert_target(&self, generation: u64, owner: &str, name: &str, target: Arc<CallTarget>) {
        let mut targets = self.targets.write();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if targets.len() >= MAX_TARGETS {
            targets.clear();
        }
        targets.insert((owner.to_string(), name.to_string()), target);
    }

    pub fn invalidate_algorithm(&self, id: AlgoId) {
        let mut targets = self.targets.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        targets.retain(|_, t| t.algorithm.id != id);
    }

    pub fn clear(&self) {
        let mut targets = self.targets.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        targets.clear();
    }

    pub fn artifact(&self, digest: &str) -> Option<Arc<Artifact>> {
        self.artifacts.read().get(digest).cloned()
    }

    pub fn insert_artifact(&self, artifact: Arc<Artifact>) {
        let mut map = self.artifacts.write();
        if map.len() >= MAX_ARTIFACTS {
            map.clear();
        }
        map.insert(artifact.digest.clone(), artifact);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuntimeKind;

    fn target(id: AlgoId) -> Arc<CallTarget> {
        Arc::new(CallTarget {
            algorithm: Arc::new(Algorithm {
                id,
                uuid: String::new(),
                owner_id: 1,
                owner_name: "a".into(),
                name: "x".into(),
                app_id: None,
                details: serde_json::Value::Null,
                settings: Default::default(),
                runtime: RuntimeKind::Wasm,
                artifact_digest: String::new(),
                created_by: 1,
                created_at: 0,
                updated_at: 0,
            }),
            versions: vec![],
            builds: vec![],
            metrics: Arc::new(super::super::calls::CallMetrics::algorithm("a", "x")),
        })
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let c = CallCache::default();
        let g = c.generation();
        c.insert_target(g, "a", "x", target(7));
        assert!(c.target("a", "x").is_some());
        let before = c.generation();
        c.invalidate_algorithm(7);
        assert!(c.target("a", "x").is_none());
        c.insert_target(before, "a", "x", target(7));
        assert!(c.target("a", "x").is_none(), "stale read dropped");
        c.insert_target(c.generation(), "a", "x", target(7));
        c.invalidate_algorithm(8);
        assert!(c.target("a", "x").is_some(), "other algorithms stay");
        c.clear();
        assert!(c.target("a", "x").is_none());
    }
}
