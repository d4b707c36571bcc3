//! "Will LRS accept it?": checks a folder's restore plan and backup facts against the target
//! managed instance before LRS starts, so a refusal that LRS would report hours later (or as a
//! generic `SqlRestoreError`) is said the moment the first file lands, or before anything is
//! uploaded (`check`). Pure: the shells read the instance ([`InstanceFacts`]) and pass it in.
//!
//! Sources for the rules (each cited where it is applied):
//! - the REST spec's documented LRS errors (`../shared/specs/azure-sql-2025-01-01/ManagedDatabases.json`):
//!   `IncompatiblePhysicalLayoutWrongNumberOfLogFiles` ("Multiple log files are not supported"),
//!   `XtpInitializedDuringRestore` ("Memory-optimized filegroup must be empty in order to be
//!   restored on General Purpose tier"), `ManagedInstanceStorageLimitHit`,
//!   `DatabaseNumberLimitReached`, `ManagedDatabaseNameInUse`;
//! - `ManagedInstances.json`: `databaseFormat` (SQLServer2022, SQLServer2025, AlwaysUpToDate),
//!   `storageSizeInGB`, `isGeneralPurposeV2`, `maintenanceConfigurationId`.

mod facts;
#[cfg(test)]
mod tests;

pub use facts::{InstanceDatabase, InstanceFacts, Tier, UpdatePolicy};

use crate::backup::{BackupSet, BackupType};
use crate::chain::{FileRead, Finding, FindingCode, FolderFile, Plan, Severity};

/// Storage use above this share of free storage is a warning.
const STORAGE_WARNING_SHARE: f64 = 0.8;

/// What the preflight is asked.
#[derive(Debug, Clone, Copy)]
pub struct PreflightInput<'a> {
    /// The folder's plan.
    pub plan: &'a Plan,
    /// The folder's files, with what the reader found.
    pub files: &'a [FolderFile],
    /// The target database name on the instance.
    pub target: &'a str,
    /// What is known about the instance.
    pub instance: &'a InstanceFacts,
}

/// Every preflight finding for a folder, blocking first. Checks whose facts are unknown are left
/// out, except where the backups alone show a risk (then a warning says what to verify).
pub fn check(input: PreflightInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let instance = input.instance;
    if let Some((file, base)) = base_set(input.plan, input.files) {
        type_s_files(file, base, instance, &mut out);
        log_files(file, base, &mut out);
        storage(file, base, instance, &mut out);
    }
    source_version(input.plan, input.files, instance, &mut out);
    name_and_limit(input.target, instance, &mut out);
    maintenance(instance, &mut out);
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// Whether any finding blocks the start.
pub fn blocks(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Blocking)
}

/// The plan's base full backup: its first stripe's name and its set header (which carries the
/// file list).
fn base_set<'a>(plan: &Plan, files: &'a [FolderFile]) -> Option<(&'a str, &'a BackupSet)> {
    let step = plan
        .steps
        .iter()
        .find(|s| s.backup_type == BackupType::Full)?;
    let first = step.files.first()?;
    let file = files.iter().find(|f| &f.name == first)?;
    match &file.read {
        FileRead::Read { facts } => facts
            .backup_sets
            .iter()
            .find(|s| s.backup_set_guid == step.backup_set_guid)
            .or_else(|| facts.first_set())
            .map(|s| (file.name.as_str(), s)),
        FileRead::Failed { .. } => None,
    }
}

fn finding(code: FindingCode, severity: Severity, file: &str, message: String) -> Finding {
    Finding {
        code,
        severity,
        files: if file.is_empty() {
            Vec::new()
        } else {
            vec![file.to_owned()]
        },
        message,
    }
}

