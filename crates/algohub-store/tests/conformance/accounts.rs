//! Conformance cases: users, the shared namespace, tombstones, concurrency.

use crate::support::*;
use algohub_core::model::*;
use algohub_core::store::*;
use algohub_store::{Dialect, SqlStore};
use std::sync::Arc;

pub async fn migrations_are_idempotent(s: Arc<SqlStore>) {
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    let types = s.list_org_types().await.unwrap();
    assert_eq!(types.iter().filter(|t| t.name == "basic").count(), 1);
    assert_eq!(s.count_users().await.unwrap(), 0);
    s.ping().await.unwrap();
    let expected = if s.dialect() == Dialect::Sqlite {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    assert_eq!(s.backend(), expected);
    assert_eq!(s.load_policy_snapshot().await.unwrap().seq, 0);
}

pub async fn names_and_emails_are_unique_case_insensitively(s: Arc<SqlStore>) {
    let alice = user(&s, "alice").await;
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email, "alice@example.com");
    assert_eq!(alice.status, AccountStatus::Active);
    assert!(!alice.cluster_admin && !alice.sudo_user);

    let mut same_name = new_user("ALICE");
    same_name.email = "other@example.com".to_string();
    assert_eq!(
        conflict(
            s.create_user(&cli(), &same_name)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AccountName
    );

    let mut same_email = new_user("bob");
    same_email.email = "Alice@Example.COM".to_string();
    assert_eq!(
        conflict(
            s.create_user(&cli(), &same_email)
                .await
                .map(Written::unindexed)
        ),
        Constraint::UserEmail
    );

    // Orgs share the namespace with users.
    let new_org = NewOrg {
        name: "Alice".to_string(),
        label: "x".to_string(),
        contact_name: "x".to_string(),
        email: "x@example.com".to_string(),
        url: None,
        type_id: basic_type(&s).await,
    };
    assert_eq!(
        conflict(
            s.create_org(&cli(), &new_org, alice.id)
                .await
                .map(Written::unindexed)
        ),
        Constraint::AccountName
    );

    assert_eq!(s.get_user_by_name("ALICE").await.unwrap().id, alice.id);
    assert_eq!(s.get_user_by_uuid(&alice.uuid).await.unwrap().id, alice.id);
    assert_eq!(
        s.find_user_by_email("ALICE@example.com")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );
    assert_eq!(
        s.find_user_by_email("nobody@example.com").await.unwrap(),
        None
    );
    let acc = s.get_account_by_name("Alice").await.unwrap();
    assert_eq!(
        (acc.id, acc.kind, acc.status),
        (alice.id, AccountKind::User, AccountStatus::Active)
    );
    not_found(s.get_user(9999).await);
    not_found(s.get_account_by_name("nobody").await);
    // A failed insert left nothing half-written.
    assert_eq!(s.count_users().await.unwrap(), 1);
}

pub async fn user_tombstones(s: Arc<SqlStore>) {
    let admin = user(&s, "root").await;
    let carol = user(&s, "carol").await;
    user(&s, "dave").await;
    s.delete_user(&cli(), carol.id, admin.id)
        .await
        .map(Written::unindexed)
        .unwrap();

    let gone = s.get_user(carol.id).await.unwrap();
    assert_eq!(gone.status, AccountStatus::Deleted);
    assert_eq!(gone.password_hash, None);
    let acc = s.get_account_by_name("carol").await.unwrap();
    assert_eq!(acc.status, AccountStatus::Deleted);
    assert_eq!(
        s.find_user_by_email("carol@example.com").await.unwrap(),
        None
    );

    // Name and email stay taken forever.
    let mut again = new_user("CAROL");
    again.email = "new@example.com".to_string();
    assert_eq!(
        conflict(s.create_user(&cli(), &again).await.map(Written::unindexed)),
        Constraint::AccountName
    );
    let mut email_again = new_user("carol2");
    email_again.email = "carol@example.com".to_string();
    assert_eq!(
        conflict(
            s.create_user(&cli(), &email_again)
                .await
                .map(Written::unindexed)
        ),
        Constraint::UserEmail
    );

    let names: Vec<String> = s
        .list_users(&Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["dave", "root"]);
    assert_eq!(s.count_users().await.unwrap(), 2);
    not_found(
        s.delete_user(&cli(), carol.id, admin.id)
            .await
            .map(Written::unindexed),
    );
    not_found(
        s.update_user(&cli(), carol.id, &UserUpdate::default())
            .await
            .map(Written::unindexed),
    );

    // Paging by marker.
    let page = Page {
        limit: 1,
        marker: Some("dave".to_string()),
    };
    let names: Vec<String> = s
        .list_users(&page)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["root"]);
    let events = s.list_events(Some("user.deleted"), 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_id, Some(admin.id));
}

pub async fn user_updates_and_flags(s: Arc<SqlStore>) {
    let erin = user(&s, "erin").await;
    let frank = user(&s, "frank").await;
    let update = UserUpdate {
        email: Some("Erin@New.example".to_string()),
        full_name: Some("Erin New".to_string()),
        company_name: Some("ACME".to_string()),
        company_role: None,
    };
    let erin2 = s
        .update_user(&cli(), erin.id, &update)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(erin2.email, "erin@new.example");
    assert_eq!(erin2.full_name, "Erin New");
    assert_eq!(erin2.company_name.as_deref(), Some("ACME"));
    assert_eq!(erin2.company_role, None);
    assert!(erin2.updated_at >= erin.updated_at);

    let clash = UserUpdate {
        email: Some("frank@example.com".to_string()),
        ..Default::default()
    };
    assert_eq!(
        conflict(
            s.update_user(&cli(), erin.id, &clash)
                .await
                .map(Written::unindexed)
        ),
        Constraint::UserEmail
    );

    let seq = last_seq(&s).await;
    let flagged = s
        .set_user_flags(&cli(), None, frank.id, Some(true), None)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert!(flagged.cluster_admin && !flagged.sudo_user);
    let flagged = s
        .set_user_flags(&cli(), None, frank.id, None, Some(true))
        .await
        .map(Written::unindexed)
        .unwrap();
    assert!(flagged.cluster_admin && flagged.sudo_user);
    assert_eq!(
        changes_after(&s, seq).await,
        [(ChangeKind::User, frank.id), (ChangeKind::User, frank.id)]
    );
    not_found(
        s.set_user_flags(&cli(), None, 4242, Some(true), None)
            .await
            .map(Written::unindexed),
    );
}

