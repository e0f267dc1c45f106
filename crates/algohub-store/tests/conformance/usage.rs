//! `UsageStore`: call settings, slots under concurrency, usage records with
//! their rollups and ledger (idempotent, balanced after random workloads).

use crate::algorithms::{artifact, new_algo};
use crate::support::*;
use algohub_core::model::*;
use algohub_core::store::*;
use algohub_store::SqlStore;
use std::sync::Arc;

fn record(
    id: &str,
    caller: AccountId,
    payer: AccountId,
    algo: &Algorithm,
    status: UsageStatus,
) -> UsageRecord {
    UsageRecord {
        request_id: id.into(),
        started_at: 86_400_000 * 20_000 + 1_000,
        duration_us: 1_500,
        caller_id: caller,
        acting_as_id: caller,
        payer_id: payer,
        via: Via::Direct,
        algorithm_id: Some(algo.id),
        owner_id: Some(algo.owner_id),
        algo_owner: algo.owner_name.clone(),
        algo_name: algo.name.clone(),
        version: "1.0.0".into(),
        status,
        error_code: None,
        compute_units: 7,
        royalty_microcredits: 3,
    }
}

pub async fn call_settings_and_slots(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let acme = org(&s, "acme", ann.id).await;
    assert_eq!(
        s.get_call_settings(ann.id).await.unwrap(),
        CallSettings::default()
    );
    s.set_work_limit(&cli(), ann.id, ann.id, Some(4))
        .await
        .map(Written::unindexed)
        .unwrap();
    s.set_work_limit(&cli(), ann.id, acme.id, Some(9))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        s.get_call_settings(ann.id).await.unwrap().work_limit,
        Some(4)
    );
    assert_eq!(
        s.get_call_settings(acme.id).await.unwrap().work_limit,
        Some(9)
    );
    s.set_work_limit(&cli(), ann.id, ann.id, None)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(s.get_call_settings(ann.id).await.unwrap().work_limit, None);
    assert!(matches!(
        s.set_work_limit(&cli(), ann.id, 9999, Some(1))
            .await
            .map(Written::unindexed),
        Err(StoreError::NotFound)
    ));

    // Storage quotas: none of its own, then set (answering the old value),
    // cleared; a missing account is NotFound.
    assert_eq!(s.get_storage_quota(acme.id).await.unwrap(), None);
    assert_eq!(
        s.set_storage_quota(&cli(), ann.id, acme.id, Some(50))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_storage_quota(acme.id).await.unwrap(), Some(50));
    assert_eq!(
        s.set_storage_quota(&cli(), ann.id, acme.id, None)
            .await
            .unwrap(),
        Some(50)
    );
    assert_eq!(s.get_storage_quota(acme.id).await.unwrap(), None);
    assert!(matches!(
        s.set_storage_quota(&cli(), ann.id, 9999, Some(1)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_storage_quota(9999).await,
        Err(StoreError::NotFound)
    ));

    // Concurrent batches from several "nodes" never grant more than the limit.
    let mut tasks = Vec::new();
    for node in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let reqs: Vec<SlotRequest> = (0..5)
                .map(|i| SlotRequest {
                    id: format!("n{node}-{i}"),
                    account_id: ann.id,
                    limit: 6,
                })
                .collect();
            s.acquire_call_slots(&format!("node-{node}"), &reqs, &[], 1_000, 10_000)
                .await
                .unwrap()
        }));
    }
    let mut granted = Vec::new();
    for (node, t) in tasks.into_iter().enumerate() {
        for (i, g) in t.await.unwrap().into_iter().enumerate() {
            if g {
                granted.push(format!("n{node}-{i}"));
            }
        }
    }
    assert_eq!(
        granted.len(),
        6,
        "exactly the limit was granted: {granted:?}"
    );
    let more = SlotRequest {
        id: "late".into(),
        account_id: ann.id,
        limit: 6,
    };
    assert_eq!(
        s.acquire_call_slots("node-9", std::slice::from_ref(&more), &[], 1_000, 10_000)
            .await
            .unwrap(),
        vec![false]
    );
    // A slot released in the same batch is free for the batch's requests.
    assert_eq!(
        s.acquire_call_slots(
            "node-9",
            std::slice::from_ref(&more),
            &granted[..1],
            1_000,
            10_000
        )
        .await
        .unwrap(),
        vec![true]
    );
    // A request released in its own batch (its call already ended) is
    // granted but keeps no slot: the next one still gets the last free slot.
    s.acquire_call_slots("node-9", &[], &granted[1..2], 1_000, 10_000)
        .await
        .unwrap();
    let brief = SlotRequest {
        id: "brief".into(),
        account_id: ann.id,
        limit: 6,
    };
    assert_eq!(
        s.acquire_call_slots(
            "node-9",
            std::slice::from_ref(&brief),
            &["brief".to_string()],
            1_000,
            10_000
        )
        .await
        .unwrap(),
        vec![true]
    );
    let last = SlotRequest {
        id: "last".into(),
        account_id: ann.id,
        limit: 6,
    };
    assert_eq!(
        s.acquire_call_slots("node-9", std::slice::from_ref(&last), &[], 1_000, 10_000)
            .await
            .unwrap(),
        vec![true],
        "the brief request kept no slot"
    );
    // Expired slots do not count.
    let after = SlotRequest {
        id: "after-expiry".into(),
        account_id: ann.id,
        limit: 6,
    };
    assert_eq!(
        s.acquire_call_slots("node-9", std::slice::from_ref(&after), &[], 10_001, 20_000)
            .await
            .unwrap(),
        vec![true]
    );
    // Renewal keeps a node's slots alive past their first lease.
    s.renew_call_slots("node-9", 10_001, 50_000).await.unwrap();
    let probe: Vec<SlotRequest> = (0..6)
        .map(|i| SlotRequest {
            id: format!("probe-{i}"),
            account_id: ann.id,
            limit: 6,
        })
        .collect();
    let g = s
        .acquire_call_slots("node-x", &probe, &[], 30_000, 40_000)
        .await
        .unwrap();
    assert_eq!(
        g.iter().filter(|g| **g).count(),
        3,
        "node-9's three renewed slots (more, last, after-expiry) still count: {g:?}"
    );
}

