//! The measuring loops: timed passes over the whole stream for decisions per
//! second (the fastest of up to three, stopping once they add up to 1 s), then
//! one pass timing every decision on its own for p50/p99.
//!
//! Per-decision times include one `Instant::now()` pair (its cost is measured by
//! `timer_overhead_ns` and printed with the tables); they are not corrected for it.

use crate::engines::Contender;
use crate::generate::Question;
use std::hint::black_box;
use std::time::{Duration, Instant};

pub struct Run {
    /// The answer to every question, in order.
    pub answers: Vec<bool>,
    /// Wall time of the fastest throughput pass.
    pub total: Duration,
    /// Per-decision times in nanoseconds, sorted.
    pub latencies: Vec<u32>,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.answers.len() as f64 / self.total.as_secs_f64()
    }
    pub fn percentile(&self, p: f64) -> u32 {
        if self.latencies.is_empty() {
            return 0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// Answers `questions` with `c`: a warm-up over the first few thousand, the
/// throughput pass, then the latency pass.
pub fn run<C: Contender>(c: &mut C, questions: &[Question]) -> Run {
    let prepared: Vec<C::Prepared> = questions.iter().map(|q| c.prepare(q)).collect();
    for p in prepared.iter().take(5_000) {
        black_box(c.decide(black_box(p)));
    }
    // Throughput: the fastest of up to 3 passes (fewer if passes add up to 1 s),
    // which filters out preemption by other work on the machine.
    let mut answers = Vec::with_capacity(prepared.len());
    let mut total = Duration::MAX;
    let mut spent = Duration::ZERO;
    for _ in 0..3 {
        answers.clear();
        let t0 = Instant::now();
        for p in &prepared {
            answers.push(c.decide(black_box(p)));
        }
        let pass = t0.elapsed();
        total = total.min(pass);
        spent += pass;
        if spent >= Duration::from_secs(1) {
            break;
        }
    }
    let mut latencies = Vec::with_capacity(prepared.len());
    for p in &prepared {
        let t = Instant::now();
        let a = c.decide(black_box(p));
        let e = t.elapsed();
        black_box(a);
        latencies.push(u32::try_from(e.as_nanos()).unwrap_or(u32::MAX));
    }
    latencies.sort_unstable();
    Run {
        answers,
        total,
        latencies,
    }
}

/// Throughput passes of `a` and `b` in turns (a, b, a, b, ...), `rounds` of
/// each: both meet the same machine, so their ratio holds while other work
/// on it comes and goes. The fastest pass of each.
pub fn alternate<A: Contender, B: Contender>(
    a: &mut A,
    b: &mut B,
    questions: &[Question],
    rounds: usize,
) -> (Duration, Duration) {
    let pa: Vec<A::Prepared> = questions.iter().map(|q| a.prepare(q)).collect();
    let pb: Vec<B::Prepared> = questions.iter().map(|q| b.prepare(q)).collect();
    let mut answers = Vec::with_capacity(questions.len());
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        answers.clear();
        let t0 = Instant::now();
        for p in &pa {
            answers.push(a.decide(black_box(p)));
        }
        best.0 = best.0.min(t0.elapsed());
        black_box(&answers);
        answers.clear();
        let t0 = Instant::now();
        for p in &pb {
            answers.push(b.decide(black_box(p)));
        }
        best.1 = best.1.min(t0.elapsed());
        black_box(&answers);
    }
    best
}

/// The median cost of an empty `Instant::now()` … `elapsed()` pair, in ns.
pub fn timer_overhead_ns() -> u32 {
    let mut v: Vec<u32> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            let e = black_box(t).elapsed();
            u32::try_from(e.as_nanos()).unwrap_or(u32::MAX)
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

/// Times `f` and counts the heap bytes it leaves allocated (see `alloc`).
pub fn build<T>(f: impl FnOnce() -> T) -> (T, Duration, i64) {
    crate::alloc::start();
    let t = Instant::now();
    let x = f();
    let elapsed = t.elapsed();
    let bytes = crate::alloc::stop();
    (x, elapsed, bytes)
}
