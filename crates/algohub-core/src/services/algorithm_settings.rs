//! An algorithm's v1 `details` and `settings` objects: a change is checked
//! key by key (with messages that name the key and its allowed values) and
//! merged into what the algorithm has; settings then become the typed
//! `AlgorithmSettings`.

use crate::error::{Code, Error, Result};
use crate::model::AlgorithmSettings;
use serde_json::{Map, Value};

fn one_of(key: &str, v: &Value, allowed: &[&str]) -> Result<()> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(Error::invalid(format!(
            "settings.{key} must be one of {}",
            allowed.join(", ")
        ))),
    }
}

/// A cap on an algorithm's calls (`max_timeout_secs`, `max_fuel_per_call`): a
/// whole number from 1 to the cluster's own limit, or `null` to remove it.
fn check_cap(key: &str, v: &Value, cluster_max: u64, cluster_setting: &str) -> Result<()> {
    match v.as_u64() {
        _ if v.is_null() => Ok(()),
        Some(n) if (1..=cluster_max).contains(&n) => Ok(()),
        _ => Err(Error::invalid(format!(
            "settings.{key} must be a whole number from 1 to {cluster_max} ({cluster_setting} \
             of this cluster), or null for the cluster's limit"
        ))),
    }
}

/// Merges `patch` into `base`, validating every key (against the cluster's
/// limits for the call caps). On create, the keys the v1 `SettingsMandatory`
/// model requires must be present.
pub(crate) fn check_settings(
    base: &AlgorithmSettings,
    patch: &Value,
    creating: bool,
    cluster: &super::Settings,
) -> Result<AlgorithmSettings> {
    let patch = match patch {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => return Err(Error::invalid("settings must be a JSON object")),
    };
    // Each key is checked as JSON, for messages that name it and its values.
    let mut out = match serde_json::to_value(base) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in patch {
        match k.as_str() {
            "algorithm_callability" => one_of(&k, &v, &["public", "private"])?,
            "source_visibility" => one_of(&k, &v, &["open", "closed"])?,
            "license" => one_of(&k, &v, &["apl", "apache2", "gpl3", "mit"])?,
            "network_access" => one_of(&k, &v, &["isolated", "full"])?,
            "environment" => one_of(&k, &v, &["cpu", "gpu"])?,
            "pipeline_enabled" | "insights_enabled" => {
                if !v.is_boolean() {
                    return Err(Error::invalid(format!(
                        "settings.{k} must be true or false"
                    )));
                }
            }
            "royalty_microcredits" => {
                let max = cluster.max_royalty_microcredits;
                if v.as_i64().is_none_or(|n| !(0..=max).contains(&n)) {
                    return Err(Error::invalid(format!(
                        "settings.royalty_microcredits must be a whole number from 0 to {max} \
                         (the cluster's max_royalty_microcredits)"
                    )));
                }
            }
            super::calls::MAX_TIMEOUT_SETTING => check_cap(
                &k,
                &v,
                cluster.max_call_timeout.as_secs(),
                "max_call_timeout_secs",
            )?,
            super::calls::MAX_FUEL_SETTING => check_cap(
                &k,
                &v,
                super::fuel_budget(cluster.max_call_timeout, cluster.wasm_fuel_per_sec),
                "wasm_fuel_per_sec × max_call_timeout_secs",
            )?,
            "language" | "package_set" | "algorithm_environment" => {
                if v.as_str().is_none_or(|s| s.chars().count() > 100) {
                    return Err(Error::invalid(format!(
                        "settings.{k} must be a string of at most 100 characters"
                    )));
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown setting {other:?}; known: algorithm_callability, source_visibility, license, network_access, \
                     pipeline_enabled, royalty_microcredits, language, environment, package_set, algorithm_environment, \
                     max_timeout_secs, max_fuel_per_call"
                )));
            }
        }
        if v.is_null() {
            // Only the caps may be null (checked above): back to the cluster's limit.
            out.remove(&k);
            continue;
        }
        out.insert(k, v);
    }
    if creating {
        for k in [
            "source_visibility",
            "license",
            "network_access",
            "pipeline_enabled",
        ] {
            if !out.contains_key(k) {
                return Err(Error::new(
                    Code::MissingField,
                    format!("settings.{k} is required"),
                ));
            }
        }
        out.entry("algorithm_callability")
            .or_insert(Value::from("private"));
        out.entry("royalty_microcredits").or_insert(Value::from(0));
    }
    if out.get("source_visibility").and_then(Value::as_str) == Some("closed")
        && out.get("license").and_then(Value::as_str) != Some("apl")
    {
        return Err(Error::invalid(
            "settings.source_visibility may be closed only with the apl license",
        ));
    }
    serde_json::from_value(Value::Object(out))
        .map_err(|e| Error::invalid(format!("invalid settings: {e}")))
}

