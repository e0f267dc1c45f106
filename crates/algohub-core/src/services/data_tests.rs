//! Data path and ACL parsing.
use super::*;

#[test]
fn paths_are_checked() {
    assert_eq!(
        split_path("data://.my/coll//a/b.txt/").unwrap(),
        [".my", "coll", "a", "b.txt"]
    );
    for bad in [
        "alice/../bob/x",
        "alice/./x",
        "alice/coll/.algohub-acl",
        "alice/c\0x",
        "alice/c\\x",
        "s3://bucket/key",
        &format!("alice/{}", "x".repeat(256)),
    ] {
        assert!(split_path(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn acl_lists() {
    let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(DataAcl::from_read_list(&l(&[])).unwrap(), DataAcl::Private);
    assert_eq!(
        DataAcl::from_read_list(&l(&["user://*"])).unwrap(),
        DataAcl::Public
    );
    assert_eq!(
        DataAcl::from_read_list(&l(&["algo://.my/*"])).unwrap(),
        DataAcl::MyAlgos
    );
    assert!(DataAcl::from_read_list(&l(&["anyone"])).is_err());
    for acl in [DataAcl::Public, DataAcl::MyAlgos, DataAcl::Private] {
        let list: Vec<String> = acl.to_read_list().iter().map(|s| s.to_string()).collect();
        assert_eq!(DataAcl::from_read_list(&list).unwrap(), acl);
    }
}
