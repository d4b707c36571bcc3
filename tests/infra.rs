//! Checks on `infra/` that need no Azure and no Bicep compiler (none is installable here: see infra/README.md):
//!
//! - the Function App settings in the Bicep are exactly the variables the binary reads
//!   (`lrs_autopilot::config::VARIABLES`) plus the Functions platform's own, so the two cannot drift, and the
//!   Bicep parameter defaults equal the binary's defaults;
//! - checkov (pinned in `.ci/requirements.txt`, it parses Bicep with pycep) reports 0 failed checks and 0 parsing
//!   errors, every suppression carries its reason, and a deliberately weak template does fail (so 0 means something);
//! - every `.bicep` file parses with a second, independent grammar (tree-sitter-bicep);
//! - modules referenced exist and every module is used; the example parameters name only declared parameters and
//!   every required one; built-in role ids are the documented ones.
//!
//! checkov and tree-sitter-bicep are Python tools: outside CI a missing one skips its test with a message; under
//! `CI=true` it fails the test (`.ci/run` installs them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use lrs_autopilot::config::VARIABLES;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn infra() -> PathBuf {
    repo().join("infra")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Outside CI a missing tool skips the test (returns false); under CI it fails it.
fn tool_available(what: &str, probe: &mut Command) -> bool {
    let ok = probe.output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !on_ci(),
            "{what} not found (CI=true: failing, not skipping); install .ci/requirements.txt"
        );
        eprintln!("skipping: {what} not found (python3 -m pip install -r .ci/requirements.txt)");
    }
    ok
}

/// `infra/main.bicep` and every `infra/modules/*.bicep`.
fn bicep_files() -> Vec<PathBuf> {
    let mut files = vec![infra().join("main.bicep")];
    let mut modules: Vec<PathBuf> = std::fs::read_dir(infra().join("modules"))
        .expect("infra/modules")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bicep"))
        .collect();
    modules.sort();
    assert!(!modules.is_empty(), "no modules under infra/modules");
    files.extend(modules);
    files
}

// ------------------------------------------------------------------------------------------------------------
// App settings ↔ the binary's variables
// ------------------------------------------------------------------------------------------------------------

/// Settings the Functions platform (not the binary) reads. Each one is explained in infra/README.md.
const FUNCTIONS_SETTINGS: &[&str] = &[
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "ServiceBusConnection__fullyQualifiedNamespace",
    "ServiceBusConnection__credential",
    "ServiceBusConnection__clientId",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
];

const SETTINGS_FILE: &str = "modules/function-app.bicep";
const BEGIN: &str = "// app-settings:begin";
const END: &str = "// app-settings:end";

/// The `name: '<setting>'` entries between the app-settings markers, in order.
fn app_setting_names(text: &str) -> Vec<String> {
    assert_eq!(
        text.matches(BEGIN).count(),
        1,
        "exactly one `{BEGIN}` in {SETTINGS_FILE}"
    );
    assert_eq!(
        text.matches(END).count(),
        1,
        "exactly one `{END}` in {SETTINGS_FILE}"
    );
    let start = text.find(BEGIN).expect("begin marker");
    let end = text.find(END).expect("end marker");
    assert!(start < end, "`{BEGIN}` must come before `{END}`");
    text[start..end]
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("name: '")?
                .strip_suffix('\'')
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn app_settings_are_exactly_the_binary_variables_and_the_functions_settings() {
    let text = read(&infra().join(SETTINGS_FILE));
    let names = app_setting_names(&text);
    let unique: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "a setting is listed twice: {names:?}"
    );

    let expected: BTreeSet<&str> = VARIABLES
        .iter()
        .map(|(name, _)| *name)
        .chain(FUNCTIONS_SETTINGS.iter().copied())
        .collect();
    let missing: Vec<&&str> = expected.difference(&unique).collect();
    let extra: Vec<&&str> = unique.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "app settings drifted from src/config.rs VARIABLES + FUNCTIONS_SETTINGS\n  missing from the Bicep: \
         {missing:?}\n  not read by anyone: {extra:?}"
    );

    // The lists between the markers are what the site gets, and nothing else is added after them.
    assert!(
        text.contains("appSettings: concat(functionsSettings, binarySettings, sasSettings)"),
        "the site's appSettings must be exactly the lists between the markers"
    );
    assert_eq!(
        text.matches("appSettings:").count(),
        1,
        "one appSettings block only"
    );
    assert!(
        !text.contains("Microsoft.Web/sites/config"),
        "settings must not be set a second way"
    );
}

