//! `lrs-autopilot inspect <file>...`: what `RESTORE HEADERONLY` (and, with `--files`,
//! `FILELISTONLY`) would show, read from each file's head and tail only. A file that cannot be
//! read is reported and the rest go on; the exit status is 0 only when every file is a valid,
//! complete backup.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::backup::{BackupFile, BackupSet, DatabaseFile, FetchOutcome};
use crate::storage::file::read_backup_file;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backup files to read (.bak, .trn, ...).
    #[arg(required = true, value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Also list each backup set's database files (like RESTORE FILELISTONLY).
    #[arg(long)]
    pub files: bool,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One file's outcome, or why it could not be read at all.
struct Inspected {
    path: PathBuf,
    outcome: Result<FetchOutcome, std::io::Error>,
}

impl Inspected {
    /// The file is a valid backup written to its end.
    fn is_valid(&self) -> bool {
        matches!(&self.outcome, Ok(o) if o.result.as_ref().is_ok_and(|f| f.complete == Some(true)))
    }

    /// Why the file is not valid, worded for a DBA.
    fn error(&self) -> Option<String> {
        match &self.outcome {
            Err(e) => Some(format!("cannot read the file: {e}")),
            Ok(o) => match &o.result {
                Err(e) => Some(e.to_string()),
                Ok(f) if f.complete != Some(true) => Some(
                    "truncated or still being written: the end-of-backup blocks are missing".into(),
                ),
                Ok(_) => None,
            },
        }
    }

    fn file(&self) -> Option<&BackupFile> {
        self.outcome.as_ref().ok()?.result.as_ref().ok()
    }
}

/// Runs `inspect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let inspected: Vec<Inspected> = args
        .paths
        .iter()
        .map(|p| Inspected {
            path: p.clone(),
            outcome: read_backup_file(p),
        })
        .collect();
    if args.json {
        let doc = json!({ "files": inspected.iter().map(file_json).collect::<Vec<_>>() });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", table(&inspected, args.files));
    }
    let all_valid = inspected.iter().all(Inspected::is_valid);
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn date(d: Option<time::PrimitiveDateTime>) -> Value {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    d.and_then(|d| d.format(&f).ok())
        .map_or(Value::Null, Value::String)
}

fn opt<T: ToString>(v: Option<T>) -> Value {
    v.map_or(Value::Null, |v| Value::String(v.to_string()))
}

