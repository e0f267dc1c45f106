//! Fair sharing of a node's instances and its memory budget for guests.
//!
//! Design: one [`Gate`] per runtime hands out instance slots and memory. Every
//! call names a group (the person it counts for: the host decides), and a
//! group holds at most `per_group` instances at once, so one person, however
//! many accounts and keys he uses, leaves the rest of the pool to others.
//! Calls that cannot start wait in their group's queue; when an instance or
//! memory comes free, the groups with waiters are served in turn (round
//! robin), one call each, so a group with a thousand queued calls does not
//! delay another group's first call behind all of them. Memory is reserved
//! before an instance starts (the module's initial memory plus a fixed
//! overhead) and again for each `memory.grow`; a growth the budget cannot
//! cover fails (the guest sees `memory.grow` return -1), and the runtime
//! reports the call as refused for lack of memory. A group's memory is
//! shared out like its instances: at most `per_group / instances` of the
//! budget, so one person's guests cannot take all of it either. Nothing here does I/O; the
//! lock is held for a few hash-map operations.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Memory charged per instance besides its linear memory (its table, the
/// pages of its stack and its store), so that a node of many tiny guests
/// also stays within its budget.
pub const INSTANCE_OVERHEAD_BYTES: u64 = 1 << 20;

/// How a node's instances and guest memory are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareConfig {
    /// Instances that may run at once (the pool size).
    pub instances: u32,
    /// Instances one group may hold at once (at most `instances`).
    pub per_group: u32,
    /// Bytes of guest memory the node may have reserved at once.
    pub memory_budget: u64,
}

/// Why a call could not get what it needs to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It needs more memory at start than the whole budget.
    TooLarge { needed: u64, budget: u64 },
    /// The gate went away (the runtime is shutting down).
    Closed,
}

pub(crate) struct Gate {
    config: ShareConfig,
    /// The memory one group may have reserved at once.
    group_memory: u64,
    state: Mutex<State>,
}

struct State {
    free_instances: u32,
    free_memory: u64,
    groups: FxHashMap<u64, Group>,
    /// Groups with waiters, in the order they are served next.
    turn: VecDeque<u64>,
    next_waiter: u64,
}

#[derive(Default)]
struct Group {
    held: u32,
    /// Memory its instances have reserved.
    memory: u64,
    waiting: VecDeque<Waiter>,
}

struct Waiter {
    id: u64,
    memory: u64,
    grant: oneshot::Sender<()>,
}

/// An instance slot and the memory reserved for it; dropping it gives both back.
pub(crate) struct Permit {
    gate: Arc<Gate>,
    group: u64,
    reserved: u64,
}

impl Gate {
    pub(crate) fn new(config: ShareConfig) -> Arc<Self> {
        let share = u128::from(config.memory_budget) * u128::from(config.per_group)
            / u128::from(config.instances.max(1));
        Arc::new(Self {
            config,
            group_memory: u64::try_from(share).unwrap_or(u64::MAX),
            state: Mutex::new(State {
                free_instances: config.instances,
                free_memory: config.memory_budget,
                groups: FxHashMap::default(),
                turn: VecDeque::new(),
                next_waiter: 0,
            }),
        })
    }

    /// An instance and `memory` bytes for a call of `group`, once the group
    /// is under its share and the node has both free (waiting in turn).
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        group: u64,
        memory: u64,
    ) -> Result<Permit, Refusal> {
        if memory > self.group_memory {
            return Err(Refusal::TooLarge {
                needed: memory,
                budget: self.group_memory,
            });
        }
        let permit = || Permit {
            gate: self.clone(),
            group,
            reserved: memory,
        };
        let (id, rx) = {
            let mut state = self.state.lock();
            let state = &mut *state;
            if state.turn.is_empty() {
                let (held, used) = state
                    .groups
                    .get(&group)
                    .map_or((0, 0), |g| (g.held, g.memory));
                if state.fits(held, used, memory, self.limits()) {
                    state.take(group, memory);
                    return Ok(permit());
                }
            }
            let id = state.next_waiter;
            state.next_waiter += 1;
            let (tx, rx) = oneshot::channel();
            let g = state.groups.entry(group).or_default();
            g.waiting.push_back(Waiter {
                id,
                memory,
                grant: tx,
            });
            if g.waiting.len() == 1 {
                state.turn.push_back(group);
            }
            state.dispatch(self.limits());
            (id, rx)
        };
        let mut wait = Waiting {
            gate: self,
            group,
            id,
            memory,
            rx,
            done: false,
        };
        // A waiter's sender is dropped unsent only by `Waiting::drop`.
        let granted = (&mut wait.rx).await.is_ok();
        wait.done = true;
        if granted {
            Ok(permit())
        } else {
            Err(Refusal::Closed)
        }
    }

    /// (instances, memory) one group may hold.
    fn limits(&self) -> (u32, u64) {
        (self.config.per_group, self.group_memory)
    }

    fn release(&self, group: u64, memory: u64) {
        let mut state = self.state.lock();
        state.free_instances += 1;
        state.free_memory += memory;
        if let Some(g) = state.groups.get_mut(&group) {
            g.held -= 1;
            g.memory = g.memory.saturating_sub(memory);
            if g.held == 0 && g.waiting.is_empty() {
                state.groups.remove(&group);
            }
        }
        state.dispatch(self.limits());
    }

    /// Takes `bytes` more of the budget for a running instance of `group`,
    /// if the node has them free and the group's share allows.
    fn grow(&self, group: u64, bytes: u64) -> bool {
        let mut state = self.state.lock();
        let state = &mut *state;
        let Some(g) = state.groups.get_mut(&group) else {
            return false;
        };
        if state.free_memory < bytes || g.memory.saturating_add(bytes) > self.group_memory {
            return false;
        }
        state.free_memory -= bytes;
        g.memory += bytes;
        true
    }

    /// (free instances, free memory): for tests and diagnostics.
    #[cfg(test)]
    pub(crate) fn free(&self) -> (u32, u64) {
        let state = self.state.lock();
        (state.free_instances, state.free_memory)
    }
}

