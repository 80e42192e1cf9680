//! The catalog and inventory through the `shop` command line: products from
//! add to delete, imports with bad rows, export/import round trips through
//! files, stock changes and their exit codes, and fixtures loaded twice.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// Writes `text` to a file in the test's directory and returns its path.
fn file(server: &TestServer, name: &str, text: &str) -> String {
    let path = server.dir.path().join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn products_are_added_listed_changed_archived_and_deleted() {
    let server = TestServer::start();
    server.cli_login_admin();

    let added = server
        .shop(&[
            "product",
            "add",
            "--sku",
            "CHAIR-01",
            "--name",
            "Oak chair",
            "--price",
            "129.99",
            "--category",
            "furniture/chairs",
            "--stock",
            "40",
            "--low-stock",
            "5",
            "--description",
            "Solid oak",
            "--attr",
            "colour=natural",
            "--attr",
            "material=oak",
            "--image",
            "https://images.example.com/chair.jpg",
            "-o",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(added["price_cents"], 12999);
    assert_eq!(added["attributes"]["material"], "oak");
    let id = added["id"].as_str().expect("an id").to_owned();
    assert!(id.starts_with("prd_"), "{id}");
    server
        .shop(&[
            "product",
            "add",
            "--sku",
            "LAMP-02",
            "--name",
            "Brass lamp",
            "--price",
            "45",
            "--category",
            "home/lighting",
        ])
        .expect(0);

    // A SKU in any case is the upper-case one; `product get` finds it so.
    let lower = server
        .shop(&[
            "product", "add", "--sku", "chair-02", "--name", "x", "--price", "1", "-o", "json",
        ])
        .expect(0)
        .json();
    assert_eq!(lower["sku"], "CHAIR-02", "{lower}");
    server.shop(&["product", "get", "chair-02"]).expect(0);
    server
        .shop(&["product", "delete", "chair-02", "--yes"])
        .expect(0);
    // Refused before any request: too many decimals, the same SKU twice.
    server
        .shop(&[
            "product", "add", "--sku", "X-1", "--name", "x", "--price", "1.999",
        ])
        .expect(2);
    let duplicate = server
        .shop(&[
            "product", "add", "--sku", "CHAIR-01", "--name", "x", "--price", "1",
        ])
        .expect(5);
    assert!(duplicate.stderr.contains("duplicate_sku"), "{duplicate:#?}");

    // Get by SKU and by id; the table shows the price as a decimal.
    assert_eq!(
        server.shop(&["product", "get", &id]).expect(0).json()["sku"],
        "CHAIR-01"
    );
    let table = server
        .shop(&["product", "get", "CHAIR-01", "-o", "table"])
        .expect(0);
    assert!(table.stdout.contains("129.99 USD"), "{table:#?}");
    server.shop(&["product", "get", "NOPE-1"]).expect(4);

    // Lists: filters, sort, every output format.
    let cheap = server
        .shop(&["product", "list", "--max-price", "50", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(cheap.len(), 1);
    assert_eq!(cheap[0]["sku"], "LAMP-02");
    let sorted = server
        .shop(&["product", "list", "--sort", "-price", "-q"])
        .expect(0);
    assert_eq!(
        sorted.stdout,
        format!("{id}\n{}\n", cheap[0]["id"].as_str().expect("id"))
    );
    let furniture = server
        .shop(&["product", "list", "--category", "furniture", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(furniture["total"], 1);
    let csv_text = server
        .shop(&["product", "list", "-o", "csv"])
        .expect(0)
        .stdout;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert!(
        reader
            .headers()
            .expect("header")
            .iter()
            .any(|h| h == "price_cents")
    );
    assert_eq!(reader.records().count(), 2);
    let all = server
        .shop(&["product", "list", "--all", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(all.len(), 2);
    let table = server.shop(&["product", "list", "-o", "table"]).expect(0);
    let header = table.stdout.lines().next().expect("a header");
    for column in ["SKU", "NAME", "CATEGORY", "PRICE", "ACTIVE"] {
        assert!(header.contains(column), "{table:#?}");
    }
    assert!(
        !table.stdout.contains("prd_"),
        "ids are for -o wide: {table:#?}"
    );
    let wide = server.shop(&["product", "list", "-o", "wide"]).expect(0);
    let header = wide.stdout.lines().next().expect("a header");
    assert!(header.ends_with("ID"), "{wide:#?}");
    assert!(wide.stdout.contains(&id), "{wide:#?}");
    let categories = server
        .shop(&["product", "categories", "-q"])
        .expect(0)
        .stdout;
    assert!(categories.contains("furniture/chairs"), "{categories}");

    // Update: merged attributes, a new price, and optimistic versions.
    let updated = server
        .shop(&[
            "product",
            "update",
            "CHAIR-01",
            "--price",
            "119.50",
            "--attr",
            "colour=walnut",
            "--attr",
            "material=",
            "--name",
            "Walnut chair",
        ])
        .expect(0)
        .json();
    assert_eq!(updated["price_cents"], 11950);
    assert_eq!(updated["name"], "Walnut chair");
    assert_eq!(
        updated["attributes"],
        serde_json::json!({"colour": "walnut"}),
        "colour changed, material removed"
    );
    let stale = server
        .shop(&[
            "product",
            "update",
            "CHAIR-01",
            "--name",
            "Stale",
            "--version",
            "1",
        ])
        .expect(5);
    assert!(stale.stderr.contains("version_conflict"), "{stale:#?}");
    server.shop(&["product", "update", "CHAIR-01"]).expect(2);

    // Archive hides it from the default list; --activate brings it back.
    let archived = server
        .shop(&["product", "archive", "CHAIR-01"])
        .expect(0)
        .json();
    assert_eq!(archived["active"], false);
    assert_eq!(
        server
            .shop(&["product", "list", "-q"])
            .expect(0)
            .stdout
            .lines()
            .count(),
        1
    );
    assert_eq!(
        server
            .shop(&["product", "list", "--archived", "-q"])
            .expect(0)
            .stdout,
        format!("{id}\n")
    );
    let active = server
        .shop(&["product", "update", "CHAIR-01", "--activate"])
        .expect(0)
        .json();
    assert_eq!(active["active"], true);

    // Delete: refused without --yes and no terminal, done with it.
    let refused = server.shop(&["product", "delete", "LAMP-02"]).expect(2);
    assert!(refused.stderr.contains("--yes"), "{refused:#?}");
    server.shop(&["product", "get", "LAMP-02"]).expect(0);
    let deleted = server
        .shop(&["product", "delete", "LAMP-02", "--yes"])
        .expect(0);
    assert!(deleted.stdout.is_empty(), "{deleted:#?}");
    server.shop(&["product", "get", "LAMP-02"]).expect(4);
}

#[tokio::test]
async fn a_hostile_csv_imports_its_good_rows_and_names_the_bad_line() {
    let server = TestServer::start();
    server.cli_login_admin();
    let csv = "sku,name,description,category,price,currency,attributes,images,stock\n\
        HOST-1,\"Sofa, \"\"Deluxe\"\" edition\",\"Seats three.\nVelvet, green.\",furniture/sofas,899.00,EUR,\"{\"\"colour\"\":\"\"green\"\"}\",\"[\"\"https://img.example.com/sofa.jpg\"\"]\",4\n\
        HOST-2,Crème brûlée torch,\"Ünïcödé ✓, \"\"quoted\"\"\",kitchen/tools,24.5,USD,,,12\n\
        HOST-3,Broken price,,kitchen/tools,12.345,USD,,,1\n";
    let path = file(&server, "hostile.csv", csv);

    let dry = server
        .shop(&["product", "import", &path, "--dry-run", "-o", "json"])
        .expect(1)
        .json();
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["created"].as_u64()),
        (Some(true), Some(2))
    );
    assert!(dry["errors"][0]["line"].as_u64() == Some(5), "{dry}");
    server.shop(&["product", "get", "HOST-1"]).expect(4);

    let import = server
        .shop(&["product", "import", &path, "-o", "table"])
        .expect(1);
    assert!(
        !import.stderr.contains('\r') && !import.stderr.contains('\u{1b}'),
        "no progress bar when stderr is not a terminal: {import:#?}"
    );
    assert!(import.stderr.contains("1 of 3 rows failed"), "{import:#?}");
    assert!(import.stderr.contains("rejected rows"), "{import:#?}");
    let bad_line = import
        .stdout
        .lines()
        .find(|line| line.contains("HOST-3"))
        .unwrap_or_else(|| panic!("no row for HOST-3: {import:#?}"));
    assert!(bad_line.starts_with('5'), "{bad_line}");
    assert_eq!(
        server
            .shop(&["product", "import", &path, "-q"])
            .expect(1)
            .stdout,
        "5\n",
        "-q prints the lines that failed"
    );

    let sofa = server.shop(&["product", "get", "HOST-1"]).expect(0).json();
    assert_eq!(sofa["name"], "Sofa, \"Deluxe\" edition");
    assert_eq!(sofa["description"], "Seats three.\nVelvet, green.");
    assert_eq!(sofa["attributes"]["colour"], "green");
    let torch = server.shop(&["product", "get", "HOST-2"]).expect(0).json();
    assert_eq!(torch["description"], "Ünïcödé ✓, \"quoted\"");
    assert_eq!(torch["price_cents"], 2450);

    // The format comes from the extension, or --format; stdin needs --format.
    let unknown = file(&server, "catalog.txt", csv);
    server.shop(&["product", "import", &unknown]).expect(2);
    server
        .shop(&["product", "import", &unknown, "--format", "csv", "-q"])
        .expect(1);
    server
        .shop_stdin(&["product", "import", "-"], csv)
        .expect(2);
    let piped = server
        .shop_stdin(&["product", "import", "-", "--format", "csv"], csv)
        .expect(1)
        .json();
    assert_eq!(piped["unchanged"], 2, "{piped}");
}

/// The records of an export in a canonical order (by their text), the CSV header first.
fn records(format: &str, text: &str) -> Vec<String> {
    let mut records: Vec<String> = match format {
        "csv" => csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|record| {
                let fields: Vec<String> = record
                    .expect("a CSV record")
                    .iter()
                    .map(str::to_owned)
                    .collect();
                serde_json::to_string(&fields).expect("json")
            })
            .collect(),
        "ndjson" => text.lines().map(str::to_owned).collect(),
        _ => serde_json::from_str::<Vec<Value>>(text)
            .expect("a JSON array")
            .iter()
            .map(Value::to_string)
            .collect(),
    };
    let header = (format == "csv").then(|| records.remove(0));
    records.sort();
    header.into_iter().chain(records).collect()
}

#[tokio::test]
async fn exports_reimport_byte_for_byte_and_carry_every_record_to_another_shop() {
    let server = TestServer::start();
    server.cli_login_admin();
    let other = TestServer::start();
    other.cli_login_admin();
    let fixtures = root().join("fixtures/catalog.json");
    let fixtures = fixtures.to_str().expect("a UTF-8 path");
    server.shop(&["fixtures", "load", fixtures, "-q"]).expect(0);
    server
        .shop(&["product", "archive", "FUR-CHR-0001"])
        .expect(0);

    for format in ["csv", "ndjson", "json"] {
        let path = server.dir.path().join(format!("export.{format}"));
        let path = path.to_str().expect("a UTF-8 path");
        let to_file = server
            .shop(&[
                "product",
                "export",
                "--format",
                format,
                "--output-file",
                path,
            ])
            .expect(0);
        assert!(to_file.stdout.is_empty(), "{to_file:#?}");
        let exported = std::fs::read_to_string(path).expect("the export");
        let to_stdout = server
            .shop(&["product", "export", "--format", format])
            .expect(0);
        assert_eq!(
            to_stdout.stdout, exported,
            "{format}: stdout and file agree"
        );
        assert!(exported.contains("Fjällstrand"), "{format}: UTF-8 kept");

        // Back into the same shop: every row unchanged, the export byte for byte.
        let same = server
            .shop(&["product", "import", path, "-o", "json"])
            .expect(0)
            .json();
        assert_eq!(
            (same["unchanged"].as_u64(), same["failed"].as_u64()),
            (Some(560), Some(0)),
            "{format}: {same}"
        );
        let again = server
            .shop(&["product", "export", "--format", format])
            .expect(0);
        assert_eq!(again.stdout, exported, "{format}: byte for byte");

        // Into a fresh shop: the same records. Not compared byte for byte:
        // the server orders an export by product id, and the ids made in one
        // import batch share a millisecond and are not monotonic ULIDs, so
        // their order in the other shop is random.
        let summary = other
            .shop(&["product", "import", path, "-o", "json"])
            .expect(0)
            .json();
        assert_eq!(summary["failed"], 0, "{format}: {summary}");
        let elsewhere = other
            .shop(&["product", "export", "--format", format])
            .expect(0);
        assert_eq!(
            records(format, &elsewhere.stdout),
            records(format, &exported),
            "{format}: the same records in the other shop"
        );
    }
    let archived = other
        .shop(&["product", "get", "FUR-CHR-0001"])
        .expect(0)
        .json();
    assert_eq!(
        archived["active"], false,
        "the archived product travels too"
    );
    let active_only = server
        .shop(&["product", "export", "--status", "active"])
        .expect(0)
        .stdout;
    assert_eq!(active_only.lines().count(), 559);
}

#[tokio::test]
async fn stock_is_set_adjusted_reserved_and_reconciled_with_exit_codes() {
    let server = TestServer::start();
    server.cli_login_admin();
    server
        .shop(&[
            "product",
            "add",
            "--sku",
            "NAIL",
            "--name",
            "Nail",
            "--price",
            "0.05",
            "--stock",
            "20",
            "--low-stock",
            "5",
        ])
        .expect(0);
    server
        .shop(&[
            "product", "add", "--sku", "SCREW", "--name", "Screw", "--price", "0.10", "--stock",
            "50",
        ])
        .expect(0);

    let set = server
        .shop(&[
            "inventory",
            "set",
            "NAIL",
            "12",
            "--reason",
            "stocktake",
            "--low-stock",
            "10",
        ])
        .expect(0)
        .json();
    assert_eq!(
        (set["on_hand"].as_i64(), set["low_stock_threshold"].as_i64()),
        (Some(12), Some(10))
    );
    let added = server
        .shop(&[
            "inventory",
            "adjust",
            "NAIL",
            "--reason",
            "delivery",
            "--",
            "+5",
        ])
        .expect(0)
        .json();
    assert_eq!(added["on_hand"], 17);
    let taken = server
        .shop(&["inventory", "adjust", "NAIL", "-9", "--reason", "damaged"])
        .expect(0)
        .json();
    assert_eq!(taken["on_hand"], 8);
    let too_many = server
        .shop(&[
            "inventory",
            "adjust",
            "NAIL",
            "--reason",
            "theft",
            "--",
            "-100",
        ])
        .expect(5);
    assert!(
        too_many.stderr.contains("insufficient_stock"),
        "{too_many:#?}"
    );
    server
        .shop(&["inventory", "adjust", "NAIL", "5", "--reason", "no sign"])
        .expect(2);
    server.shop(&["inventory", "set", "NAIL", "3"]).expect(2);

    // NAIL is low (8 available, threshold 10), SCREW is not.
    assert_eq!(
        server.shop(&["inventory", "low", "-q"]).expect(0).stdout,
        "NAIL\n"
    );
    assert_eq!(
        server
            .shop(&["inventory", "list", "--low", "-q"])
            .expect(0)
            .stdout,
        "NAIL\n"
    );
    let table = server.shop(&["inventory", "list", "-o", "table"]).expect(0);
    let nail = table
        .stdout
        .lines()
        .find(|line| line.starts_with("NAIL"))
        .unwrap_or_else(|| panic!("{table:#?}"));
    assert!(nail.ends_with("LOW"), "{table:#?}");
    assert!(
        !table
            .stdout
            .lines()
            .any(|l| l.starts_with("SCREW") && l.contains("LOW")),
        "{table:#?}"
    );

    // The history lists the changes newest first, with their reasons.
    let history = server
        .shop(&["inventory", "get", "NAIL", "--history", "-o", "ndjson"])
        .expect(0)
        .lines();
    let reasons: Vec<&str> = history
        .iter()
        .filter_map(|m| m["reason"].as_str())
        .collect();
    assert_eq!(
        &reasons[..3],
        ["damaged", "delivery", "stocktake"],
        "{history:#?}"
    );
    let both = server
        .shop(&["inventory", "get", "NAIL", "--history", "-o", "json"])
        .expect(0)
        .json();
    let plain = server
        .shop(&["inventory", "get", "NAIL", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(plain["on_hand"], 8);
    assert_eq!(
        both["on_hand"], 8,
        "--history keeps the stock's shape and adds its movements: {both}"
    );
    assert_eq!(both["movements"]["items"][0]["reason"], "damaged", "{both}");
    let history_table = server
        .shop(&["inventory", "get", "NAIL", "--history", "-o", "table"])
        .expect(0);
    assert!(
        history_table.stdout.contains("17 → 8 (-9)"),
        "{history_table:#?}"
    );

    // Reservations: hold, list, commit, release, and a hold beyond what is there.
    let hold = server
        .shop(&[
            "inventory",
            "reserve",
            "SCREW",
            "4",
            "--ttl",
            "15m",
            "--reference",
            "order-1",
        ])
        .expect(0)
        .json();
    let hold_id = hold["id"].as_str().expect("an id").to_owned();
    let second = server
        .shop(&["inventory", "reserve", "SCREW", "2", "-q"])
        .expect(0)
        .stdout;
    let second_id = second.trim().to_owned();
    assert!(second_id.starts_with("res_"), "{second}");
    let listed = server
        .shop(&[
            "inventory",
            "reservations",
            "--sku",
            "SCREW",
            "--status",
            "active",
            "-q",
        ])
        .expect(0)
        .stdout;
    assert!(
        listed.contains(&hold_id) && listed.contains(&second_id),
        "{listed}"
    );
    assert_eq!(
        server
            .shop(&["inventory", "reservations", "--reference", "order-1", "-q"])
            .expect(0)
            .stdout,
        format!("{hold_id}\n")
    );
    let over = server
        .shop(&["inventory", "reserve", "SCREW", "1000"])
        .expect(5);
    assert!(over.stderr.contains("insufficient_stock"), "{over:#?}");
    server.shop(&["inventory", "commit", &hold_id]).expect(0);
    server.shop(&["inventory", "release", &second_id]).expect(0);
    server.shop(&["inventory", "release", &second_id]).expect(5);
    let screw = server.shop(&["inventory", "get", "SCREW"]).expect(0).json();
    assert_eq!(
        (screw["on_hand"].as_i64(), screw["reserved"].as_i64()),
        (Some(46), Some(0))
    );

    // Reconcile: 0 when consistent; 5 on drift; 0 once --fix repaired it all, saying what it did.
    let clean = server.shop(&["inventory", "reconcile"]).expect(0);
    assert!(clean.stderr.contains("consistent"), "{clean:#?}");
    let db = rusqlite::Connection::open(server.db()).expect("open db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    db.execute("UPDATE stock SET reserved = 3 WHERE sku = 'NAIL'", [])
        .expect("drift reserved");
    drop(db);
    let drift = server.shop(&["inventory", "reconcile"]).expect(5);
    assert_eq!(drift.lines()[0]["sku"], "NAIL");
    assert!(drift.stderr.contains("--fix"), "{drift:#?}");
    let fixed = server
        .shop(&["inventory", "reconcile", "--fix", "-o", "json"])
        .expect(0);
    assert!(
        fixed.stderr.contains("fixed 1 problem") && fixed.stderr.contains("ledger"),
        "{fixed:#?}"
    );
    let fixed = fixed.json();
    assert_eq!(fixed["drift"][0]["fixed"], true, "{fixed}");
    server.shop(&["inventory", "reconcile"]).expect(0);
}

#[tokio::test]
async fn fixtures_load_twice_creates_then_changes_nothing() {
    let server = TestServer::start();
    server.cli_login_admin();
    let fixtures = root().join("fixtures/catalog.json");
    let fixtures = fixtures.to_str().expect("a UTF-8 path");
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures).expect("fixtures")).expect("json");
    let products = document["products"].as_array().expect("products").len() as u64;
    let users = document["users"].as_array().expect("users").len() as u64;

    let dry = server
        .shop(&["fixtures", "load", fixtures, "--dry-run", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(dry["products_created"], products, "{dry}");
    let listed = server.shop(&["product", "list", "-q"]).expect(0);
    assert!(
        listed.stdout.is_empty(),
        "a dry run writes nothing: {listed:#?}"
    );

    let first = server
        .shop(&["fixtures", "load", fixtures, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(
        (
            first["users_created"].as_u64(),
            first["products_created"].as_u64(),
            first["products_failed"].as_u64()
        ),
        (Some(users), Some(products), Some(0)),
        "{first}"
    );
    let second = server
        .shop(&["fixtures", "load", fixtures, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(
        (
            second["users_created"].as_u64(),
            second["users_skipped"].as_u64(),
            second["products_created"].as_u64(),
            second["products_failed"].as_u64()
        ),
        (Some(0), Some(users), Some(0), Some(0)),
        "{second}"
    );
    assert_eq!(
        second["products_updated"].as_u64().unwrap_or(0)
            + second["products_unchanged"].as_u64().unwrap_or(0),
        products,
        "{second}"
    );

    let listed = server
        .shop(&["product", "list", "--all", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(listed.len() as u64, products);
    let categories = server
        .shop(&["product", "categories", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert!(
        categories.iter().filter(|c| c["depth"] == 2).count() >= 20,
        "{categories:#?}"
    );
    let stock = server
        .shop(&["inventory", "list", "--all", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(stock.len() as u64, products);
    assert!(stock.iter().any(|s| s["on_hand"] == 0), "some are sold out");
}

#[tokio::test]
async fn generated_products_stream_from_a_pipe_into_an_import() {
    let server = TestServer::start();
    server.cli_login_admin();
    let generated = std::process::Command::new("python3")
        .arg(root().join("fixtures/generate.py"))
        .args(["--ndjson", "5000"])
        .output()
        .expect("python3 fixtures/generate.py (install Python 3)");
    assert!(generated.status.success(), "{generated:?}");
    let ndjson = String::from_utf8(generated.stdout).expect("utf-8");
    assert!(ndjson.len() > 2_000_000, "several times the body limit");

    let summary = server
        .shop_stdin(&["product", "import", "-", "--format", "ndjson"], &ndjson)
        .expect(0)
        .json();
    assert_eq!(
        (summary["created"].as_u64(), summary["failed"].as_u64()),
        (Some(5000), Some(0)),
        "{summary}"
    );
    let again = server
        .shop_stdin(
            &["product", "import", "-", "--format", "ndjson", "--dry-run"],
            &ndjson,
        )
        .expect(0)
        .json();
    assert_eq!(again["unchanged"], 5000, "{again}");
    let total = server
        .shop(&["product", "list", "--limit", "1", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(total["total"], 5000);
}

/// Issue 21: a re-import set a product sold down to 0 back to the file's
/// count, and a dry run called every product sold since "updated". A file's
/// stock is the stock of the products it creates; an existing product's
/// stock moves only with `--stock set` or `--stock add`.
#[tokio::test]
async fn a_reimport_keeps_the_stock_sold_since_unless_asked_to_set_or_add() {
    let server = TestServer::start();
    server.cli_login_admin();
    let on_hand = |sku: &str| {
        server
            .shop(&["inventory", "get", sku, "-o", "json"])
            .expect(0)
            .json()["on_hand"]
            .as_i64()
            .expect("on_hand")
    };
    let csv = "sku,name,price,stock\nKEEP-1,Mug,4.50,5\nKEEP-2,Cup,3.00,2\n";
    let path = file(&server, "stock.csv", csv);
    let first = server
        .shop(&["product", "import", &path, "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(first["created"], 2, "{first}");
    assert_eq!(
        on_hand("KEEP-1"),
        5,
        "a created product starts with its row's stock"
    );
    server
        .shop(&["inventory", "adjust", "KEEP-1", "-5", "--reason", "sold"])
        .expect(0);

    let dry = server
        .shop(&["product", "import", &path, "--dry-run", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(
        (dry["updated"].as_u64(), dry["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{dry}"
    );
    server
        .shop(&["product", "import", &path, "-o", "json"])
        .expect(0);
    assert_eq!(on_hand("KEEP-1"), 0, "the sale is not undone");

    server
        .shop(&["product", "import", &path, "--stock", "add", "-o", "json"])
        .expect(0);
    assert_eq!(
        (on_hand("KEEP-1"), on_hand("KEEP-2")),
        (5, 4),
        "a delivery adds"
    );
    let set = server
        .shop(&["product", "import", &path, "--stock", "set", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(set["updated"], 1, "only KEEP-2 changes: {set}");
    assert_eq!((on_hand("KEEP-1"), on_hand("KEEP-2")), (5, 2));
    server
        .shop(&["product", "import", &path, "--stock", "reset"])
        .expect(2);
    let help = server.shop(&["product", "import", "--help"]).expect(0);
    assert!(
        help.stdout.contains("--stock <MODE>") && help.stdout.contains("matched by the header"),
        "{help:#?}"
    );

    // A row with too few fields is named by its SKU.
    let short = file(&server, "short.csv", "sku,name,price,stock\nKEEP-3,Bowl\n");
    let report = server
        .shop(&["product", "import", &short, "-o", "json"])
        .expect(1)
        .json();
    assert_eq!(report["errors"][0]["sku"], "KEEP-3", "{report}");

    // A failed export names the path given, not the temporary file beside it.
    let failed = server
        .shop(&[
            "product",
            "export",
            "--output-file",
            "/nonexistent/catalog.csv",
        ])
        .expect(1);
    assert!(
        failed.stderr.contains("/nonexistent/catalog.csv") && !failed.stderr.contains(".tmp"),
        "{failed:#?}"
    );
}

/// After `shop logout` the public reads still work; an export to a file
/// says how many products it wrote, and a delete what it deleted; an
/// unknown template points at the command that lists them.
#[tokio::test]
async fn public_reads_need_no_login_and_quiet_commands_say_what_they_did() {
    let server = TestServer::start();
    server.cli_login_admin();
    for (sku, name) in [("CHAIR-01", "Oak chair"), ("LAMP-02", "Brass lamp")] {
        server
            .shop(&[
                "product", "add", "--sku", sku, "--name", name, "--price", "10", "--stock", "4",
            ])
            .expect(0);
    }
    for format in ["ndjson", "json", "csv"] {
        let path = server.dir.path().join(format!("out.{format}"));
        let path = path.to_string_lossy();
        let export = server
            .shop(&[
                "product",
                "export",
                "--format",
                format,
                "--output-file",
                &path,
            ])
            .expect(0);
        assert!(
            export
                .stderr
                .contains(&format!("exported 2 products to {path}")),
            "{export:#?}"
        );
    }
    let deleted = server
        .shop(&["product", "delete", "lamp-02", "--yes", "-o", "table"])
        .expect(0);
    assert!(
        deleted.stderr.contains("deleted LAMP-02 (Brass lamp, prd_"),
        "{deleted:#?}"
    );
    let unknown = server
        .shop(&[
            "notification",
            "send",
            "--channel",
            "email",
            "--to",
            "a@example.com",
            "--template",
            "nope",
        ])
        .expect(1);
    assert!(
        unknown
            .stderr
            .contains("`shop notification templates` lists them")
            && !unknown.stderr.contains("GET /api"),
        "{unknown:#?}"
    );

    server.shop(&["logout"]).expect(0);
    let list = server
        .shop(&["product", "list", "-o", "ndjson"])
        .expect(0)
        .lines();
    assert_eq!(list.len(), 1, "{list:?}");
    server.shop(&["product", "get", "chair-01"]).expect(0);
    server.shop(&["product", "categories"]).expect(0);
    server.shop(&["search", "oak", "chair"]).expect(0);
    // What needs a login still says so.
    let orders = server.shop(&["order", "list"]).expect(6);
    assert!(orders.stderr.contains("shop login"), "{orders:#?}");
}