/// Type `S` files: FILESTREAM/FileTable containers and memory-optimized (In-Memory OLTP)
/// containers look the same in the file list, so the message names both. FILESTREAM is refused on
/// every tier; memory-optimized data needs Business Critical (`XtpInitializedDuringRestore`).
fn type_s_files(file: &str, set: &BackupSet, instance: &InstanceFacts, out: &mut Vec<Finding>) {
    let containers: Vec<String> = set
        .files
        .iter()
        .filter(|f| f.file_type.eq_ignore_ascii_case(&'S'))
        .map(|f| match &f.filegroup {
            Some(fg) => format!("{} (filegroup {fg})", f.logical_name),
            None => f.logical_name.clone(),
        })
        .collect();
    if containers.is_empty() {
        return;
    }
    let list = containers.join(", ");
    let both = format!(
        "the full backup {file} holds {} of type S ({list}); the file list cannot tell a \
         FILESTREAM/FileTable container from a memory-optimized (In-Memory OLTP) one",
        if containers.len() == 1 {
            "a container"
        } else {
            "containers"
        }
    );
    const FILESTREAM_TODO: &str = "if it is FILESTREAM or FileTable data, SQL Managed Instance \
        does not support it on any tier: move that data out of the database (for example to blob \
        storage), remove the FILESTREAM filegroup, and take a new full backup";
    match instance.tier {
        Some(tier) if !tier.supports_in_memory_oltp() => out.push(finding(
            FindingCode::InMemoryOltpNeedsBusinessCritical,
            Severity::Blocking,
            file,
            format!(
                "{both}. Either way LRS on this {tier} instance will refuse it: if it is a \
                 memory-optimized filegroup, restore to a Business Critical instance (LRS reports \
                 XtpInitializedDuringRestore on General Purpose) or empty and remove the \
                 filegroup at the source; {FILESTREAM_TODO}"
            ),
        )),
        Some(_) => out.push(finding(
            FindingCode::FilestreamUnsupported,
            Severity::Warning,
            file,
            format!(
                "{both}. A memory-optimized filegroup restores on Business Critical; {FILESTREAM_TODO}. \
                 Check at the source with SELECT type_desc FROM sys.filegroups"
            ),
        )),
        None => out.push(finding(
            FindingCode::FilestreamUnsupported,
            Severity::Warning,
            file,
            format!(
                "{both}. A memory-optimized filegroup needs a Business Critical instance; \
                 {FILESTREAM_TODO}. Check at the source with SELECT type_desc FROM \
                 sys.filegroups, and give --tier to check against the target"
            ),
        )),
    }
}

/// More than one log file: the spec documents `IncompatiblePhysicalLayoutWrongNumberOfLogFiles`
/// ("Database backup contains incompatible physical layout. Multiple log files are not
/// supported.") for PUT database and restoreDetails, so it blocks.
fn log_files(file: &str, set: &BackupSet, out: &mut Vec<Finding>) {
    let logs: Vec<&str> = set
        .files
        .iter()
        .filter(|f| f.file_type.eq_ignore_ascii_case(&'L'))
        .map(|f| f.logical_name.as_str())
        .collect();
    if logs.len() > 1 {
        out.push(finding(
            FindingCode::MultipleLogFiles,
            Severity::Blocking,
            file,
            format!(
                "the full backup {file} has {} log files ({}): LRS refuses more than one \
                 (IncompatiblePhysicalLayoutWrongNumberOfLogFiles). At the source, empty and \
                 remove the extra log files (DBCC SHRINKFILE (name, EMPTYFILE), then ALTER \
                 DATABASE ... REMOVE FILE), then take a new full backup WITH CHECKSUM",
                logs.len(),
                logs.join(", ")
            ),
        ));
    }
}

