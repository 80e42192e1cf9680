//! schemathesis (PyPI) against the real server: every operation of the
//! served OpenAPI document, every check (status codes, content types,
//! headers, response schemas, positive data accepted and negative data
//! refused, auth, methods), from the document's examples, its boundaries
//! (coverage) and random data (fuzzing), as the admin. Any finding fails the
//! test with schemathesis's own report, which says how to replay each case.
//!
//! `tests/e2e/schemathesis/hooks.py` gives the run its sessions;
//! `schemathesis.toml` beside it lists, with reasons, the few operations whose
//! refusals of schema-valid data depend on state or judgement.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};

/// Random cases per operation in the fuzzing phase (the coverage phase's
/// boundary cases, about 3,500 requests, come on top and take most of the
/// time). With three the run takes about three minutes on two cores, most
/// of it schemathesis generating data in its one worker;
/// `SHOP_FUZZ_EXAMPLES` raises it for a deeper run by hand.
const EXAMPLES: &str = "3";

/// The run is stopped past this, so a hung request cannot hang the suite.
const DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn schemathesis_finds_nothing_on_any_operation() {
    // The run makes thousands of requests from one address and logs in
    // more than the login limit allows; the limits have their own tests.
    let server = TestServer::start_with(&[
        ("SHOP_RATE_LIMIT_IP", "0"),
        ("SHOP_RATE_LIMIT_TOKEN", "0"),
        ("SHOP_RATE_LIMIT_LOGIN", "0"),
    ]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/schemathesis");
    let examples = std::env::var("SHOP_FUZZ_EXAMPLES").unwrap_or_else(|_| EXAMPLES.to_owned());
    let report = server.dir.path().join("schemathesis");
    let mut command = Command::new("python3");
    command
        // `st`, run through the interpreter that has the package, wherever pip put the script.
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        ])
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/openapi.json", server.url))
        .args(["--checks", "all", "--mode", "all"])
        // Not the stateful phase: it follows OpenAPI links between
        // operations, and the document declares none.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &examples])
        // One worker: hypothesis's lambda-source cache is not thread-safe and
        // several workers end in its internal errors now and then.
        .args(["--workers", "1"])
        .args(["--request-timeout", "30", "--no-color"])
        .arg("--report-dir")
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", dir.join("hooks.py"))
        .env("SHOP_FUZZ_URL", &server.url)
        .env("SHOP_FUZZ_EMAIL", ADMIN_EMAIL)
        .env("SHOP_FUZZ_PASSWORD", ADMIN_PASSWORD)
        // Its cache of probes and failures lives with the test's files, not in the repository.
        .current_dir(server.dir.path())
        .stdin(Stdio::null());
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with schemathesis (pip install schemathesis; .ci/run installs it)");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis ran past {DEADLINE:?}; its output so far:\n{}",
                stdout.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    eprintln!("schemathesis took {:?}", started.elapsed());
    assert!(
        status.success(),
        "schemathesis found problems ({status}):\n{stdout}\n{stderr}"
    );
    // A run that tested nothing also exits 0: it must have reached every
    // operation, but for the one that served it the document, which it
    // leaves out in some runs and not in others.
    let operations = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no operation count in schemathesis's summary:\n{stdout}"));
    let documented = documented_operations(&server);
    assert!(
        operations == documented || operations + 1 == documented,
        "schemathesis tested {operations} of {documented} operations:\n{stdout}"
    );
    assert!(
        stdout.contains(" passed"),
        "no passed test cases in schemathesis's summary:\n{stdout}"
    );
}

/// How many operations the served document has, `GET /api/openapi.json` included.
fn documented_operations(server: &TestServer) -> usize {
    let doc: serde_json::Value = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            server
                .get("/api/openapi.json")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
    doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").keys())
        .filter(|key| {
            [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&key.as_str())
        })
        .count()
}
