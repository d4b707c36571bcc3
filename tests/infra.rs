//! Checks on `infra/` that need no Azure and no Bicep compiler (none is installable here: see infra/README.md):
//!
//! - the Function App settings in the Bicep, for each hosting plan (Flex Consumption, Elastic Premium, Dedicated),
//!   are exactly the variables the binary reads (`lrs_autopilot::config::VARIABLES`) plus the Functions platform's
//!   own for that plan (Flex gets none of the settings Microsoft rejects there), so the two cannot drift, and the
//!   Bicep parameter defaults equal the binary's defaults and satisfy their own `@allowed`/`@minValue`/`@maxValue`;
//! - the Flex Consumption configuration (`functionAppConfig`) uses the custom runtime and the app's identity;
//! - checkov (pinned in `.ci/requirements.txt`, it parses Bicep with pycep) reports 0 failed checks and 0 parsing
//!   errors, on the whole template and on the Function App module specialised to each plan, every suppression
//!   carries its reason, and a deliberately weak template does fail (so 0 means something);
//! - every `.bicep` file parses with a second, independent grammar (tree-sitter-bicep);
//! - modules referenced exist and every module is used; the example parameters name only declared parameters and
//!   every required one; built-in role ids are the documented ones; every resource type and API version is listed
//!   in infra/README.md's record of what was checked against Microsoft's published schema.
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

/// The hosting plans `hostingPlan` accepts, as main.bicep and the Function App module spell them.
const PLANS: &[&str] = &["FlexConsumption", "ElasticPremium", "Dedicated"];

/// Settings the Functions platform (not the binary) reads, on Elastic Premium and Dedicated. Each one is explained
/// in infra/README.md.
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

/// Of those, the ones Flex Consumption does not take as app settings: it reads the runtime from
/// `functionAppConfig.runtime`, sets the Functions version itself and runs the package from the deployment container.
const NOT_ON_FLEX: &[&str] = &[
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID",
];

/// App settings Microsoft lists as rejected, replaced or unsupported on Flex Consumption ("Flex Consumption plan
/// deprecations" in the app settings reference; WEBSITE_TIME_ZONE, TZ and WEBSITE_LOAD_CERTIFICATES from the Flex
/// Consumption plan's considerations). None may reach a Flex app.
const REJECTED_ON_FLEX: &[&str] = &[
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
    "TZ",
    "WEBSITE_LOAD_CERTIFICATES",
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

/// The settings lists between the markers: `var <list> = [` → its `name: '<setting>'` entries, and
/// `var <list> = <condition> ? <other list> : []` → that other list's entries (the case that sets them).
fn setting_lists(text: &str) -> BTreeMap<String, Vec<String>> {
    let start = text.find(BEGIN).expect("begin marker");
    let end = text.find(END).expect("end marker");
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut aliases = Vec::new();
    let mut current = None;
    for line in text[start..end].lines() {
        if let Some(rest) = line.strip_prefix("var ") {
            let (name, value) = rest.split_once(" = ").expect("var <name> = <value>");
            if value.trim() == "[" {
                lists.insert(name.to_owned(), Vec::new());
                current = Some(name.to_owned());
            } else {
                let (_, branches) = value.split_once(" ? ").unwrap_or_else(|| {
                    panic!("{name}: a settings var is a list or `<condition> ? <list> : []`")
                });
                let (then, otherwise) = branches.split_once(" : ").expect("a ? b : c");
                assert_eq!(
                    otherwise.trim(),
                    "[]",
                    "{name}: the other branch must be []"
                );
                aliases.push((name.to_owned(), then.trim().to_owned()));
                current = None;
            }
        } else if let Some(setting) = line
            .trim()
            .strip_prefix("name: '")
            .and_then(|r| r.strip_suffix('\''))
        {
            let list = current.as_ref().expect("a setting outside a settings list");
            lists.get_mut(list).expect("list").push(setting.to_owned());
        }
    }
    for (alias, target) in aliases {
        let names = lists
            .get(&target)
            .unwrap_or_else(|| panic!("{alias} refers to an unknown list {target}"))
            .clone();
        lists.insert(alias, names);
    }
    lists
}

/// The settings a site on `plan` gets: evaluates the site's `appSettings: concat(...)` over the lists between the
/// markers. Each argument is a list, or `flex ? [] : <list>` (no such list on Flex Consumption); anything else fails
/// the test so that a new construct is taught here rather than skipped.
fn app_settings_for_plan(text: &str, plan: &str) -> Vec<String> {
    assert!(PLANS.contains(&plan), "unknown plan {plan}");
    assert!(
        text.contains("var flex = hostingPlan == 'FlexConsumption'"),
        "{SETTINGS_FILE} must define `flex` as the Flex Consumption case"
    );
    let lists = setting_lists(text);
    let expression = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("appSettings: concat("))
        .and_then(|r| r.strip_suffix(')'))
        .expect("the site's `appSettings: concat(...)`");
    let mut names = Vec::new();
    for argument in expression.split(", ") {
        let list = match argument.strip_prefix("flex ? [] : ") {
            Some(_) if plan == "FlexConsumption" => continue,
            Some(list) => list,
            None => argument,
        };
        assert!(
            list.chars().all(|c| c.is_ascii_alphanumeric()),
            "appSettings argument {argument:?} is neither a list nor `flex ? [] : <list>`"
        );
        names.extend(
            lists
                .get(list)
                .unwrap_or_else(|| {
                    panic!("appSettings uses {list}, not a list between the markers")
                })
                .iter()
                .cloned(),
        );
    }
    names
}

