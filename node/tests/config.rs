//! The config file: unknown keys, wrong types and bad durations are errors that name the key
//! and the line; environment overrides; the template and the printed config read back.

use std::time::Duration;

use weft_node::{Config, ConfigError};

fn parse_err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(config) => panic!("parsed: {config:?}"),
        Err(err) => err,
    }
}

#[test]
fn an_unknown_key_is_an_error_naming_it_and_its_line() {
    let err = parse_err("[node]\nnetwork = \"x\"\nbogus_key = 1\n");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ConfigError::Parse {
                line: Some((3, _)),
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("bogus_key"), "{text}");
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn an_unknown_section_or_layer_key_is_an_error_naming_it() {
    assert!(parse_err("[nodes]\n").to_string().contains("nodes"));
    let err = parse_err("[discovery]\nannounce_every_ms = 5\n").to_string();
    assert!(err.contains("announce_every_ms"), "{err}");
    let err = parse_err("[gossip.membership]\nactive_view = 5\n").to_string();
    assert!(err.contains("active_view"), "{err}");
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_naming_the_line() {
    let err = parse_err("[node]\nnetwork = 5\n");
    let text = err.to_string();
    assert!(text.contains("invalid type"), "{text}");
    assert!(text.contains("line 2"), "{text}");
    let err = parse_err("[node]\nbind = \"not an address\"\n").to_string();
    assert!(err.contains("line 2"), "{err}");
    let err = parse_err("[registry]\nk = \"twenty\"\n").to_string();
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn a_bad_duration_is_an_error_saying_why() {
    for (value, why) in [("5", "unit"), ("5 parsecs", "parsecs"), ("soon", "number")] {
        let err = parse_err(&format!("[node]\nshutdown_grace = \"{value}\"\n")).to_string();
        assert!(err.contains(why), "{value}: {err}");
        assert!(err.contains("line 2"), "{value}: {err}");
    }
    let config = Config::from_toml_str("[node]\nshutdown_grace = \"1m30s\"\n").expect("parses");
    assert_eq!(config.node.shutdown_grace, Duration::from_secs(90));
}

#[test]
fn a_bad_bootstrap_peer_is_an_error() {
    let err = parse_err("[bootstrap]\npeers = [\"weft1nonsense\"]\n").to_string();
    assert!(err.contains("ticket"), "{err}");
    let err = parse_err("[bootstrap]\npeers = [\"127.0.0.1:4433\"]\n").to_string();
    assert!(err.contains("neither a ticket"), "{err}");
}

#[test]
fn the_admin_api_must_stay_on_loopback() {
    let err = parse_err("[admin]\nbind = \"0.0.0.0:7000\"\n");
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "admin.bind"),
        "{err}"
    );
}

#[test]
fn a_layer_config_that_cannot_run_is_refused() {
    let err = parse_err("[registry]\nk = 0\n");
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "registry"),
        "{err}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weft.toml");
    let err = Config::load(&path).expect_err("missing file").to_string();
    assert!(err.contains("weft.toml"), "{err}");
    std::fs::write(&path, "[node]\ntypo = true\n").expect("write");
    let err = Config::load(&path).expect_err("bad key").to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("typo"), "{err}");
}

#[test]
fn the_environment_overrides_the_file() {
    let mut config =
        Config::from_toml_str("[node]\nnetwork = \"from-file\"\nshutdown_grace = \"9s\"\n")
            .expect("parses");
    let key = weft_transport::SecretKey::generate().peer_id();
    let vars = [
        ("WEFT_NODE_NETWORK", "from-env".to_string()),
        ("WEFT_NODE_SHUTDOWN_GRACE", "250ms".to_string()),
        ("WEFT_NODE_BIND", "127.0.0.1:4433".to_string()),
        ("WEFT_BOOTSTRAP_PEERS", format!("{key}@127.0.0.1:5000, ")),
        ("WEFT_ADMIN_ENABLED", "false".to_string()),
        // Not the node's: left to the command-line tool.
        ("WEFT_DATA_DIR", "/somewhere".to_string()),
        ("HOME", "/root".to_string()),
    ];
    config
        .apply_env(vars.into_iter().map(|(k, v)| (k.to_string(), v)))
        .expect("applies");
    assert_eq!(config.node.network, "from-env");
    assert_eq!(config.node.shutdown_grace, Duration::from_millis(250));
    assert_eq!(config.node.bind.port(), 4433);
    assert_eq!(config.bootstrap.peers.len(), 1);
    assert_eq!(config.bootstrap.peers[0].id, key);
    assert!(!config.admin.enabled);
}