/// Twenty writers at once all succeed (SQLite queues them behind one lock).
pub async fn concurrent_writers(s: Arc<SqlStore>) {
    let founder = user(&s, "founder").await;
    let acme = org(&s, "acme", founder.id).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let u = s
                .create_user(&cli(), &new_user(&format!("user{i:02}")))
                .await
                .map(Written::unindexed)?;
            s.add_member(
                &cli(),
                acme.id,
                u.id,
                algohub_core::roles::OrgRole::Viewer,
                None,
            )
            .await
            .map(Written::unindexed)?;
            s.get_user(u.id).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.count_users().await.unwrap(), 21);
    assert_eq!(
        s.list_members(acme.id, &Page::default())
            .await
            .unwrap()
            .len(),
        21
    );
    let seqs: Vec<i64> = changes(&s).await.iter().map(|c| c.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

pub async fn search_and_suspend(s: Arc<SqlStore>) {
    for name in ["al_x", "alice", "alfred", "bob"] {
        user(&s, name).await;
    }
    let page = |marker: Option<&str>| Page {
        limit: 2,
        marker: marker.map(String::from),
    };
    let names = |v: Vec<User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(
        names(s.search_users("al", &page(None)).await.unwrap()),
        ["al_x", "alfred"]
    );
    assert_eq!(
        names(s.search_users("al", &page(Some("alfred"))).await.unwrap()),
        ["alice"]
    );
    assert_eq!(
        names(s.search_users("al_", &page(None)).await.unwrap()),
        ["al_x"],
        "_ is literal"
    );
    assert_eq!(
        names(s.search_users("bob@ex", &page(None)).await.unwrap()),
        ["bob"],
        "by email"
    );
    assert!(s.search_users("zz", &page(None)).await.unwrap().is_empty());

    let bob = s.get_account_by_name("bob").await.unwrap();
    let seq = last_seq(&s).await;
    s.set_account_status(&cli(), bob.id, bob.id, AccountStatus::Suspended)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        s.get_user(bob.id).await.unwrap().status,
        AccountStatus::Suspended
    );
    assert_eq!(changes_after(&s, seq).await, [(ChangeKind::User, bob.id)]);
    let snap = s.load_policy_snapshot().await.unwrap();
    assert!(!snap.users.iter().find(|u| u.id == bob.id).unwrap().active);
    s.set_account_status(&cli(), bob.id, bob.id, AccountStatus::Active)
        .await
        .map(Written::unindexed)
        .unwrap();
    assert_eq!(
        s.get_user(bob.id).await.unwrap().status,
        AccountStatus::Active
    );
    let events = s.list_events(Some("account.status_set"), 10).await.unwrap();
    assert_eq!(events.len(), 2);
    not_found(
        s.set_account_status(&cli(), bob.id, 4242, AccountStatus::Suspended)
            .await
            .map(Written::unindexed),
    );
    assert!(
        s.set_account_status(&cli(), bob.id, bob.id, AccountStatus::Deleted)
            .await
            .map(Written::unindexed)
            .is_err()
    );
}

/// The export reads every live user once, oldest first, in chunks, and stops
/// when its reader goes away.
pub async fn export_users_in_chunks(s: Arc<SqlStore>) {
    let n = 1500;
    for i in 0..n {
        user(&s, &format!("user{i:05}")).await;
    }
    let gone = user(&s, "gone").await;
    s.delete_user(&cli(), gone.id, gone.id)
        .await
        .map(Written::unindexed)
        .unwrap();
    let render: algohub_core::store::MakeExportRender = Arc::new(|| {
        Box::new(|u, out: &mut Vec<u8>| {
            let line = format!("{},{},{},{}\n", u.username, u.email, u.status, u.uuid);
            out.extend_from_slice(line.as_bytes());
        })
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn({
        let s = s.clone();
        async move { s.export_users(render, tx).await.unwrap() }
    });
    let mut text = String::new();
    let mut chunks = 0;
    while let Some(chunk) = rx.recv().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        chunks += 1;
    }
    assert_eq!(task.await.unwrap(), n);
    assert!(chunks > 1, "{chunks} chunk(s)");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n as usize);
    assert!(lines[0].starts_with("user00000,user00000@example.com,active,"));
    assert!(lines[1499].starts_with("user01499,user01499@example.com,active,"));
    // A reader that stops early ends the export.
    let render: algohub_core::store::MakeExportRender = Arc::new(|| {
        Box::new(|u, out: &mut Vec<u8>| {
            out.extend_from_slice(&[b'x'; 100]);
            out.extend_from_slice(u.uuid.as_bytes());
        })
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn({
        let s = s.clone();
        async move { s.export_users(render, tx).await.unwrap() }
    });
    rx.recv().await.unwrap().unwrap();
    drop(rx);
    assert!(task.await.unwrap() < n, "stopped early");
}