#[test]
fn app_settings_are_exactly_the_binary_variables_and_the_functions_settings_on_each_plan() {
    let text = read(&infra().join(SETTINGS_FILE));
    // Every name between the markers is in a list the site can get.
    let all: BTreeSet<String> = app_setting_names(&text).into_iter().collect();
    let mut reachable = BTreeSet::new();
    for plan in PLANS {
        let names = app_settings_for_plan(&text, plan);
        let unique: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "{plan}: a setting is listed twice: {names:?}"
        );
        let expected: BTreeSet<&str> = VARIABLES
            .iter()
            .map(|(name, _)| *name)
            .chain(FUNCTIONS_SETTINGS.iter().copied())
            .filter(|name| *plan != "FlexConsumption" || !NOT_ON_FLEX.contains(name))
            .collect();
        let missing: Vec<&&str> = expected.difference(&unique).collect();
        let extra: Vec<&&str> = unique.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{plan}: app settings drifted from src/config.rs VARIABLES + FUNCTIONS_SETTINGS\n  missing from the \
             Bicep: {missing:?}\n  not read by anyone: {extra:?}"
        );
        reachable.extend(names);
    }
    assert_eq!(
        reachable, all,
        "a settings list between the markers is never used"
    );

    // The lists between the markers are what the site gets, and nothing else is added after them.
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

#[test]
fn flex_gets_no_setting_microsoft_rejects_there_and_the_other_plans_get_the_custom_runtime() {
    let text = read(&infra().join(SETTINGS_FILE));
    let flex = app_settings_for_plan(&text, "FlexConsumption");
    let rejected: Vec<&String> = flex
        .iter()
        .filter(|name| REJECTED_ON_FLEX.contains(&name.as_str()))
        .collect();
    assert!(rejected.is_empty(), "settings Flex rejects: {rejected:?}");
    for name in NOT_ON_FLEX {
        assert!(!flex.iter().any(|n| n == name), "{name} on Flex");
    }
    for plan in ["ElasticPremium", "Dedicated"] {
        let names = app_settings_for_plan(&text, plan);
        for name in NOT_ON_FLEX {
            assert!(names.iter().any(|n| n == name), "{plan} lacks {name}");
        }
    }
    // The classic plans name the custom handler runtime in the setting that Flex takes from functionAppConfig.
    assert!(
        text.contains("name: 'FUNCTIONS_WORKER_RUNTIME'\n    value: 'custom'"),
        "FUNCTIONS_WORKER_RUNTIME must be custom on the classic plans"
    );
}

#[test]
fn settings_for_a_plan_follow_the_concat_expression() {
    let text = "var flex = hostingPlan == 'FlexConsumption'\n// app-settings:begin\nvar a = [\n  {\n    name: 'A'\n  \
                }\n]\nvar b = [\n  {\n    name: 'B'\n  }\n]\nvar c = [\n  {\n    name: 'C'\n  }\n]\nvar cs = x == 'y' \
                ? c : []\n// app-settings:end\n      appSettings: concat(a, flex ? [] : b, cs)\n";
    assert_eq!(app_settings_for_plan(text, "FlexConsumption"), ["A", "C"]);
    assert_eq!(app_settings_for_plan(text, "Dedicated"), ["A", "B", "C"]);
    let unknown = text.replace("concat(a,", "concat(a, union(a, b),");
    assert!(std::panic::catch_unwind(|| app_settings_for_plan(&unknown, "Dedicated")).is_err());
}