fn mb(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// `700 MB`, `12.5 GB`.
fn gb(mb: u64) -> String {
    if mb < 1024 {
        format!("{mb} MB")
    } else {
        format!("{:.1} GB", mb as f64 / 1024.0)
    }
}

/// The database's files (sum of the file list's sizes: what the restore allocates) against free
/// storage. Without the used figure, only the whole reserved storage can be compared.
fn storage(file: &str, set: &BackupSet, instance: &InstanceFacts, out: &mut Vec<Finding>) {
    let need = mb(set.files.iter().map(|f| f.size).sum());
    if need == 0 {
        return;
    }
    let label = instance.label();
    let grow = "Raise the instance's storage (storageSizeInGB, in steps of 32 GB), free space by \
                dropping databases you no longer need, or shrink the source's files and take a \
                new full backup";
    if let Some(free) = instance.free_storage_mb() {
        if need > free {
            out.push(finding(
                FindingCode::InsufficientStorage,
                Severity::Blocking,
                file,
                format!(
                    "the database's files need {} (the sum of the file list in {file}) but \
                     {label} has {} free: LRS would stop with ManagedInstanceStorageLimitHit. \
                     {grow}",
                    gb(need),
                    gb(free)
                ),
            ));
        } else if need as f64 > free as f64 * STORAGE_WARNING_SHARE {
            out.push(finding(
                FindingCode::InsufficientStorage,
                Severity::Warning,
                file,
                format!(
                    "the database's files need {} of the {} free on {label} ({:.0} %): the \
                     log backups still to come grow it further. {grow}",
                    gb(need),
                    gb(free),
                    need as f64 * 100.0 / free as f64
                ),
            ));
        }
    } else if let Some(size) = instance.storage_size_mb {
        if need > size {
            out.push(finding(
                FindingCode::InsufficientStorage,
                Severity::Blocking,
                file,
                format!(
                    "the database's files need {} (the sum of the file list in {file}), more than \
                     all of {label}'s {} of storage. {grow}",
                    gb(need),
                    gb(size)
                ),
            ));
        }
    }
}

/// The newest source version among the planned sets against the update policy. A change of
/// policy is one-way: databases on the instance are upgraded to the newer format and can no
/// longer be restored to or replicated with the older SQL Server.
fn source_version(
    plan: &Plan,
    files: &[FolderFile],
    instance: &InstanceFacts,
    out: &mut Vec<Finding>,
) {
    let planned: Vec<&str> = plan
        .steps
        .iter()
        .flat_map(|s| s.files.iter().map(String::as_str))
        .collect();
    let newest = files
        .iter()
        .filter(|f| planned.contains(&f.name.as_str()))
        .filter_map(|f| match &f.read {
            FileRead::Read { facts } => facts
                .backup_sets
                .iter()
                .map(|s| (s.software_version, f.name.as_str()))
                .max(),
            FileRead::Failed { .. } => None,
        })
        .max();
    let Some((version, file)) = newest else {
        return;
    };
    let release = match version.major {
        17 => "SQL Server 2025".to_owned(),
        16 => "SQL Server 2022".to_owned(),
        m if m > 17 => format!("a SQL Server newer than 2025 (major version {m})"),
        _ => return,
    };
    let accepting = if version.major <= UpdatePolicy::SQLServer2025.max_source_major() {
        "SQLServer2025 or AlwaysUpToDate"
    } else {
        "AlwaysUpToDate"
    };
    let one_way = "the change is one-way: once the instance is on the newer format, its \
                   databases cannot go back to an older SQL Server (no backup restore to it, no \
                   link to it)";
    match instance.update_policy {
        Some(policy) if version.major > policy.max_source_major() => out.push(finding(
            FindingCode::SourceNewerThanInstance,
            Severity::Blocking,
            file,
            format!(
                "{file} was written by {release} ({version}), but {} is on the {policy} update \
                 policy, which restores nothing newer than SQL Server {}: set the instance's \
                 update policy (databaseFormat) to {accepting}, then `resume`; {one_way}",
                instance.label(),
                if policy == UpdatePolicy::SQLServer2022 {
                    "2022"
                } else {
                    "2025"
                }
            ),
        )),
        None if version.major >= 17 => out.push(finding(
            FindingCode::SourceNewerThanInstance,
            Severity::Warning,
            file,
            format!(
                "{file} was written by {release} ({version}): only an instance on the \
                 {accepting} update policy restores it. Check the target's databaseFormat \
                 (give --update-policy to check offline); if it must change, {one_way}"
            ),
        )),
        _ => {}
    }
}

/// The target name on the instance, and the tier's database limit.
fn name_and_limit(target: &str, instance: &InstanceFacts, out: &mut Vec<Finding>) {
    let Some(databases) = &instance.databases else {
        return;
    };
    let existing = databases
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(target));
    if let Some(d) = existing {
        if !d.lrs_restore {
            out.push(finding(
                FindingCode::NameTakenOnInstance,
                Severity::Blocking,
                "",
                format!(
                    "{} already has a database named {}{} that is not an LRS restore: the \
                     pipeline will not start LRS over it. Map the folder to another name with \
                     LRS_DATABASE_NAME_MAP, or, if that database is a leftover you no longer \
                     need, drop it yourself; then `resume`",
                    instance.label(),
                    d.name,
                    d.status
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                ),
            ));
        }
        return;
    }
    if let Some(tier) = instance.tier {
        let limit = tier.database_limit();
        if databases.len() >= limit {
            out.push(finding(
                FindingCode::InstanceDatabaseLimit,
                Severity::Blocking,
                "",
                format!(
                    "{} holds {} databases, the most a {tier} instance can (limit {limit}): LRS \
                     would fail with DatabaseNumberLimitReached. Drop databases you no longer \
                     need, move some to another instance{}, then `resume`",
                    instance.label(),
                    databases.len(),
                    if tier == Tier::GeneralPurpose {
                        ", or move the instance to Next-gen General Purpose (500)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
}

/// The maintenance window: information, so the cutover is planned outside it.
fn maintenance(instance: &InstanceFacts, out: &mut Vec<Finding>) {
    let Some(id) = instance.maintenance_configuration_id.as_deref() else {
        return;
    };
    let name = id.rsplit('/').next().unwrap_or(id).trim();
    if name.is_empty() {
        return;
    }
    let upper = name.to_ascii_uppercase();
    let window = if upper == "SQL_DEFAULT" {
        "the system default window (5 PM to 8 AM local time of the region, any day)".to_owned()
    } else if upper.ends_with("_MI_1") {
        format!("{name} (weekdays, Monday to Thursday, 10 PM to 6 AM region time)")
    } else if upper.ends_with("_MI_2") {
        format!("{name} (weekends, Friday to Sunday, 10 PM to 6 AM region time)")
    } else {
        name.to_owned()
    };
    out.push(finding(
        FindingCode::MaintenanceWindow,
        Severity::Info,
        "",
        format!(
            "{} has the maintenance window {window}: planned maintenance may fail over the \
             instance and restart a running restore. Plan the cutover (the tail-log backup and \
             completion) outside it",
            instance.label()
        ),
    ));
}