pub async fn usage_rollups_and_ledger(s: Arc<SqlStore>) {
    let ann = user(&s, "ann").await;
    let bob = user(&s, "bob").await;
    let acme = org(&s, "acme", ann.id).await;
    let a = artifact(b"x");
    s.put_artifact(&a).await.unwrap();
    let model = s
        .create_algorithm(&cli(), &new_algo(acme.id, "model", &a.digest))
        .await
        .map(Written::unindexed)
        .unwrap();
    let mut batch = vec![
        record("r1", bob.id, bob.id, &model, UsageStatus::Ok),
        record("r2", bob.id, bob.id, &model, UsageStatus::Error),
        record("r3", ann.id, acme.id, &model, UsageStatus::Ok),
    ];
    batch[2].via = Via::MemberKey;
    let mut refused = record("r4", bob.id, bob.id, &model, UsageStatus::Refused);
    refused.algorithm_id = None;
    refused.owner_id = None;
    refused.algo_name = "missing".into();
    batch.push(refused);
    s.record_usage(&batch).await.unwrap();
    s.record_usage(&batch).await.unwrap(); // a retried batch counts once
    assert_eq!(s.get_usage_record("r1").await.unwrap().unwrap(), batch[0]);
    assert_eq!(s.get_usage_record("r4").await.unwrap().unwrap(), batch[3]);
    assert!(s.get_usage_record("nope").await.unwrap().is_none());
    let day = day_of(batch[0].started_at);
    let all = s
        .list_usage_records(0, i64::MAX, &[], 0, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    let bobs = s
        .list_usage_records(0, i64::MAX, &[bob.id], 1, 100)
        .await
        .unwrap();
    assert_eq!(bobs.len(), 2, "offset 1 of bob's three");

    // Only the successful call of another account's algorithm is charged
    // (r3's payer owns the algorithm).
    assert_eq!(
        s.balance(bob.id).await.unwrap(),
        Balance {
            balance: -3,
            earned: 0,
            spent: 3,
            granted: 0
        }
    );
    assert_eq!(
        s.balance(acme.id).await.unwrap(),
        Balance {
            balance: 3,
            earned: 3,
            spent: 0,
            granted: 0
        }
    );
    assert_eq!(s.ledger_total().await.unwrap(), 0);

    let q = |side, account_id, group| ReportQuery {
        side,
        account_id,
        from_day: day,
        to_day: day,
        group,
        callers: vec![],
    };
    let rows = s
        .usage_report(&q(ReportSide::Payer, bob.id, ReportGroup::Algorithm))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let m = rows
        .iter()
        .find(|r| r.algorithm.as_deref() == Some("model"))
        .unwrap();
    assert_eq!(
        (m.owner.as_deref(), m.calls, m.errors, m.refused, m.credits),
        (Some("acme"), 2, 1, 0, 3)
    );
    assert_eq!(
        (m.duration_us, m.error_duration_us, m.compute_units),
        (3_000, 1_500, 14)
    );
    let unresolved = rows.iter().find(|r| r.algorithm.is_none()).unwrap();
    assert_eq!((unresolved.calls, unresolved.refused), (0, 1));
    let members = s
        .usage_report(&q(ReportSide::Payer, acme.id, ReportGroup::Member))
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].caller.as_deref(), members[0].calls),
        (Some("ann"), 1)
    );
    let owner = s
        .usage_report(&q(ReportSide::Owner, acme.id, ReportGroup::Version))
        .await
        .unwrap();
    assert_eq!(owner.len(), 1);
    assert_eq!(
        (owner[0].version.as_deref(), owner[0].calls),
        (Some("1.0.0"), 3)
    );
    let days = s
        .usage_report(&q(ReportSide::All, 0, ReportGroup::Day))
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].day.as_deref(), Some("2024-10-04"));
    assert_eq!((days[0].calls, days[0].refused), (3, 1));
    let mut empty = q(ReportSide::All, 0, ReportGroup::CallerVersion);
    empty.from_day = day + 1;
    empty.to_day = day + 2;
    assert!(s.usage_report(&empty).await.unwrap().is_empty());
    let mut only_ann = q(ReportSide::All, 0, ReportGroup::CallerVersion);
    only_ann.callers = vec![ann.id];
    let r = s.usage_report(&only_ann).await.unwrap();
    assert_eq!((r.len(), r[0].caller.as_deref()), (1, Some("ann")));
}