/// The triggers in handlers/*/function.json resolve `%SETTING%` and `connection` names from the app settings:
/// each one must be set, or the host cannot start that function.
#[test]
fn function_bindings_name_only_settings_the_app_has_on_each_plan() {
    let text = read(&infra().join(SETTINGS_FILE));
    for plan in PLANS {
        let settings: BTreeSet<String> = app_settings_for_plan(&text, plan).into_iter().collect();
        bindings_resolve_from(&settings, plan);
    }
}

fn bindings_resolve_from(settings: &BTreeSet<String>, plan: &str) {
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
                        "{plan}: {}: %{name}% is not an app setting",
                        path.display()
                    );
                    checked += 1;
                    rest = tail;
                }
            }
            if let Some(connection) = binding["connection"].as_str() {
                // Identity-based: the namespace, and the user-assigned identity to use for it.
                for suffix in ["fullyQualifiedNamespace", "credential", "clientId"] {
                    let key = format!("{connection}__{suffix}");
                    assert!(
                        settings.contains(&key),
                        "{plan}: {}: connection {connection} needs {key}",
                        path.display()
                    );
                }
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

/// A parameter's declaration: its default expression and the constraints its decorators put on values.
#[derive(Debug, Default)]
struct Parameter {
    default: Option<String>,
    allowed: Option<Vec<String>>,
    min_value: Option<i64>,
    max_value: Option<i64>,
}

/// Parameters a Bicep file declares, with their `@allowed([...])`, `@minValue(n)` and `@maxValue(n)` decorators.
fn parameters_with_constraints(text: &str) -> BTreeMap<String, Parameter> {
    let mut params = BTreeMap::new();
    let mut pending = Parameter::default();
    let mut in_allowed = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if in_allowed {
            if trimmed == "])" {
                in_allowed = false;
            } else {
                pending
                    .allowed
                    .get_or_insert_with(Vec::new)
                    .push(trimmed.trim_matches('\'').to_owned());
            }
        } else if trimmed == "@allowed([" {
            in_allowed = true;
        } else if let Some(n) = trimmed
            .strip_prefix("@minValue(")
            .and_then(|r| r.strip_suffix(')'))
        {
            pending.min_value = Some(n.parse().expect("@minValue integer"));
        } else if let Some(n) = trimmed
            .strip_prefix("@maxValue(")
            .and_then(|r| r.strip_suffix(')'))
        {
            pending.max_value = Some(n.parse().expect("@maxValue integer"));
        } else if let Some(rest) = line.strip_prefix("param ") {
            let mut parts = rest.splitn(2, ' ');
            let name = parts.next().expect("param name").to_owned();
            pending.default = parts
                .next()
                .and_then(|r| r.split_once(" = "))
                .map(|(_, d)| d.trim().to_owned());
            params.insert(name, std::mem::take(&mut pending));
        } else if !trimmed.starts_with('@') && !trimmed.is_empty() && !trimmed.starts_with("//") {
            pending = Parameter::default();
        }
    }
    params
}

/// Whether a literal value (a Bicep literal or a JSON scalar's text) meets a parameter's decorators.
fn violation(param: &Parameter, value: &str) -> Option<String> {
    let value = value.trim_matches('\'').trim_matches('"');
    if let Some(allowed) = &param.allowed {
        if !allowed.iter().any(|a| a == value) {
            return Some(format!("{value} is not one of {allowed:?}"));
        }
    }
    if param.min_value.is_some() || param.max_value.is_some() {
        let Ok(n) = value.parse::<i64>() else {
            return Some(format!("{value} is not an integer"));
        };
        if param.min_value.is_some_and(|min| n < min) || param.max_value.is_some_and(|max| n > max)
        {
            return Some(format!(
                "{n} is outside {:?}..={:?}",
                param.min_value, param.max_value
            ));
        }
    }
    None
}

