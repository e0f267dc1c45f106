// figment's `Jail` takes closures that return its (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

/// `Config::resolve` in a figment `Jail` (its own working directory and
/// environment, one jail at a time), as an error string on failure.
fn resolve(global: &Overrides, serve: &ServeOverrides) -> Result<Config, String> {
    Config::resolve(global, serve).map_err(|e| e.to_string())
}

fn checked(config: Config) -> Result<Config, String> {
    config.finish().map_err(|e| e.to_string())
}

/// `default.toml` is the defaults: it parses to exactly `Config::default()`,
/// names every setting, and leaves commented out only settings whose default
/// is empty (derived from others when resolved).
#[test]
fn the_default_file_is_exactly_the_defaults() {
    let parsed: Config = Figment::from(Toml::string(DEFAULT_TOML))
        .extract()
        .expect("the default file parses");
    assert!(parsed == Config::default(), "{parsed:?}");
    let defaults = serde_json::to_value(Config::default()).expect("serializes");
    let names = setting_names();
    assert_eq!(names.len(), defaults.as_object().map_or(0, |o| o.len()));
    for name in names {
        let set = DEFAULT_TOML
            .lines()
            .any(|l| l.starts_with(&format!("{name} = ")));
        let commented = DEFAULT_TOML
            .lines()
            .any(|l| l.starts_with(&format!("# {name} = ")));
        assert!(set || commented, "default.toml documents {name}");
        if !set {
            let empty = matches!(&defaults[name], serde_json::Value::Null)
                || defaults[name] == serde_json::json!("");
            assert!(empty, "{name} has a default, so default.toml sets it");
        }
    }
    // Defaults that live beside the code that uses them.
    let d = Config::default();
    assert_eq!(
        (i64::from(d.default_work_limit), d.metering_max_backlog),
        (DEFAULT_WORK_LIMIT, DEFAULT_MAX_BACKLOG)
    );
    assert_eq!(d.wasm_fuel_per_sec, algohub_runtime::DEFAULT_FUEL_PER_SEC);
}

/// Each layer beats the one below it: default < file < environment < flag,
/// and `ALGOHUB_*` variables that are not settings are left alone.
#[test]
fn layers_go_default_file_environment_flag() {
    Jail::expect_with(|jail| {
        let flag = ServeOverrides {
            default_work_limit: Some(4),
            ..Default::default()
        };
        let none = ServeOverrides::default();
        let global = Overrides::default();
        jail.set_env("ALGOHUB_NOT_A_SETTING", "ignored");
        jail.set_env("ALGOHUB_CONFIG_EXTRA", "ignored");
        let c = resolve(&global, &none)?;
        assert_eq!(c.default_work_limit, DEFAULT_WORK_LIMIT as u32);
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.database_url, "sqlite:./algohub-data/algohub.db");
        assert_eq!(c.base_url, "http://127.0.0.1:8080");

        jail.create_file(
            "algohub.toml",
            "default_work_limit = 2\nlog_format = \"json\"\ndata_dir = \"/srv/a\"\n",
        )?;
        let c = resolve(&global, &none)?;
        assert_eq!(c.default_work_limit, 2);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.database_url, "sqlite:/srv/a/algohub.db");

        jail.set_env("ALGOHUB_DEFAULT_WORK_LIMIT", "3");
        jail.set_env("ALGOHUB_LOG_FORMAT", "human");
        jail.set_env("ALGOHUB_MAX_ORGS_PER_USER", "1");
        let c = resolve(&global, &none)?;
        assert_eq!(c.default_work_limit, 3);
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.max_orgs_per_user, Some(1));

        let c = resolve(
            &Overrides {
                log_format: Some(LogFormat::Json),
                ..Default::default()
            },
            &flag,
        )?;
        assert_eq!(c.default_work_limit, 4);
        assert_eq!(c.log_format, LogFormat::Json);
        // Flags not given leave the lower layers alone.
        assert_eq!(c.max_orgs_per_user, Some(1));

        // --config names another file, which then must exist.
        jail.create_file("other.toml", "default_work_limit = 5\n")?;
        jail.clear_env();
        let other = |name: &str| Overrides {
            config: Some(name.into()),
            ..Default::default()
        };
        assert_eq!(resolve(&other("other.toml"), &none)?.default_work_limit, 5);
        let missing = resolve(&other("missing.toml"), &none).expect_err("missing file");
        assert!(missing.contains("missing.toml"), "{missing}");
        Ok(())
    });
}