impl State {
    /// Whether a call of a group holding `held` instances and `used` memory
    /// can start with `memory` now, within `(instances, memory)` per group.
    fn fits(&self, held: u32, used: u64, memory: u64, limits: (u32, u64)) -> bool {
        self.free_instances > 0
            && held < limits.0
            && self.free_memory >= memory
            && used.saturating_add(memory) <= limits.1
    }

    fn take(&mut self, group: u64, memory: u64) {
        self.free_instances -= 1;
        self.free_memory -= memory;
        let g = self.groups.entry(group).or_default();
        g.held += 1;
        g.memory += memory;
    }

    /// Starts waiting calls while any can start: one per group in turn.
    fn dispatch(&mut self, limits: (u32, u64)) {
        // Groups looked at since the last grant; a whole round without one ends it.
        let mut idle = 0;
        while self.free_instances > 0 && idle < self.turn.len() {
            let Some(group) = self.turn.pop_front() else {
                break;
            };
            let Some(g) = self.groups.get(&group) else {
                continue;
            };
            let Some(front) = g.waiting.front() else {
                continue;
            };
            let fits = self.fits(g.held, g.memory, front.memory, limits);
            let Some(g) = self.groups.get_mut(&group) else {
                continue;
            };
            if !fits {
                self.turn.push_back(group);
                idle += 1;
                continue;
            }
            let Some(waiter) = g.waiting.pop_front() else {
                continue;
            };
            let more = !g.waiting.is_empty();
            let memory = waiter.memory;
            // A waiter whose call gave up meanwhile is skipped (its
            // `Waiting::drop` found nothing queued, or is about to).
            if waiter.grant.send(()).is_ok() {
                self.take(group, memory);
                idle = 0;
            }
            if more {
                self.turn.push_back(group);
            } else if self.groups.get(&group).is_some_and(|g| g.held == 0) {
                self.groups.remove(&group);
            }
        }
    }
}

/// A queued call; if it is dropped before its grant is seen (the call timed
/// out or its request went away), its place or its grant is given back.
struct Waiting<'a> {
    gate: &'a Gate,
    group: u64,
    id: u64,
    memory: u64,
    rx: oneshot::Receiver<()>,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.gate.state.lock();
        // Grants are sent under the lock: either it came, or the waiter is queued.
        if self.rx.try_recv().is_ok() {
            drop(state);
            // Granted but never used: `take` counted it.
            self.gate.release(self.group, self.memory);
            return;
        }
        let state = &mut *state;
        if let Some(g) = state.groups.get_mut(&self.group) {
            g.waiting.retain(|w| w.id != self.id);
            if g.waiting.is_empty() {
                state.turn.retain(|&t| t != self.group);
                if g.held == 0 {
                    state.groups.remove(&self.group);
                }
            }
        }
        // The call behind this one in its group may fit where this one did not.
        state.dispatch(self.gate.limits());
    }
}

