//! The deployment files, checked where Docker cannot run: the compose file
//! parses and wires two nodes to one PostgreSQL with one secret behind
//! nginx, its nginx configuration passes `nginx -t`, and the nodes' command
//! line is one `shop serve` accepts.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn repository(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// compose.yaml as JSON, read by PyYAML (what docker compose reads is YAML
/// with anchors, which PyYAML resolves the same way).
fn compose() -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(repository("compose.yaml"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "compose.yaml does not parse (PyYAML: pip install pyyaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn the_compose_file_runs_two_nodes_on_one_postgres_behind_nginx() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["nginx", "postgres", "shop1", "shop2"]);
    let (one, two) = (&services["shop1"], &services["shop2"]);
    assert_eq!(one, two, "the nodes are configured alike");
    let env = &one["environment"];
    let url = env["SHOP_DATABASE_URL"].as_str().expect("a database URL");
    assert!(
        url.starts_with("postgres://") && url.contains("@postgres:5432/"),
        "{url}"
    );
    let secret = env["SHOP_JWT_SECRET"].as_str().expect("a shared secret");
    assert!(
        secret.contains(":?"),
        "the secret must be required, not defaulted: {secret}"
    );
    assert_eq!(
        one["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    let postgres_env = &services["postgres"]["environment"];
    assert_eq!(postgres_env["POSTGRES_USER"], "shop");
    assert_eq!(postgres_env["POSTGRES_DB"], "shop");
    let mounts = services["nginx"]["volumes"].as_array().expect("volumes");
    assert!(
        mounts
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("./deploy/nginx.conf:")),
        "{mounts:?}"
    );
    assert!(repository("Dockerfile").exists());

    // The nodes' command line is one that `shop serve` takes: with an
    // unreachable database it fails on connecting, not on its arguments.
    let args: Vec<&str> = one["command"]
        .as_array()
        .expect("a command")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(&args)
        .args(["--addr", "127.0.0.1:0"])
        .env("SHOP_DATABASE_URL", "postgres://shop@127.0.0.1:1/shop")
        .env("SHOP_JWT_SECRET", SHARED_JWT_SECRET)
        .env_remove("SHOP_DB")
        .output()
        .expect("run shop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("opening the database postgres://shop@127.0.0.1:1/shop"),
        "{stderr}"
    );
}

#[test]
fn the_nginx_configuration_passes_nginx_t() {
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|bin| Command::new(bin).arg("-v").output().is_ok())
        .expect("nginx (Debian's nginx-light; bash .ci/run installs it)");
    let dir = tempfile::tempdir().expect("temp dir");
    // The compose network's host names do not resolve here, and port 80
    // needs root: the same configuration with loopback names and a free port.
    let config = std::fs::read_to_string(repository("deploy/nginx.conf"))
        .expect("deploy/nginx.conf")
        .replace("shop1:7467", "127.0.0.1:7467")
        .replace("shop2:7467", "127.0.0.1:7468")
        .replace("listen 80;", "listen 127.0.0.1:18080;");
    let file = dir.path().join("nginx.conf");
    std::fs::write(&file, config).expect("write");
    let prefix = dir.path().display().to_string();
    let out = Command::new(nginx)
        .args([
            "-t",
            "-p",
            &prefix,
            "-e",
            &format!("{prefix}/error.log"),
            "-c",
        ])
        .arg(&file)
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