/// One file in the JSON document. The key names are a contract other tools read.
fn file_json(i: &Inspected) -> Value {
    let outcome = i.outcome.as_ref().ok();
    let file = i.file();
    let media = file.map(|f| &f.media);
    json!({
        "path": i.path.display().to_string(),
        "valid": i.is_valid(),
        "error": i.error(),
        "compressed": media.map(|m| m.compressed),
        "complete": file.and_then(|f| f.complete),
        "block_size": media.map(|m| m.block_size),
        "family_count": media.map(|m| m.family_count),
        "family_sequence": media.map(|m| m.family_sequence),
        "media_set_guid": media.map(|m| m.media_set_guid.hyphenated().to_string()),
        "media_family_id": media.map(|m| m.media_family_id),
        "has_media_password": media.map(|m| m.has_media_password),
        "bytes_read": outcome.map(|o| o.bytes_read),
        "file_size": outcome.map(|o| o.file_size),
        "set_count": file.and_then(|f| f.set_count),
        "multiple_backup_sets": file.map(BackupFile::has_multiple_sets),
        "backup_sets": file.map(|f| f.backup_sets.iter().map(set_json).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

fn set_json(s: &BackupSet) -> Value {
    json!({
        "position": s.position,
        "backup_type": s.backup_type.as_str(),
        "database_name": s.database_name,
        "server_name": s.server_name,
        "machine_name": (!s.from_tail_only).then_some(&s.machine_name),
        "backup_name": s.backup_name,
        "description": s.description,
        "user_name": s.user_name,
        "software_version": s.software_version.to_string(),
        "compatibility_level": s.compatibility_level,
        "database_version": s.database_version,
        "first_lsn": s.first_lsn.to_string(),
        "last_lsn": s.last_lsn.to_string(),
        "checkpoint_lsn": s.checkpoint_lsn.to_string(),
        "database_backup_lsn": opt(s.database_backup_lsn),
        "differential_base_lsn": opt(s.differential_base_lsn),
        "differential_base_guid": opt(s.differential_base_guid.map(|g| g.hyphenated())),
        // A set read from its closing copy alone has no SSET: its GUID is unknown, not nil.
        "backup_set_guid": (!s.from_tail_only).then(|| s.backup_set_guid.hyphenated().to_string()),
        "from_tail_only": s.from_tail_only,
        "has_checksums": s.has_checksums,
        "flags": s.flags,
        "tail_log_hint": s.tail_log_hint(),
        "collation": s.collation.name,
        "collation_tds": s.collation.tds,
        "recovery_model": s.recovery_model,
        "recovery_model_inferred": true,
        "backup_start": date(s.backup_start),
        "backup_finish": date(s.backup_finish),
        "backup_size": s.backup_size,
        "compressed_backup_size": s.compressed_backup_size,
        "files": s.files.iter().map(db_file_json).collect::<Vec<_>>(),
    })
}

fn db_file_json(f: &DatabaseFile) -> Value {
    json!({
        "logical_name": f.logical_name,
        "physical_name": f.physical_name,
        "type": f.file_type.to_string(),
        "filegroup": f.filegroup,
        "file_id": f.file_id,
        "size": f.size,
        "max_size": f.max_size,
    })
}

/// Lays rows out in columns: the first row is the header.
fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(indent);
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn text_date(d: Option<time::PrimitiveDateTime>) -> String {
    match date(d) {
        Value::String(s) => s.replace('T', " "),
        _ => "-".into(),
    }
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// The RESTORE HEADERONLY-like table, one row per backup set, each file's status above its rows.
fn table(inspected: &[Inspected], with_files: bool) -> String {
    let mut out = String::new();
    for i in inspected {
        out.push_str(&file_line(&i.path, i));
        let Some(file) = i.file() else {
            continue;
        };
        let mut rows = vec![
            [
                "Position",
                "Type",
                "Database",
                "Server",
                "Machine",
                "Version",
                "Compat",
                "FirstLSN",
                "LastLSN",
                "CheckpointLSN",
                "DatabaseBackupLSN",
                "DiffBaseLSN",
                "DiffBaseGUID",
                "BackupSetGUID",
                "Start",
                "Finish",
                "Size",
                "Checksums",
                "Collation",
                "RecoveryModel(inferred)",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for s in &file.backup_sets {
            rows.push(vec![
                s.position.to_string(),
                s.backup_type.to_string(),
                s.database_name.clone(),
                s.server_name.clone(),
                if s.from_tail_only {
                    "-".into()
                } else {
                    s.machine_name.clone()
                },
                s.software_version.to_string(),
                s.compatibility_level.to_string(),
                s.first_lsn.to_string(),
                s.last_lsn.to_string(),
                s.checkpoint_lsn.to_string(),
                dash(s.database_backup_lsn),
                dash(s.differential_base_lsn),
                dash(s.differential_base_guid),
                if s.from_tail_only {
                    "-".into()
                } else {
                    s.backup_set_guid.to_string()
                },
                text_date(s.backup_start),
                text_date(s.backup_finish),
                dash(s.backup_size),
                if s.has_checksums { "yes" } else { "no" }.into(),
                s.collation
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("tds:{}", s.collation.tds)),
                s.recovery_model
                    .and_then(|m| serde_json::to_value(m).ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&columns(&rows, "  "));
        if let Some(note) = sets_note(file) {
            out.push_str(&note);
        }
        if with_files {
            for s in &file.backup_sets {
                let mut rows = vec![
                    [
                        "LogicalName",
                        "PhysicalName",
                        "Type",
                        "FileGroup",
                        "FileId",
                        "Size",
                        "MaxSize",
                    ]
                    .map(String::from)
                    .to_vec(),
                ];
                for f in &s.files {
                    rows.push(vec![
                        f.logical_name.clone(),
                        f.physical_name.clone(),
                        f.file_type.to_string(),
                        dash(f.filegroup.as_deref()),
                        f.file_id.to_string(),
                        f.size.to_string(),
                        f.max_size.to_string(),
                    ]);
                }
                out.push_str(&format!("  files of set {}:\n", s.position));
                out.push_str(&columns(&rows, "    "));
            }
        }
    }
    out
}

/// Under the table of a file with several backup sets: how many, which are shown, and what to do.
fn sets_note(file: &BackupFile) -> Option<String> {
    if !file.has_multiple_sets() {
        return None;
    }
    let count = file.known_set_count();
    let shown = file.backup_sets.len();
    let hidden = if shown < count {
        format!(
            "; {shown} shown (those whose header is in the first bytes read, and the last one \
             from the end of the file); sets not shown lie between them"
        )
    } else {
        String::new()
    };
    let tail_only = if file.backup_sets.iter().any(|s| s.from_tail_only) {
        "; the last set is read from its closing header copy, which has no backup set GUID or \
         machine name"
    } else {
        ""
    };
    Some(format!(
        "  multiple_backup_sets (blocking): this file holds {count} backup sets (appended WITH \
         NOINIT){hidden}{tail_only}. LRS expects one backup set per file: take each backup into \
         its own file (WITH INIT or WITH FORMAT, or a new file name per backup).\n"
    ))
}

/// `path: valid|INVALID (...)` with the media facts.
fn file_line(path: &Path, i: &Inspected) -> String {
    let status = match i.error() {
        None => "valid".to_string(),
        Some(e) => format!("INVALID: {e}"),
    };
    let media = i.file().map(|f| {
        let m = &f.media;
        let mut parts = Vec::new();
        if m.compressed {
            parts.push("compressed".to_string());
        }
        parts.push(
            if f.complete == Some(true) {
                "complete"
            } else {
                "incomplete"
            }
            .into(),
        );
        parts.push(format!("block {} B", m.block_size));
        parts.push(format!("family {}/{}", m.family_sequence, m.family_count));
        parts.push(format!("media set {}", m.media_set_guid));
        if m.has_media_password {
            parts.push("media password".into());
        }
        format!(" [{}]", parts.join(", "))
    });
    let read = i
        .outcome
        .as_ref()
        .ok()
        .map(|o| format!(" ({} of {} bytes read)", o.bytes_read, o.file_size))
        .unwrap_or_default();
    format!(
        "{}: {status}{}{read}\n",
        path.display(),
        media.unwrap_or_default()
    )
}