#[test]
fn a_bad_or_unknown_node_variable_is_an_error_naming_it() {
    let mut config = Config::default();
    for (var, value) in [
        ("WEFT_NODE_BINDD", "127.0.0.1:1"),
        ("WEFT_NODE_SHUTDOWN_GRACE", "forever"),
        ("WEFT_ADMIN_ENABLED", "maybe"),
        ("WEFT_ADMIN_BIND", "10.0.0.1:80"),
    ] {
        let err = config
            .apply_env([(var.to_string(), value.to_string())])
            .expect_err(var)
            .to_string();
        assert!(
            err.contains(var) || err.contains("admin.bind"),
            "{var}: {err}"
        );
        config = Config::default();
    }
}

#[test]
fn the_template_parses_to_the_defaults() {
    assert_eq!(
        Config::from_toml_str(Config::template()).expect("parses"),
        Config::default()
    );
}

#[test]
fn the_printed_config_reads_back_the_same() {
    let mut config = Config::default();
    config.node.shutdown_grace = Duration::from_millis(1500);
    config.bootstrap.peers = vec![
        weft_transport::PeerAddr::new(weft_transport::SecretKey::generate().peer_id())
            .with_direct("127.0.0.1:9".parse().expect("addr")),
    ];
    config.discovery.announce_interval = Duration::from_secs(3);
    let text = config.to_toml();
    assert!(text.contains("shutdown_grace = \"1500ms\""), "{text}");
    assert!(text.contains("[sync]"), "{text}");
    assert_eq!(Config::from_toml_str(&text).expect("parses"), config);
}

#[test]
fn layers_can_be_left_out_in_the_file_and_the_environment() {
    let config =
        Config::from_toml_str("[layers]\ndiscovery = false\nsync = false\n").expect("parses");
    assert!(!config.layers.discovery && config.layers.registry && !config.layers.sync);
    // Printed back, and read back the same.
    let text = config.to_toml();
    assert!(text.contains("[layers]"), "{text}");
    assert_eq!(Config::from_toml_str(&text).expect("parses"), config);

    let mut config = Config::default();
    config
        .apply_env([
            ("WEFT_LAYERS_REGISTRY".to_string(), "false".to_string()),
            ("WEFT_LAYERS_SYNC".to_string(), "0".to_string()),
        ])
        .expect("applies");
    assert!(config.layers.discovery && !config.layers.registry && !config.layers.sync);
    let err = Config::default()
        .apply_env([("WEFT_LAYERS_SYNK".to_string(), "false".to_string())])
        .expect_err("unknown")
        .to_string();
    assert!(err.contains("WEFT_LAYERS_SYNK"), "{err}");
    let err = Config::default()
        .apply_env([("WEFT_LAYERS_SYNC".to_string(), "off".to_string())])
        .expect_err("bad value")
        .to_string();
    assert!(
        err.contains("WEFT_LAYERS_SYNC") && err.contains("true or false"),
        "{err}"
    );
}

#[test]
fn gossip_cannot_be_left_out() {
    let err = parse_err("[layers]\ngossip = false\n").to_string();
    assert!(err.contains("gossip") && err.contains("line 2"), "{err}");
}

const CAT: &str = "[[service]]\nname = \"echo\"\nexec = [\"cat\"]\n";

#[test]
fn services_are_read_with_their_defaults_and_printed_back() {
    let text = format!(
        "{CAT}\n[[service]]\nname = \"upper\"\nexec = [\"tr\", \"a-z\", \"A-Z\"]\ntimeout = \"2s\"\nmax_concurrent = 3\n"
    );
    let config = Config::from_toml_str(&text).expect("parses");
    assert_eq!(config.services.len(), 2);
    assert_eq!(config.services[0].exec, ["cat"]);
    assert_eq!(
        config.services[0].timeout,
        weft_node::service::DEFAULT_HANDLER_TIMEOUT
    );
    assert_eq!(
        config.services[0].max_concurrent,
        weft_node::service::DEFAULT_MAX_CONCURRENT
    );
    assert_eq!(config.services[1].timeout, Duration::from_secs(2));
    assert_eq!(config.services[1].max_concurrent, 3);
    let printed = config.to_toml();
    assert!(printed.contains("[[service]]"), "{printed}");
    assert_eq!(Config::from_toml_str(&printed).expect("parses"), config);
    // None by default, and then none printed.
    assert!(!Config::default().to_toml().contains("service"));
}