#[test]
fn parameter_defaults_and_example_values_satisfy_their_decorators() {
    let mut checked = 0;
    for file in bicep_files() {
        for (name, param) in parameters_with_constraints(&read(&file)) {
            let Some(default) = &param.default else {
                continue;
            };
            let literal = default.starts_with('\'') || default.parse::<i64>().is_ok();
            if !literal
                || (param.allowed.is_none()
                    && param.min_value.is_none()
                    && param.max_value.is_none())
            {
                continue;
            }
            if let Some(problem) = violation(&param, default) {
                panic!("{}: param {name} = {default}: {problem}", file.display());
            }
            checked += 1;
        }
    }
    let params = parameters_with_constraints(&read(&infra().join("main.bicep")));
    let example: serde_json::Value =
        serde_json::from_str(&read(&infra().join("main.parameters.example.json")))
            .expect("valid json");
    for (name, given) in example["parameters"].as_object().expect("parameters") {
        let value = match &given["value"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Some(problem) = params.get(name).and_then(|p| violation(p, &value)) {
            panic!("main.parameters.example.json {name}: {problem}");
        }
    }
    assert!(
        checked >= 8,
        "expected the constrained parameters, checked {checked}"
    );
}

#[test]
fn decorator_parser_reads_allowed_values_and_bounds() {
    let params = parameters_with_constraints(
        "@description('x')\n@allowed([\n  'A'\n  'B'\n])\nparam p string = 'C'\n@minValue(40)\n@maxValue(1000)\n\
         param n int = 39\nvar v = 1\nparam free string\n",
    );
    assert_eq!(
        params["p"].allowed.as_deref(),
        Some(&["A".to_owned(), "B".to_owned()][..])
    );
    assert!(violation(&params["p"], "'C'").is_some());
    assert!(violation(&params["p"], "'A'").is_none());
    assert!(violation(&params["n"], "39").is_some());
    assert!(violation(&params["n"], "40").is_none());
    assert!(params["free"].allowed.is_none() && params["free"].default.is_none());
}

#[test]
fn hosting_plan_is_flex_consumption_by_default_and_the_module_accepts_each_plan() {
    let main = parameters_with_constraints(&read(&infra().join("main.bicep")));
    let module = parameters_with_constraints(&read(&infra().join(SETTINGS_FILE)));
    let plans: Vec<String> = PLANS.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(main["hostingPlan"].allowed.as_ref(), Some(&plans));
    assert_eq!(module["hostingPlan"].allowed.as_ref(), Some(&plans));
    assert_eq!(
        main["hostingPlan"].default.as_deref(),
        Some("'FlexConsumption'")
    );

    // Flex sizing: the smallest instance Flex offers (the binary's RSS is about 15 MiB), the module accepting the
    // same sizes and bounds as main.bicep, so no value main.bicep lets through is refused at deployment time.
    let memory = &main["flexInstanceMemoryMB"];
    let smallest = memory
        .allowed
        .as_ref()
        .and_then(|a| a.iter().filter_map(|v| v.parse::<i64>().ok()).min())
        .expect("flexInstanceMemoryMB has @allowed sizes");
    assert_eq!(
        memory.default.as_deref(),
        Some(smallest.to_string().as_str())
    );
    assert_eq!(module["instanceMemoryMB"].allowed, memory.allowed);
    let count = &main["flexMaximumInstanceCount"];
    assert_eq!(
        (
            module["maximumInstanceCount"].min_value,
            module["maximumInstanceCount"].max_value
        ),
        (count.min_value, count.max_value)
    );
}

/// The `var <name> = {` block of a Bicep file, up to its closing `}` at the start of a line.
fn var_block<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("\nvar {name} = {{\n"))
        .unwrap_or_else(|| panic!("no `var {name} = {{` block"));
    let end = text[start + 1..].find("\n}\n").expect("closing brace") + start + 1;
    &text[start..end]
}

#[test]
fn flex_config_runs_the_custom_handler_from_the_deployment_container_with_the_app_identity() {
    let text = read(&infra().join(SETTINGS_FILE));
    let config = var_block(&text, "flexConfig");
    let lines: Vec<&str> = config.lines().map(str::trim).collect();
    for expected in [
        "name: 'custom'",
        "type: 'blobContainer'",
        "value: deploymentContainerUrl",
        "type: 'UserAssignedIdentity'",
        "userAssignedIdentityResourceId: identityId",
        "instanceMemoryMB: instanceMemoryMB",
        "maximumInstanceCount: maximumInstanceCount",
    ] {
        assert!(
            lines.contains(&expected),
            "flexConfig lacks `{expected}`:\n{config}"
        );
    }
    // No connection string, no always-ready instances billed around the clock.
    assert!(
        !config.contains("StorageAccountConnectionString"),
        "{config}"
    );
    assert!(!config.contains("alwaysReady"), "{config}");
    // The site takes it on Flex only, on an FC1 plan.
    for expected in [
        "functionAppConfig: flex ? flexConfig : null",
        "sku: flex ? flexPlanSku : (premium ? premiumPlanSku : dedicatedPlanSku)",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == expected),
            "{SETTINGS_FILE} lacks `{expected}`"
        );
    }
    let sku = var_block(&text, "flexPlanSku");
    assert!(
        sku.contains("name: 'FC1'") && sku.contains("tier: 'FlexConsumption'"),
        "{sku}"
    );
    // The deployment container is the package container of the host account, where the app's identity is owner.
    let main = read(&infra().join("main.bicep"));
    assert!(main.contains("deploymentContainerUrl: hostStorage.outputs.packageContainerUrl"));
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