/// Random workloads in concurrent batches: the ledger always sums to zero and
/// every account's balance equals its rows' credits.
pub async fn ledger_balances_after_random_workloads(s: Arc<SqlStore>) {
    let a = artifact(b"y");
    s.put_artifact(&a).await.unwrap();
    let mut users = Vec::new();
    let mut algos = Vec::new();
    for i in 0..5 {
        let u = user(&s, &format!("u{i}")).await;
        algos.push(
            s.create_algorithm(&cli(), &new_algo(u.id, &format!("a{i}"), &a.digest))
                .await
                .map(Written::unindexed)
                .unwrap(),
        );
        users.push(u);
    }
    // A small deterministic generator (xorshift), so a failure reproduces.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let statuses = [
        UsageStatus::Ok,
        UsageStatus::Ok,
        UsageStatus::Error,
        UsageStatus::Refused,
        UsageStatus::Limited,
    ];
    let mut batches = Vec::new();
    let mut expected_spent = vec![0i64; users.len()];
    let mut n = 0;
    for _ in 0..8 {
        let mut batch = Vec::new();
        for _ in 0..40 {
            n += 1;
            let caller = next(users.len() as u64) as usize;
            let algo = &algos[next(algos.len() as u64) as usize];
            let mut r = record(
                &format!("w{n}"),
                users[caller].id,
                users[caller].id,
                algo,
                statuses[next(5) as usize],
            );
            r.royalty_microcredits = next(50) as i64;
            r.started_at += next(3) as i64 * 86_400_000;
            if next(6) == 0 {
                r.via = Via::Sudo;
            }
            if r.status == UsageStatus::Ok && r.via != Via::Sudo && algo.owner_id != r.payer_id {
                expected_spent[caller] += r.royalty_microcredits;
            }
            batch.push(r);
        }
        batches.push(batch);
    }
    let mut tasks = Vec::new();
    for b in batches {
        let s = s.clone();
        tasks.push(tokio::spawn(
            async move { s.record_usage(&b).await.unwrap() },
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.ledger_total().await.unwrap(), 0, "entries sum to zero");
    let mut earned_total = 0;
    for (i, u) in users.iter().enumerate() {
        let b = s.balance(u.id).await.unwrap();
        assert_eq!(b.spent, expected_spent[i], "{}", u.username);
        earned_total += b.earned;
    }
    assert_eq!(earned_total, expected_spent.iter().sum::<i64>());
}