#[test]
fn a_service_that_cannot_run_is_refused_naming_it() {
    let cases = [
        ("[[service]]\nname = \"x\"\nexec = []\n", "service[0].exec"),
        (
            "[[service]]\nname = \"x\"\nexec = [\"\"]\n",
            "service[0].exec",
        ),
        (
            "[[service]]\nname = \"\"\nexec = [\"cat\"]\n",
            "service[0].name",
        ),
        (
            "[[service]]\nname = \"a\\tb\"\nexec = [\"cat\"]\n",
            "service[0].name",
        ),
        (
            "[[service]]\nname = \"x\"\nexec = [\"cat\"]\nmax_concurrent = 0\n",
            "service[0].max_concurrent",
        ),
        (
            "[[service]]\nname = \"x\"\nexec = [\"cat\"]\ntimeout = \"0s\"\n",
            "service[0].timeout",
        ),
    ];
    for (text, key) in cases {
        let err = parse_err(text);
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
            "{text}: {err}"
        );
    }
    // The same name twice.
    let err = parse_err(&format!("{CAT}{CAT}"));
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "service[1].name"),
        "{err}"
    );
    assert!(err.to_string().contains("twice"), "{err}");
    // No exec at all, or a key the table does not have.
    assert!(
        parse_err("[[service]]\nname = \"x\"\n")
            .to_string()
            .contains("exec")
    );
    let err = parse_err("[[service]]\nname = \"x\"\nexec = [\"cat\"]\nshell = true\n").to_string();
    assert!(err.contains("shell") && err.contains("line 4"), "{err}");
}

#[test]
fn services_need_the_registry() {
    let err = parse_err(&format!("[layers]\nregistry = false\n\n{CAT}"));
    let text = err.to_string();
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "layers.registry"),
        "{text}"
    );
    assert!(text.contains("echo") && text.contains("registry"), "{text}");
    // Turned off from the environment, the same check holds.
    let mut config = Config::from_toml_str(CAT).expect("parses");
    let err = config
        .apply_env([("WEFT_LAYERS_REGISTRY".to_string(), "false".to_string())])
        .expect_err("services need the registry");
    assert!(err.to_string().contains("layers.registry"), "{err}");
}

#[test]
fn a_relative_program_path_is_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weft.toml");
    std::fs::write(
        &path,
        "[[service]]\nname = \"a\"\nexec = [\"./bin/answer\", \"./arg\"]\n\n[[service]]\nname = \"b\"\nexec = [\"cat\"]\n",
    )
    .expect("write");
    let config = Config::load(&path).expect("loads");
    assert_eq!(
        config.services[0].exec[0],
        dir.path().join("./bin/answer").display().to_string()
    );
    // Arguments are the program's business, and a bare name is looked up in PATH.
    assert_eq!(config.services[0].exec[1], "./arg");
    assert_eq!(config.services[1].exec[0], "cat");
}

#[test]
fn calls_settings_are_read_and_checked() {
    let config = Config::from_toml_str("[calls]\nattempt_timeout = \"1500ms\"\nmax_attempts = 2\n")
        .expect("parses");
    let options = config.calls.options();
    assert_eq!(options.attempt_timeout, Duration::from_millis(1500));
    assert_eq!(options.max_attempts, 2);
    assert_eq!(options.timeout, weft_node::service::DEFAULT_CALL_TIMEOUT);
    let err = parse_err("[calls]\nmax_attempts = 0\n");
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "calls.max_attempts"),
        "{err}"
    );
}

#[test]
fn topology_settings_are_read_and_checked() {
    let config = Config::from_toml_str(
        "[topology]\nanswer = false\nmax_asked = 8\nmax_depth = 2\nquery_timeout = \"300ms\"\n",
    )
    .expect("parses");
    assert!(!config.topology.answer);
    assert_eq!(
        (config.topology.max_asked, config.topology.max_depth),
        (8, 2)
    );
    assert_eq!(config.topology.query_timeout, Duration::from_millis(300));
    assert!(
        Config::default().topology.answer,
        "answers are on by default"
    );
    for (text, key) in [
        ("max_asked = 0", "topology.max_asked"),
        ("max_depth = 0", "topology.max_depth"),
        ("query_timeout = \"0s\"", "topology.query_timeout"),
    ] {
        let err = parse_err(&format!("[topology]\n{text}\n"));
        assert!(
            matches!(&err, ConfigError::Invalid { key: got, .. } if got == key),
            "{text}: {err}"
        );
    }
}