/// Site properties Flex Consumption rejects, even when sent as null (error 51021 names linuxFxVersion, ftpsState,
/// use32BitWorkerProcess, netFrameworkVersion, functionsRuntimeScaleMonitoringEnabled), or replaces with
/// functionAppConfig (alwaysOn, minimumElasticInstanceCount, preWarmedInstanceCount, functionAppScaleLimit).
const SITE_CONFIG_NOT_ON_FLEX: &[&str] = &[
    "linuxFxVersion",
    "ftpsState",
    "use32BitWorkerProcess",
    "netFrameworkVersion",
    "functionsRuntimeScaleMonitoringEnabled",
    "alwaysOn",
    "minimumElasticInstanceCount",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
];

/// checkov cannot read a siteConfig built with union() (its TLS, HTTP/2 and FTP checks are suppressed on the site
/// for that reason), so this checks what they would: both parts of the site configuration, and which plans get which.
#[test]
fn site_config_is_secure_on_every_plan_and_keeps_classic_properties_off_flex() {
    let text = read(&infra().join(SETTINGS_FILE));
    assert!(
        text.lines()
            .any(|l| l.trim()
                == "siteConfig: union(secureSiteConfig, flex ? {} : classicSiteConfig, {"),
        "the site's siteConfig must be secureSiteConfig, plus classicSiteConfig off Flex, plus the app settings"
    );
    let lines = |name: &str| -> Vec<String> {
        var_block(&text, name)
            .lines()
            .skip(1)
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let secure = lines("secureSiteConfig");
    for expected in [
        "minTlsVersion: '1.2'",
        "scmMinTlsVersion: '1.2'",
        "http20Enabled: true",
        "remoteDebuggingEnabled: false",
    ] {
        assert!(
            secure.iter().any(|l| l == expected),
            "secureSiteConfig lacks `{expected}`"
        );
    }
    let classic = lines("classicSiteConfig");
    for expected in [
        "ftpsState: 'Disabled'",
        "alwaysOn: !premium",
        "linuxFxVersion: ''",
    ] {
        assert!(
            classic.iter().any(|l| l == expected),
            "classicSiteConfig lacks `{expected}`"
        );
    }
    // What Flex gets must name none of the properties it rejects.
    let key = |l: &String| l.split_once(':').map(|(k, _)| k.trim().to_owned());
    for property in secure.iter().filter_map(key) {
        assert!(
            !SITE_CONFIG_NOT_ON_FLEX.contains(&property.as_str()),
            "secureSiteConfig reaches Flex but sets {property}"
        );
    }
    // And nothing else in the site sets them a second way.
    let site = &text[text.find("resource site ").expect("site")..];
    for property in SITE_CONFIG_NOT_ON_FLEX {
        assert!(
            !site.contains(&format!("{property}:")),
            "the site sets {property} outside classicSiteConfig"
        );
    }
    // FTP and basic-auth publishing are off on every plan, including Flex where ftpsState cannot be set.
    for policy in ["ftp", "scm"] {
        let at = text
            .find(&format!(
                "  name: '{policy}'\n  properties: {{\n    allow: false\n"
            ))
            .unwrap_or_else(|| {
                panic!("no {policy} publishing-credentials policy with allow: false")
            });
        assert!(
            text[..at]
                .rfind("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
                .is_some(),
            "{policy} policy"
        );
    }
}

/// The Function App module with `flex` and `premium` fixed for one plan, so that checkov (which does not evaluate
/// conditions) scans what that plan deploys.
fn function_app_module_for(plan: &str) -> String {
    let text = read(&infra().join(SETTINGS_FILE));
    let flex = "var flex = hostingPlan == 'FlexConsumption'";
    let premium = "var premium = hostingPlan == 'ElasticPremium'";
    assert!(
        text.contains(flex) && text.contains(premium),
        "{SETTINGS_FILE}: plan switches moved"
    );
    text.replace(flex, &format!("var flex = {}", plan == "FlexConsumption"))
        .replace(
            premium,
            &format!("var premium = {}", plan == "ElasticPremium"),
        )
}

#[test]
fn checkov_reports_no_failed_checks_on_the_function_app_of_each_plan() {
    if !checkov_available() {
        return;
    }
    for plan in PLANS {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("function-app.bicep"),
            function_app_module_for(plan),
        )
        .expect("write module");
        let report = checkov(dir.path());
        let summary = &report["summary"];
        assert_eq!(
            summary["parsing_errors"], 0,
            "{plan}: checkov could not parse"
        );
        assert_eq!(
            summary["failed"],
            0,
            "{plan}: failed checks:\n{}",
            check_lines(&report, "failed_checks").join("\n")
        );
        let passed = check_lines(&report, "passed_checks").join("\n");
        assert!(
            passed.contains("Microsoft.Web/sites.site")
                && summary["passed"].as_u64().unwrap_or(0) >= 10,
            "{plan}: the site was not scanned: {summary}"
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

/// Every `'<type>@<api version>'` a resource or module reference in the Bicep uses.
fn resource_types_used() -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for file in bicep_files() {
        for line in read(&file).lines() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with("resource ") {
                continue;
            }
            let quoted = trimmed.split('\'').nth(1).expect("resource type in quotes");
            assert!(
                quoted.contains('@'),
                "{}: {quoted} has no API version",
                file.display()
            );
            used.insert(quoted.to_owned());
        }
    }
    used
}

/// infra/README.md records, for each resource type and API version, that it was checked against Microsoft's
/// published schema (the bicep-types-az generated types; infra/tools/check_types.py). A new type or version has to
/// be checked and recorded there.
#[test]
fn every_resource_type_and_api_version_is_recorded_as_checked() {
    let guide = read(&infra().join("README.md"));
    let section = guide
        .split_once("### Schema check")
        .map(|(_, rest)| rest)
        .expect("infra/README.md has a `### Schema check` section");
    let used = resource_types_used();
    assert!(
        used.len() >= 15,
        "expected the template's resource types, found {used:?}"
    );
    for resource in &used {
        assert!(
            section.contains(&format!("`{resource}`")),
            "infra/README.md's schema check does not record `{resource}`"
        );
    }
    assert!(used.contains("Microsoft.Web/sites@2024-04-01"), "{used:?}");
}

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

// ------------------------------------------------------------------------------------------------------------
// Several target instances
// ------------------------------------------------------------------------------------------------------------

/// The lines of `text` from the one starting with `start` up to its closing line (`}` or `}]` at column 0).
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no block starting {start:?}"));
    let rest = &text[at..];
    let end = rest
        .find("\n}\n")
        .or_else(|| rest.find("\n}]\n"))
        .or_else(|| rest.find("\n]\n"))
        .expect("a closing line");
    &rest[..end]
}

/// `targets` is an array parameter with a default of none, so a single-instance deployment keeps working; it
/// becomes LRS_TARGETS (a JSON object keyed by container or container/folder) on every plan, and the
/// single-instance settings are left empty (unset for the binary) when there is no default instance.
#[test]
fn the_targets_parameter_becomes_lrs_targets_and_keeps_the_single_instance_default() {
    let params = main_parameters();
    assert_eq!(params.get("targets"), Some(&Some("[]".to_owned())));
    assert_eq!(
        params.get("managedInstanceId"),
        Some(&Some("''".to_owned()))
    );
    let main = read(&infra().join("main.bicep"));
    let pairs = main
        .lines()
        .find(|l| l.starts_with("var targetPairs = [for t in targets: "))
        .expect("the LRS_TARGETS pairs");
    for part in [
        "t.?folder ?? ''",
        "t.container",
        "'${t.container}/${t.folder}'",
        "t.managedInstanceId",
    ] {
        assert!(pairs.contains(part), "{pairs}");
    }
    assert!(main.contains("var lrsTargets = empty(targets) ? '' : '{${join(targetPairs, ',')}}'"));
    let call = block(&main, "module functionApp ");
    assert!(call.contains("    lrsTargets: lrsTargets\n"), "{call}");
    for single in [
        "subscriptionId",
        "managedInstanceResourceGroup",
        "managedInstanceName",
    ] {
        assert!(
            call.contains(&format!("    {single}: hasDefaultInstance ? ")),
            "{single} is empty without a default instance: {call}"
        );
    }
    let text = read(&infra().join(SETTINGS_FILE));
    let setting = text
        .split("name: 'LRS_TARGETS'")
        .nth(1)
        .expect("an LRS_TARGETS setting");
    assert!(
        setting.trim_start().starts_with("value: lrsTargets"),
        "{setting}"
    );
    for plan in PLANS {
        assert!(
            app_settings_for_plan(&text, plan).contains(&"LRS_TARGETS".to_owned()),
            "{plan}"
        );
    }
}

/// The app's custom role reaches every target instance: one module per resource group holding an instance (the
/// default one and each entry's, de-duplicated), each defining the role once with a name unique in the tenant and
/// assigning it on the instances of its group only; the role itself is unchanged (least privilege as before).
#[test]
fn every_target_instance_gets_the_custom_role_from_a_module_in_its_resource_group() {
    let main = read(&infra().join("main.bicep"));
    assert!(main.contains(
        "var instanceIds = union(hasDefaultInstance ? [managedInstanceId] : [], targetInstanceIds)"
    ));
    assert!(main.contains("var instanceGroups = union(instanceGroupIds, [])"));
    let call = block(&main, "module managedInstanceAccess ");
    assert!(
        call.contains("= [for group in instanceGroups: {")
            && call.contains("scope: resourceGroup(split(group, '/')[2], split(group, '/')[4])")
            && call.contains("    managedInstanceIds: instanceIds\n"),
        "{call}"
    );
    let module = read(&infra().join("modules/managed-instance-access.bicep"));
    let assignment = block(&module, "resource operatorAssignment ");
    assert!(
        assignment.contains(
            "[for (id, i) in managedInstanceIds: if (startsWith(toLower(id), groupPrefix)) {"
        ) && assignment.contains("scope: managedInstances[i]"),
        "{assignment}"
    );
    assert!(module.contains(
        "roleName: 'LRS autopilot operator (${teamName}, ${uniqueString(deploymentResourceGroupId, resourceGroup().id)})'"
    ));
    let role = block(&module, "resource operatorRole ");
    for permission in [
        "'Microsoft.Sql/managedInstances/read'",
        "'Microsoft.Sql/managedInstances/databases/*'",
        "'Microsoft.Insights/metrics/read'",
        "'Microsoft.Sql/managedInstances/databases/delete'",
    ] {
        assert!(role.contains(permission), "{role}");
    }
    let permissions = role
        .split_once("permissions: [")
        .expect("a permissions list")
        .1;
    assert_eq!(
        permissions.matches("'Microsoft.").count(),
        4,
        "no permission beyond these: {role}"
    );
}

/// Each target instance's identity reads only the containers whose folders may migrate to it: the default
/// instance those no container-wide entry sends elsewhere, each entry's instance its entry's container; an entry the
/// default's assignment already covers is marked so no assignment is declared twice; none in SAS mode.
#[test]
fn each_instance_identity_reads_only_its_own_containers() {
    let main = read(&infra().join("main.bicep"));
    assert!(main.contains(
        "var defaultInstanceContainers = [for c in backupContainers: contains(wholeContainerKeys, c) ? '' : c]"
    ));
    let call = block(&main, "module backupStorage ");
    assert!(
        call.contains("    managedInstanceContainers: defaultInstanceContainers\n")
            && call.contains("    targetReaders: [for (r, i) in readers: {")
            && call.contains(
                "principalId: useSas ? '' : (empty(r.principalId) ? readerInstances[i].identity.principalId : r.principalId)"
            ),
        "{call}"
    );
    let storage = read(&infra().join("modules/backup-storage.bicep"));
    let default = block(&storage, "resource instanceReadsBackups ");
    assert!(
        default.contains("contains(managedInstanceContainers, name)"),
        "{default}"
    );
    let targets = block(&storage, "resource targetInstancesReadBackups ");
    assert!(
        targets.contains("if (!r.covered && !empty(r.principalId))")
            && targets.contains("scope: readerContainers[i]")
            && targets.contains("storageBlobDataReader"),
        "{targets}"
    );
}
