//! `scripts/package.sh`: the zip it assembles has the layout the Functions host loads (host.json at the root,
//! one folder per function with its function.json, the executable where host.json says, still executable), and
//! the script refuses bad input with a clear error.
//!
//! The tests package the test build of the binary (`--binary`) instead of a release build, to stay fast; the
//! assembly step is the same. They read the zip with python3's zipfile (the script needs python3 anyway).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lrs-autopilot"))
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when a command runs; outside CI a missing tool skips the test, under CI it fails it.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !on_ci(),
            "{tool} not found (CI=true: failing, not skipping)"
        );
        eprintln!("skipping: {tool} not found");
    }
    found
}

fn package(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/package.sh"))
        .args(args)
        .output()
        .expect("bash runs")
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// One zip entry as python3's zipfile sees it.
#[derive(Debug)]
struct Entry {
    mode: u32,
    sha256: String,
}

const LIST_ZIP: &str = r#"
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit(f"corrupt entry {bad}")
    print(json.dumps([
        {"name": i.filename, "mode": (i.external_attr >> 16) & 0o7777,
         "sha256": hashlib.sha256(z.read(i)).hexdigest()}
        for i in z.infolist() if not i.is_dir()
    ]))
"#;

fn read_zip(zip: &Path) -> BTreeMap<String, Entry> {
    let out = Command::new("python3")
        .args(["-c", LIST_ZIP, path_arg(zip)])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reading the zip failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("json from python");
    let mut entries = BTreeMap::new();
    for item in list {
        let name = item["name"].as_str().expect("name").to_owned();
        let entry = Entry {
            mode: u32::try_from(item["mode"].as_u64().expect("mode")).expect("mode fits"),
            sha256: item["sha256"].as_str().expect("sha256").to_owned(),
        };
        assert!(
            entries.insert(name.clone(), entry).is_none(),
            "duplicate entry {name}"
        );
    }
    entries
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("readable file");
    format!("{:x}", Sha256::digest(bytes))
}

/// What the zip must hold, derived from the repository itself: entry name → the file it must equal.
fn expected_layout() -> (BTreeMap<String, PathBuf>, String) {
    let host: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("host.json")).expect("host.json"))
            .expect("json");
    let exe = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .expect("host.json names the executable")
        .to_owned();
    let mut layout = BTreeMap::new();
    layout.insert("host.json".to_owned(), repo().join("host.json"));
    for dir in std::fs::read_dir(repo().join("handlers")).expect("handlers/") {
        let dir = dir.expect("dir entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        layout.insert(format!("{name}/function.json"), dir.join("function.json"));
    }
    layout.insert(exe.clone(), binary());
    (layout, exe)
}