/// A value of the wrong type, an unknown variant or key, or a value out of
/// range is refused with the setting's name (and where it came from).
#[test]
fn bad_values_are_refused_naming_the_setting() {
    Jail::expect_with(|jail| {
        let (global, serve) = (Overrides::default(), ServeOverrides::default());
        jail.set_env("ALGOHUB_DEFAULT_WORK_LIMIT", "lots");
        let err = resolve(&global, &serve).expect_err("not a number");
        assert!(err.contains("ALGOHUB_DEFAULT_WORK_LIMIT"), "{err}");
        jail.clear_env();

        jail.create_file("algohub.toml", "log_format = \"fancy\"\n")?;
        let err = resolve(&global, &serve).expect_err("no such format");
        assert!(
            err.contains("log_format") && err.contains("fancy") && err.contains("json"),
            "{err}"
        );
        jail.create_file("algohub.toml", "lisen = \"127.0.0.1:1\"\n")?;
        let err = resolve(&global, &serve).expect_err("no such setting");
        assert!(
            err.contains("lisen") && err.contains("algohub.toml"),
            "{err}"
        );
        jail.create_file("algohub.toml", "default_work_limit = 0\n")?;
        let err = resolve(&global, &serve).expect_err("out of range");
        assert!(err.starts_with("default_work_limit"), "{err}");
        Ok(())
    });
}

#[test]
fn passwords_are_redacted_and_derived_settings_filled_in() {
    assert_eq!(
        redact_url("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(redact_url("sqlite:./x.db"), "sqlite:./x.db");
    assert_eq!(
        redact_url("postgres://h/db?user=u&password=pw&x=1"),
        "postgres://h/db?user=u&password=***&x=1"
    );
    let c = checked(Config {
        database_url: "postgres://a:pw@h/d".into(),
        smtp_url: Some("smtps://mail:smtpsecret@h:465".into()),
        listen: "0.0.0.0:9000".into(),
        ..Default::default()
    })
    .expect("valid");
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("pw@") && !shown.contains("smtpsecret"),
        "{shown}"
    );
    assert!(shown.contains("a:***@h/d"));
    assert!(shown.contains(&format!("default_work_limit: {DEFAULT_WORK_LIMIT}")));
    assert_eq!(c.base_url, "http://0.0.0.0:9000");
    let c = checked(Config {
        base_url: "https://hub.example/".into(),
        smtp_url: Some(" ".into()),
        policy_poll_ms: 1,
        ..Default::default()
    })
    .expect("valid");
    assert_eq!(
        (c.base_url.as_str(), c.smtp_url, c.policy_poll_ms),
        ("https://hub.example", None, 10)
    );
    assert!(
        checked(Config {
            metering_max_backlog: 0,
            ..Default::default()
        })
        .is_err(),
        "a backlog of 0 is refused"
    );
}

/// The call limits' defaults are the built-in ones, and invalid values are
/// refused with the setting's name.
#[test]
fn call_limits_are_checked() {
    let c = checked(Config::default()).expect("the defaults are valid");
    assert_eq!((c.call_timeout_secs, c.max_call_timeout_secs), (300, 3000));
    let settings = c.settings();
    assert_eq!(
        (
            settings.call_timeout,
            settings.max_call_timeout,
            settings.wasm_fuel_per_sec
        ),
        (
            std::time::Duration::from_secs(300),
            std::time::Duration::from_secs(3000),
            c.wasm_fuel_per_sec
        )
    );
    // A call with the default timeout gets the fuel of the runtime's
    // default limits (what the benchmarks' floor runs with).
    assert_eq!(
        algohub_core::services::fuel_budget(settings.call_timeout, settings.wasm_fuel_per_sec),
        algohub_runtime::Limits::default().fuel
    );
    let lowered = checked(Config {
        call_timeout_secs: 10,
        max_call_timeout_secs: 60,
        wasm_fuel_per_sec: 1000,
        ..Default::default()
    })
    .expect("lower limits are fine");
    assert_eq!(
        (
            lowered.call_timeout_secs,
            lowered.max_call_timeout_secs,
            lowered.wasm_fuel_per_sec
        ),
        (10, 60, 1000)
    );
    let d = Config::default;
    for (bad, named) in [
        (
            Config {
                call_timeout_secs: 0,
                ..d()
            },
            "call_timeout_secs",
        ),
        (
            Config {
                call_timeout_secs: 61,
                max_call_timeout_secs: 60,
                ..d()
            },
            "call_timeout_secs",
        ),
        (
            Config {
                max_call_timeout_secs: 3001,
                ..d()
            },
            "max_call_timeout_secs",
        ),
        (
            Config {
                max_call_timeout_secs: 0,
                ..d()
            },
            "max_call_timeout_secs",
        ),
        (
            Config {
                wasm_fuel_per_sec: 0,
                ..d()
            },
            "wasm_fuel_per_sec",
        ),
        (
            Config {
                wasm_fuel_per_sec: MAX_WASM_FUEL_PER_SEC + 1,
                ..d()
            },
            "wasm_fuel_per_sec",
        ),
        (
            Config {
                max_impersonation_minutes: 1441,
                ..d()
            },
            "max_impersonation_minutes",
        ),
    ] {
        let err = checked(bad).expect_err(named);
        assert!(err.starts_with(named), "{named}: {err:?}");
    }
}