impl Permit {
    /// Reserves `bytes` more for this instance's memory; false if the
    /// node's budget cannot cover them.
    pub(crate) fn grow(&mut self, bytes: u64) -> bool {
        let ok = self.gate.grow(self.group, bytes);
        if ok {
            self.reserved += bytes;
        }
        ok
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(self.group, self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    fn gate(instances: u32, per_group: u32, budget_mib: u64) -> Arc<Gate> {
        Gate::new(ShareConfig {
            instances,
            per_group,
            memory_budget: budget_mib * MIB,
        })
    }

    /// Whether `acquire` completes within a short wait.
    async fn try_acquire(gate: &Arc<Gate>, group: u64, memory: u64) -> Option<Permit> {
        tokio::time::timeout(Duration::from_millis(50), gate.acquire(group, memory))
            .await
            .ok()
            .map(|r| r.expect("not refused"))
    }

    #[tokio::test]
    async fn one_group_holds_at_most_its_share_and_others_start_at_once() {
        let g = gate(8, 3, 100);
        let mut bobs = Vec::new();
        for _ in 0..3 {
            bobs.push(try_acquire(&g, 1, MIB).await.expect("within bob's share"));
        }
        assert!(try_acquire(&g, 1, MIB).await.is_none(), "a fourth waits");
        let alice = try_acquire(&g, 2, MIB).await.expect("alice starts at once");
        drop(alice);
        drop(bobs);
        assert_eq!(g.free(), (8, 100 * MIB), "everything given back");
    }

    #[tokio::test]
    async fn freed_instances_go_to_the_groups_in_turn() {
        let g = gate(2, 2, 100);
        let mut held = vec![
            g.acquire(1, MIB).await.expect("first"),
            g.acquire(1, MIB).await.expect("second"),
        ];
        // Bob queues three more, then alice one: alice is served next.
        let queued_bob: Vec<_> = (0..3)
            .map(|_| {
                let g = g.clone();
                tokio::spawn(async move { g.acquire(1, MIB).await.map(|_| 1).unwrap_or(0) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let alice = {
            let g = g.clone();
            tokio::spawn(async move {
                let p = g.acquire(2, MIB).await.expect("alice");
                tx.send(()).expect("send");
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(p);
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(rx.try_recv().is_err(), "the pool is full");
        drop(held.pop());
        tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .expect("alice got the freed instance before bob's queued calls");
        drop(held);
        alice.await.expect("alice");
        for q in queued_bob {
            assert_eq!(q.await.expect("bob"), 1, "bob's calls start in the end");
        }
        assert_eq!(g.free(), (2, 100 * MIB));
    }

    #[tokio::test]
    async fn memory_is_reserved_before_start_and_for_each_growth() {
        let g = gate(8, 8, 10);
        assert_eq!(
            g.acquire(1, 11 * MIB).await.err(),
            Some(Refusal::TooLarge {
                needed: 11 * MIB,
                budget: 10 * MIB
            })
        );
        let mut a = try_acquire(&g, 1, 4 * MIB).await.expect("fits");
        let b = try_acquire(&g, 2, 4 * MIB).await.expect("fits");
        assert!(
            try_acquire(&g, 3, 4 * MIB).await.is_none(),
            "waits for memory"
        );
        assert!(a.grow(2 * MIB), "the last 2 MiB");
        assert!(!a.grow(MIB), "the budget is used up");
        drop(b);
        assert!(a.grow(MIB), "freed memory can be grown into");
        drop(a);
        assert_eq!(g.free(), (8, 10 * MIB));
    }

    #[tokio::test]
    async fn one_group_gets_its_share_of_the_memory_too() {
        // 4 instances, 1 per group: a quarter of 8 MiB each.
        let g = gate(4, 1, 8);
        let mut bob = try_acquire(&g, 1, MIB).await.expect("bob starts");
        assert!(bob.grow(MIB), "up to his 2 MiB");
        assert!(
            !bob.grow(MIB),
            "not past his share, though the node has room"
        );
        let mut alice = try_acquire(&g, 2, MIB).await.expect("alice starts");
        assert!(alice.grow(MIB), "alice has her own share");
        assert_eq!(
            g.acquire(3, 3 * MIB).await.err(),
            Some(Refusal::TooLarge {
                needed: 3 * MIB,
                budget: 2 * MIB
            }),
            "more than a share at start: refused at once"
        );
        drop((bob, alice));
        assert_eq!(g.free(), (4, 8 * MIB));
    }

    #[tokio::test]
    async fn a_call_that_gives_up_waiting_leaves_nothing_behind() {
        let g = gate(1, 1, 10);
        let held = g.acquire(1, MIB).await.expect("first");
        assert!(try_acquire(&g, 2, MIB).await.is_none(), "gave up waiting");
        assert!(try_acquire(&g, 3, MIB).await.is_none(), "gave up waiting");
        drop(held);
        assert_eq!(g.free(), (1, 10 * MIB), "no grant went to a call that left");
        let again = try_acquire(&g, 2, MIB).await.expect("the pool is free");
        drop(again);
        let state = g.state.lock();
        assert!(state.groups.is_empty() && state.turn.is_empty());
    }
}