pub(crate) fn check_details(base: &Value, patch: &Value, creating: bool) -> Result<Value> {
    let patch = match patch {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        _ => return Err(Error::invalid("details must be a JSON object")),
    };
    let mut out = base.as_object().cloned().unwrap_or_default();
    for (k, v) in patch {
        let max = match k.as_str() {
            "label" | "tagline" => 100,
            "summary" => 10_000,
            other => {
                return Err(Error::invalid(format!(
                    "unknown detail {other:?}; known: label, summary, tagline"
                )));
            }
        };
        if v.as_str().is_none_or(|s| s.chars().count() > max) {
            return Err(Error::invalid(format!(
                "details.{k} must be a string of at most {max} characters"
            )));
        }
        out.insert(k, v);
    }
    if creating && !out.contains_key("label") {
        return Err(Error::new(Code::MissingField, "details.label is required"));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Callability, License};
    use serde_json::json;

    #[test]
    fn settings_are_validated_and_merged() {
        let cluster = crate::services::Settings::default();
        let mandatory = json!({"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false});
        let none = AlgorithmSettings::default();
        let s = check_settings(&none, &mandatory, true, &cluster).unwrap();
        assert_eq!(s.algorithm_callability, Some(Callability::Private));
        assert_eq!(s.royalty_microcredits, Some(0));
        assert!(check_settings(&none, &json!({"license": "mit"}), true, &cluster).is_err());
        assert!(check_settings(&s, &json!({"license": "wtfpl"}), false, &cluster).is_err());
        assert!(check_settings(&s, &json!({"royalty_microcredits": -1}), false, &cluster).is_err());
        assert!(check_settings(&s, &json!({"colour": "red"}), false, &cluster).is_err());
        assert!(
            check_settings(&s, &json!({"source_visibility": "closed"}), false, &cluster).is_err()
        );
        let s2 = check_settings(
            &s,
            &json!({"source_visibility": "closed", "license": "apl", "royalty_microcredits": 5}),
            false,
            &cluster,
        )
        .unwrap();
        assert_eq!(
            (s2.license, s2.royalty_microcredits),
            (Some(License::Apl), Some(5))
        );
        assert!(check_details(&Value::Null, &json!({"summary": "x"}), true).is_err());
        assert!(check_details(&Value::Null, &json!({"label": "X", "bogus": 1}), true).is_err());
    }

    #[test]
    fn call_caps_stay_within_the_clusters_limits() {
        let cluster = crate::services::Settings {
            max_call_timeout: std::time::Duration::from_secs(600),
            wasm_fuel_per_sec: 1000,
            ..Default::default()
        };
        let base = AlgorithmSettings {
            license: Some(License::Mit),
            ..Default::default()
        };
        let s = check_settings(
            &base,
            &json!({"max_timeout_secs": 600, "max_fuel_per_call": 600_000}),
            false,
            &cluster,
        )
        .unwrap();
        assert_eq!(
            (s.max_timeout_secs, s.max_fuel_per_call),
            (Some(600), Some(600_000))
        );
        for bad in [
            json!({"max_timeout_secs": 601}),
            json!({"max_timeout_secs": 0}),
            json!({"max_timeout_secs": 1.5}),
            json!({"max_timeout_secs": "10"}),
            json!({"max_fuel_per_call": 600_001}),
            json!({"max_fuel_per_call": -1}),
            json!({"license": null}),
        ] {
            let err = check_settings(&s, &bad, false, &cluster).unwrap_err();
            assert_eq!(err.code, Code::InvalidInput, "{bad}");
        }
        let err =
            check_settings(&s, &json!({"max_timeout_secs": 601}), false, &cluster).unwrap_err();
        assert!(err.message.contains("from 1 to 600"), "{}", err.message);
        // null removes a cap.
        let s = check_settings(&s, &json!({"max_timeout_secs": null}), false, &cluster).unwrap();
        assert!(s.max_timeout_secs.is_none(), "{s:?}");
        assert_eq!(s.max_fuel_per_call, Some(600_000));
    }
}