fn assert_layout(zip_with: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("lrs-autopilot.zip");
    let out = package(&[
        "--binary",
        path_arg(&binary()),
        "--out",
        path_arg(&zip),
        "--zip-with",
        zip_with,
    ]);
    assert!(
        out.status.success(),
        "package.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let entries = read_zip(&zip);
    let (layout, exe) = expected_layout();
    assert!(
        layout.len() >= 4,
        "host.json, the binary and at least two functions: {layout:?}"
    );
    let names: Vec<&String> = entries.keys().collect();
    let expected: Vec<&String> = layout.keys().collect();
    assert_eq!(names, expected, "zip entries (built with {zip_with})");
    for (name, source) in &layout {
        assert_eq!(
            entries[name].sha256,
            sha256_of(source),
            "{name} differs from {}",
            source.display()
        );
    }
    assert_eq!(
        entries[&exe].mode & 0o111,
        0o111,
        "{exe} must be executable, mode {:o}",
        entries[&exe].mode
    );
    for (name, entry) in &entries {
        assert_ne!(
            entry.mode & 0o400,
            0,
            "{name} must be readable, mode {:o}",
            entry.mode
        );
    }
}

#[test]
fn zip_has_the_function_app_layout_with_python_zipfile() {
    if !have("python3") {
        return;
    }
    assert_layout("python");
}

#[test]
fn zip_has_the_function_app_layout_with_info_zip() {
    if !have("python3") {
        return;
    }
    if Command::new("zip").arg("-v").output().is_err() {
        // Info-ZIP is optional: the script falls back to python's zipfile, tested above.
        eprintln!("skipping: the zip command is not installed");
        return;
    }
    assert_layout("zip");
}

#[test]
fn refuses_a_missing_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-binary");
    let out = package(&[
        "--binary",
        path_arg(&missing),
        "--out",
        path_arg(&dir.path().join("x.zip")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("binary not found"), "{stderr}");
    assert!(!dir.path().join("x.zip").exists(), "no zip on failure");
}

#[test]
fn refuses_unknown_arguments_and_bad_zip_tools() {
    let out = package(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument: --frobnicate"));

    let out = package(&["--zip-with", "7z", "--binary", path_arg(&binary())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--zip-with must be zip or python"));

    let out = package(&["--out"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out needs a value"));
}

/// A project root with the repository's handlers and the given host.json.
fn root_with_host_json(host_json: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::write(root.path().join("host.json"), host_json).expect("write host.json");
    for dir in std::fs::read_dir(repo().join("handlers")).expect("handlers/") {
        let dir = dir.expect("dir entry").path();
        let target = root
            .path()
            .join("handlers")
            .join(dir.file_name().expect("name"));
        std::fs::create_dir_all(&target).expect("mkdir");
        std::fs::copy(dir.join("function.json"), target.join("function.json")).expect("copy");
    }
    root
}

fn package_root(root: &Path) -> Output {
    package(&[
        "--root",
        path_arg(root),
        "--binary",
        path_arg(&binary()),
        "--out",
        path_arg(&root.join("x.zip")),
    ])
}

#[test]
fn refuses_an_executable_path_outside_the_app() {
    if !have("python3") {
        return;
    }
    for path in [
        "../lrs-autopilot",
        "/usr/bin/lrs-autopilot",
        "bin/../../x",
        "C:\\\\x.exe",
        "",
    ] {
        let root = root_with_host_json(&format!(
            r#"{{"customHandler":{{"description":{{"defaultExecutablePath":"{path}"}}}}}}"#
        ));
        let out = package_root(root.path());
        assert_eq!(out.status.code(), Some(1), "{path:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("package: error: host.json: defaultExecutablePath"),
            "{path:?}: {stderr}"
        );
        assert!(
            !root.path().join("x.zip").exists(),
            "{path:?}: no zip on failure"
        );
    }
}

#[test]
fn refuses_a_host_json_without_a_custom_handler_or_not_json() {
    if !have("python3") {
        return;
    }
    for (host, message) in [
        (
            r#"{"version":"2.0"}"#,
            "no customHandler.description.defaultExecutablePath",
        ),
        (
            r#"{"customHandler":[]}"#,
            "no customHandler.description.defaultExecutablePath",
        ),
        ("{", "host.json is not valid json"),
    ] {
        let root = root_with_host_json(host);
        let out = package_root(root.path());
        assert_eq!(out.status.code(), Some(1), "{host} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{host}: {stderr}");
    }
}

#[test]
fn refuses_a_function_folder_without_a_valid_function_json() {
    if !have("python3") {
        return;
    }
    let root =
        root_with_host_json(&std::fs::read_to_string(repo().join("host.json")).expect("host.json"));
    let broken = root.path().join("handlers/Broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("function.json"), "{ not json").expect("write");
    let out = package_root(root.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("handlers/Broken/function.json is not valid json"),
        "{stderr}"
    );

    std::fs::remove_file(broken.join("function.json")).expect("rm");
    let out = package_root(root.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("handlers/Broken has no function.json"));
}

/// The commands the script prints after packaging, for `--plan` (or every plan when `None`).
fn deployment_commands(plan: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("lrs-autopilot.zip");
    let binary = binary();
    let mut args = vec![
        "--binary",
        path_arg(&binary),
        "--out",
        path_arg(&zip),
        "--zip-with",
        "python",
    ];
    if let Some(plan) = plan {
        args.extend(["--plan", plan]);
    }
    let out = package(&args);
    assert!(
        out.status.success(),
        "package.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = stderr
        .split_once("package: deploy it with:")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| panic!("no deployment commands: {stderr}"));
    // The commands deploy the zip just written.
    assert!(text.contains(path_arg(&zip)), "{text}");
    text
}

const FLEX_DEPLOY: &str = "az functionapp deployment source config-zip";
const BLOB_DEPLOY: &str = "az storage blob upload --auth-mode login";

#[test]
fn prints_the_deployment_command_for_each_plan() {
    if !have("python3") {
        return;
    }
    let flex = deployment_commands(Some("FlexConsumption"));
    assert!(flex.contains(FLEX_DEPLOY), "{flex}");
    assert!(!flex.contains(BLOB_DEPLOY), "{flex}");
    for plan in ["ElasticPremium", "Dedicated"] {
        let text = deployment_commands(Some(plan));
        assert!(text.contains(BLOB_DEPLOY), "{plan}: {text}");
        assert!(text.contains("az functionapp restart"), "{plan}: {text}");
        assert!(!text.contains(FLEX_DEPLOY), "{plan}: {text}");
    }
    let all = deployment_commands(None);
    for expected in [
        "hostingPlan FlexConsumption",
        "hostingPlan ElasticPremium",
        "hostingPlan Dedicated",
    ] {
        assert!(all.contains(expected), "{all}");
    }

    // Every <placeholder> but the resource group is an output of the infra deployment.
    let main = std::fs::read_to_string(repo().join("infra/main.bicep")).expect("main.bicep");
    let mut placeholders = 0;
    for piece in all.split('<').skip(1) {
        let name = piece.split('>').next().expect("closing >");
        if name == "resource group" {
            continue;
        }
        assert!(
            main.lines()
                .any(|l| l.starts_with(&format!("output {name} "))),
            "<{name}> is not an output of infra/main.bicep"
        );
        placeholders += 1;
    }
    assert!(placeholders >= 5, "{all}");
}

#[test]
fn refuses_an_unknown_plan_before_packaging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("x.zip");
    let out = package(&[
        "--plan",
        "Premium",
        "--binary",
        path_arg(&binary()),
        "--out",
        path_arg(&zip),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--plan must be FlexConsumption, ElasticPremium or Dedicated"),
        "{stderr}"
    );
    assert!(!zip.exists(), "no zip on failure");
}