/// The triggers in handlers/*/function.json resolve `%SETTING%` and `connection` names from the app settings:
/// each one must be set, or the host cannot start that function.
#[test]
fn function_bindings_name_only_settings_the_app_has() {
    let settings: BTreeSet<String> = app_setting_names(&read(&infra().join(SETTINGS_FILE)))
        .into_iter()
        .collect();
    let mut checked = 0;
    for dir in std::fs::read_dir(repo().join("handlers")).expect("handlers/") {
        let path = dir.expect("dir entry").path().join("function.json");
        let function: serde_json::Value =
            serde_json::from_str(&read(&path)).expect("valid function.json");
        for binding in function["bindings"].as_array().expect("bindings") {
            for value in binding
                .as_object()
                .expect("binding object")
                .values()
                .filter_map(|v| v.as_str())
            {
                let mut rest = value;
                while let Some((_, after)) = rest.split_once('%') {
                    let Some((name, tail)) = after.split_once('%') else {
                        break;
                    };
                    assert!(
                        settings.contains(name),
                        "{}: %{name}% is not an app setting",
                        path.display()
                    );
                    checked += 1;
                    rest = tail;
                }
            }
            if let Some(connection) = binding["connection"].as_str() {
                let key = format!("{connection}__fullyQualifiedNamespace");
                assert!(
                    settings.contains(&key),
                    "{}: connection {connection} needs {key}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 3,
        "expected the queue name, the schedule and the Service Bus connection; checked {checked}"
    );
}

#[test]
fn functions_settings_are_documented_in_the_deployment_guide() {
    let guide = read(&infra().join("README.md"));
    for name in FUNCTIONS_SETTINGS {
        assert!(
            guide.contains(name),
            "infra/README.md does not explain {name}"
        );
    }
}

#[test]
fn settings_parser_reads_names_only_between_the_markers() {
    let text = "{\n  name: 'OUTSIDE'\n}\n// app-settings:begin\nvar a = [\n  {\n    name: 'A'\n    value: 'x'\n  }\n  \
                // name: 'COMMENTED'\n]\n// app-settings:end\n  name: 'AFTER'\n";
    assert_eq!(app_setting_names(text), vec!["A".to_owned()]);
}

/// Parameters of main.bicep: name → default expression (None: required).
fn main_parameters() -> BTreeMap<String, Option<String>> {
    let mut params = BTreeMap::new();
    for line in read(&infra().join("main.bicep")).lines() {
        let Some(rest) = line.strip_prefix("param ") else {
            continue;
        };
        let mut parts = rest.splitn(2, ' ');
        let name = parts.next().expect("param name").to_owned();
        let default = parts
            .next()
            .and_then(|r| r.split_once(" = "))
            .map(|(_, d)| d.trim().to_owned());
        params.insert(name, default);
    }
    assert!(
        params.len() > 10,
        "main.bicep parameters not found: {params:?}"
    );
    params
}

/// How each defaulted variable gets its value in the Bicep: a main.bicep parameter (whose default must equal the
/// binary's), or a value the template derives (named here so that a new defaulted variable forces a decision).
const DEFAULT_SOURCES: &[(&str, &str)] = &[
    (
        "LRS_ARM_ENDPOINT",
        "derived: environment().resourceManager without its trailing slash",
    ),
    ("LRS_STATE_CONTAINER", "param stateContainerName"),
    ("LRS_STORAGE_IDENTITY", "param lrsStorageAuth"),
    ("LRS_DEFAULT_COLLATION", "param defaultCollation"),
    ("LRS_TAIL_PATTERN", "param tailPattern"),
    ("LRS_MAX_CONCURRENT_RESTORES", "param maxConcurrentRestores"),
    ("LRS_DATABASE_NAME_MAP", "param databaseNameMap"),
    ("LRS_EVENTS_QUEUE", "param queueName"),
    ("LRS_TIMER_SCHEDULE", "param timerSchedule"),
    (
        "LRS_RESYNC_INTERVAL_SECS",
        "derived: the binary's default, written in modules/function-app.bicep",
    ),
    (
        "LRS_LOG_FORMAT",
        "derived: always json in Azure, for the log alerts",
    ),
];

#[test]
fn bicep_parameter_defaults_match_the_binary_defaults() {
    let params = main_parameters();
    let sources: BTreeMap<&str, &str> = DEFAULT_SOURCES.iter().copied().collect();
    for (variable, default) in VARIABLES {
        let Some(default) = default else { continue };
        let source = sources.get(variable).unwrap_or_else(|| {
            panic!("{variable} has a default ({default}); add it to DEFAULT_SOURCES")
        });
        let Some(param) = source.strip_prefix("param ") else {
            continue;
        };
        let bicep_default = params
            .get(param)
            .unwrap_or_else(|| panic!("main.bicep has no parameter {param} for {variable}"))
            .as_deref()
            .unwrap_or_else(|| {
                panic!(
                    "main.bicep parameter {param} has no default; {variable} defaults to {default}"
                )
            });
        // Bicep literals: 'string', an integer, or {} for the empty object.
        let value = bicep_default
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(bicep_default);
        assert_eq!(
            value, *default,
            "main.bicep {param} vs the binary's default for {variable}"
        );
    }
    // And the LRS_ARM_ENDPOINT default is what the template derives in the public cloud.
    let arm = VARIABLES
        .iter()
        .find(|(n, _)| *n == "LRS_ARM_ENDPOINT")
        .and_then(|(_, d)| *d);
    assert_eq!(arm, Some("https://management.azure.com"));
}

// ------------------------------------------------------------------------------------------------------------
// checkov
// ------------------------------------------------------------------------------------------------------------

/// checkov through the interpreter `.ci/run` installs it into (`python3 -m pip`), so PATH does not matter.
fn checkov_command() -> Command {
    let mut command = Command::new("python3");
    command.args(["-m", "checkov.main"]);
    command
}

fn checkov_available() -> bool {
    tool_available("checkov", checkov_command().arg("--version"))
}

/// Runs checkov on a folder of Bicep files and returns its JSON report for the bicep framework.
fn checkov(dir: &Path) -> serde_json::Value {
    let out = checkov_command()
        .args([
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
            "--directory",
        ])
        .arg(dir)
        .output()
        .expect("checkov runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov did not print a json report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // One framework gives one object; several give a list.
    match report {
        serde_json::Value::Array(reports) => reports
            .into_iter()
            .find(|r| r["check_type"] == "bicep")
            .expect("a bicep report"),
        report => report,
    }
}

fn check_lines(report: &serde_json::Value, kind: &str) -> Vec<String> {
    report["results"][kind]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {} ({})",
                        c["check_id"], c["file_path"], c["resource"], c["check_name"]
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn checkov_reports_no_failed_checks_on_infra() {
    if !checkov_available() {
        return;
    }
    let report = checkov(&infra());
    let summary = &report["summary"];
    assert_eq!(
        summary["parsing_errors"], 0,
        "checkov could not parse: {}",
        report["results"]["parsing_errors"]
    );
    assert_eq!(
        summary["failed"],
        0,
        "failed checks:\n{}",
        check_lines(&report, "failed_checks").join("\n")
    );
    assert!(
        summary["passed"].as_u64().unwrap_or(0) >= 20,
        "too few checks ran: {summary}"
    );

    // The scan reached the resources that matter (a parse that silently dropped a module would not).
    let passed = check_lines(&report, "passed_checks").join("\n");
    for resource in [
        "Microsoft.Web/sites.site",
        "Microsoft.Storage/storageAccounts.account",
        "Microsoft.Authorization/roleDefinitions.operatorRole",
        "Microsoft.Storage/storageAccounts/blobServices/containers.state",
    ] {
        assert!(
            passed.contains(resource),
            "no passed check on {resource}:\n{passed}"
        );
    }

    // Every suppression says why, beside the resource it suppresses.
    let skipped = report["results"]["skipped_checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for check in &skipped {
        let reason = check["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("")
            .trim();
        assert!(
            reason.len() >= 30 && reason != "No comment provided",
            "suppression of {} on {} needs a reason: {reason:?}",
            check["check_id"],
            check["resource"]
        );
    }
}

#[test]
fn checkov_fails_a_weak_storage_account() {
    if !checkov_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("weak.bicep"),
        "resource weak 'Microsoft.Storage/storageAccounts@2025-01-01' = {\n  name: 'weakaccount'\n  location: \
         'westeurope'\n  kind: 'StorageV2'\n  sku: {\n    name: 'Standard_LRS'\n  }\n  properties: {\n    \
         minimumTlsVersion: 'TLS1_0'\n    supportsHttpsTrafficOnly: false\n  }\n}\n",
    )
    .expect("write weak.bicep");
    let report = checkov(dir.path());
    let failed = check_lines(&report, "failed_checks").join("\n");
    for id in ["CKV_AZURE_44", "CKV_AZURE_3"] {
        assert!(
            failed.contains(id),
            "checkov should fail {id} on a TLS 1.0, HTTP-allowed account:\n{failed}"
        );
    }
}

// ------------------------------------------------------------------------------------------------------------
// A second parser
// ------------------------------------------------------------------------------------------------------------

const TREE_SITTER_CHECK: &str = r#"
import json, sys
import tree_sitter_bicep
from tree_sitter import Language, Parser
parser = Parser(Language(tree_sitter_bicep.language()))
def errors(node, out):
    if node.type == "ERROR" or node.is_missing:
        out.append(f"{node.type} at line {node.start_point[0] + 1}, column {node.start_point[1] + 1}")
    for child in node.children:
        errors(child, out)
    return out
report = {}
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        report[path] = errors(parser.parse(f.read()).root_node, [])
# The same check must flag broken Bicep, or an empty report proves nothing.
report["<broken canary>"] = errors(parser.parse(b"resource x 'a@b' = {\n  name: \n").root_node, [])
print(json.dumps(report))
"#;

#[test]
fn bicep_files_parse_with_the_tree_sitter_grammar() {
    if !tool_available(
        "python3 with tree-sitter-bicep",
        Command::new("python3").args(["-c", "import tree_sitter, tree_sitter_bicep"]),
    ) {
        return;
    }
    let files = bicep_files();
    let out = Command::new("python3")
        .args(["-c", TREE_SITTER_CHECK])
        .args(&files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "tree-sitter check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: BTreeMap<String, Vec<String>> =
        serde_json::from_slice(&out.stdout).expect("json report");
    assert!(
        !report["<broken canary>"].is_empty(),
        "the grammar accepted broken Bicep"
    );
    for file in &files {
        let key = file.to_str().expect("utf-8 path");
        assert_eq!(report[key], Vec::<String>::new(), "{key} does not parse");
    }
}

// ------------------------------------------------------------------------------------------------------------
// Structure
// ------------------------------------------------------------------------------------------------------------

#[test]
fn every_module_exists_and_every_module_is_used() {
    let mut used = BTreeSet::new();
    for file in bicep_files() {
        for line in read(&file).lines() {
            let Some(rest) = line.trim_start().strip_prefix("module ") else {
                continue;
            };
            let path = rest
                .split('\'')
                .nth(1)
                .unwrap_or_else(|| panic!("module path in {line:?}"));
            let target = file.parent().expect("parent").join(path);
            assert!(
                target.is_file(),
                "{} uses a missing module {path}",
                file.display()
            );
            used.insert(target.canonicalize().expect("canonical path"));
        }
    }
    for file in bicep_files().into_iter().skip(1) {
        assert!(
            used.contains(&file.canonicalize().expect("canonical")),
            "{} is never used",
            file.display()
        );
    }
}

/// Parameters a Bicep file declares: name → has a default.
fn declared_parameters(path: &Path) -> BTreeMap<String, bool> {
    read(path)
        .lines()
        .filter_map(|line| line.strip_prefix("param "))
        .map(|rest| {
            let name = rest.split(' ').next().expect("param name").to_owned();
            (name, rest.contains(" = "))
        })
        .collect()
}

/// What the Bicep compiler would check and cannot here: each `module` passes every required parameter of its
/// file and no unknown one, and every `<module>.outputs.<name>` exists.
#[test]
fn module_calls_match_module_parameters_and_outputs() {
    let mut calls = 0;
    for file in bicep_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        let mut modules = BTreeMap::new();
        for (at, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("module ") else {
                continue;
            };
            let symbol = rest.split(' ').next().expect("module symbol");
            let path = rest.split('\'').nth(1).expect("module path");
            let target = file.parent().expect("parent").join(path);
            let declared = declared_parameters(&target);
            // The `params: {` block of this module, its keys at four spaces.
            let open = (at..lines.len())
                .find(|&i| lines[i].trim() == "params: {")
                .expect("params block");
            let passed: BTreeSet<String> = lines[open + 1..]
                .iter()
                .take_while(|l| l.trim() != "}")
                .filter_map(|l| l.strip_prefix("    ")?.split_once(": ").map(|(k, _)| k))
                .filter(|k| !k.starts_with(' ') && !k.starts_with("//"))
                .map(str::to_owned)
                .collect();
            for (name, has_default) in &declared {
                assert!(
                    *has_default || passed.contains(name),
                    "{symbol}: required parameter {name} not passed"
                );
            }
            for name in &passed {
                assert!(
                    declared.contains_key(name),
                    "{symbol}: {path} has no parameter {name}"
                );
            }
            modules.insert(symbol.to_owned(), read(&target));
            calls += 1;
        }
        for (at, _) in text.match_indices(".outputs.") {
            let symbol: String = text[..at]
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || *c == '!')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .filter(|c| *c != '!')
                .collect();
            let output: String = text[at + ".outputs.".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            let module = modules
                .get(&symbol)
                .unwrap_or_else(|| panic!("{symbol}.outputs: no such module"));
            assert!(
                module
                    .lines()
                    .any(|l| l.starts_with(&format!("output {output} "))),
                "{symbol} has no output {output}"
            );
        }
    }
    assert!(
        calls >= 10,
        "expected the module calls of main.bicep, found {calls}"
    );
}

#[test]
fn example_parameters_name_declared_parameters_and_every_required_one() {
    let params = main_parameters();
    let example: serde_json::Value =
        serde_json::from_str(&read(&infra().join("main.parameters.example.json")))
            .expect("valid json");
    let given = example["parameters"]
        .as_object()
        .expect("a parameters object");
    for name in given.keys() {
        assert!(
            params.contains_key(name),
            "main.parameters.example.json sets {name}, which main.bicep lacks"
        );
        assert!(given[name].get("value").is_some(), "{name} has no value");
    }
    for (name, default) in &params {
        if default.is_none() {
            assert!(
                given.contains_key(name),
                "the example omits required parameter {name}"
            );
        }
    }
}

/// Built-in role definition ids (docs/azure-apis.md §4, and Microsoft's built-in roles list).
const BUILT_IN_ROLES: &[(&str, &str)] = &[
    (
        "storageBlobDataReader",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    ),
    (
        "storageBlobDataContributor",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    ),
    (
        "storageBlobDataOwner",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    ),
    (
        "storageTableDataContributor",
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    ),
    (
        "serviceBusDataReceiver",
        "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
    ),
    (
        "serviceBusDataSender",
        "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
    ),
    (
        "monitoringMetricsPublisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
    ),
    (
        "keyVaultSecretsUser",
        "4633458b-17de-408a-b874-0445c86b69e6",
    ),
];

#[test]
fn role_ids_are_the_built_in_roles_their_names_say() {
    let roles: BTreeMap<&str, &str> = BUILT_IN_ROLES.iter().copied().collect();
    let mut seen = 0;
    for file in bicep_files() {
        for line in read(&file).lines() {
            let Some((name, value)) = line.strip_prefix("var ").and_then(|r| r.split_once(" = '"))
            else {
                continue;
            };
            let value = value.trim_end_matches('\'');
            let looks_like_guid =
                value.len() == 36 && value.chars().filter(|c| *c == '-').count() == 4;
            if !looks_like_guid {
                continue;
            }
            seen += 1;
            assert_eq!(
                roles.get(name),
                Some(&value),
                "{}: var {name} = '{value}'",
                file.display()
            );
        }
    }
    assert!(seen >= 8, "expected the role id variables, found {seen}");
}
