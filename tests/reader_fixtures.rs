//! Every real backup under the shared fixtures folder decodes to the facts in its `EXPECTED.json`,
//! read the way production reads it (head and tail ranges through `backup::Fetch`), and the log
//! chains in the fixture folders link.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use lrs_autopilot::backup::{self, BackupFile, BackupType, Error, Lsn, RecoveryModel, Tail};
use lrs_autopilot::storage::file::read_backup_file;
use serde_json::Value;

fn expected(dir: &Path) -> BTreeMap<String, Value> {
    let text =
        std::fs::read_to_string(dir.join("EXPECTED.json")).expect("EXPECTED.json is readable");
    serde_json::from_str(&text).expect("EXPECTED.json is JSON")
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn lsn(v: &Value) -> Option<Lsn> {
    v.as_str()
        .map(|s| s.parse().expect("EXPECTED LSNs are decimal"))
}

fn type_of(v: &Value) -> BackupType {
    match v.as_str() {
        Some("DATABASE(1)") => BackupType::Full,
        Some("DIFFERENTIAL(5)") => BackupType::Differential,
        Some("LOG(2)") => BackupType::Log,
        other => panic!("unexpected backup_type {other:?} in EXPECTED.json"),
    }
}

fn date(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn fmt_date(d: Option<time::PrimitiveDateTime>) -> Option<String> {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    d.map(|d| d.format(&f).expect("dates format"))
}

/// Compares one decoded file with its EXPECTED.json entry, field by field; returns mismatches.
fn compare(name: &str, got: &BackupFile, want: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |field: &str, ok: bool, got: String, want: String| {
        if !ok {
            bad.push(format!("{name}: {field}: got {got}, want {want}"));
        }
    };
    let m = &got.media;
    check(
        "compressed",
        Some(m.compressed) == want["compressed"].as_bool(),
        m.compressed.to_string(),
        want["compressed"].to_string(),
    );
    check(
        "complete",
        got.complete == want["complete"].as_bool(),
        format!("{:?}", got.complete),
        want["complete"].to_string(),
    );
    check(
        "family_count",
        Some(u64::from(m.family_count)) == want["family_count"].as_u64(),
        m.family_count.to_string(),
        want["family_count"].to_string(),
    );
    check(
        "family_seq",
        Some(u64::from(m.family_sequence)) == want["family_seq"].as_u64(),
        m.family_sequence.to_string(),
        want["family_seq"].to_string(),
    );
    check(
        "media_set_guid",
        Some(m.media_set_guid.to_string()) == opt_str(&want["media_set_guid"]),
        m.media_set_guid.to_string(),
        want["media_set_guid"].to_string(),
    );
    let sets = want["sets"].as_array().cloned().unwrap_or_default();
    check(
        "set count",
        got.backup_sets.len() == sets.len(),
        got.backup_sets.len().to_string(),
        sets.len().to_string(),
    );
    if let Some(first) = got.first_set() {
        check(
            "backup_set_guid",
            Some(first.backup_set_guid.to_string()) == opt_str(&want["backup_set_guid"]),
            first.backup_set_guid.to_string(),
            want["backup_set_guid"].to_string(),
        );
        check(
            "machine_name",
            Some(first.machine_name.clone()) == opt_str(&want["machine_name"]),
            first.machine_name.clone(),
            want["machine_name"].to_string(),
        );
    }
    for (s, w) in got.backup_sets.iter().zip(&sets) {
        check(
            "position",
            Some(u64::from(s.position)) == w["position"].as_u64(),
            s.position.to_string(),
            w["position"].to_string(),
        );
        check(
            "backup_type",
            s.backup_type == type_of(&w["backup_type"]),
            s.backup_type.to_string(),
            w["backup_type"].to_string(),
        );
        check(
            "database_name",
            Some(s.database_name.clone()) == opt_str(&w["database_name"]),
            s.database_name.clone(),
            w["database_name"].to_string(),
        );
        check(
            "server_name",
            Some(s.server_name.clone()) == opt_str(&w["server_name"]),
            s.server_name.clone(),
            w["server_name"].to_string(),
        );
        check(
            "software_version",
            Some(s.software_version.to_string()) == opt_str(&w["software_version"]),
            s.software_version.to_string(),
            w["software_version"].to_string(),
        );
        check(
            "compat_level",
            Some(u64::from(s.compatibility_level)) == w["compat_level"].as_u64(),
            s.compatibility_level.to_string(),
            w["compat_level"].to_string(),
        );
        check(
            "first_lsn",
            Some(s.first_lsn) == lsn(&w["first_lsn"]),
            s.first_lsn.to_string(),
            w["first_lsn"].to_string(),
        );
        check(
            "last_lsn",
            Some(s.last_lsn) == lsn(&w["last_lsn"]),
            s.last_lsn.to_string(),
            w["last_lsn"].to_string(),
        );
        check(
            "checkpoint_lsn",
            Some(s.checkpoint_lsn) == lsn(&w["checkpoint_lsn"]),
            s.checkpoint_lsn.to_string(),
            w["checkpoint_lsn"].to_string(),
        );
        check(
            "database_backup_lsn",
            s.database_backup_lsn == lsn(&w["database_backup_lsn"]),
            format!("{:?}", s.database_backup_lsn.map(|l| l.to_string())),
            w["database_backup_lsn"].to_string(),
        );
        check(
            "diff_base_lsn",
            s.differential_base_lsn == lsn(&w["diff_base_lsn"]),
            format!("{:?}", s.differential_base_lsn.map(|l| l.to_string())),
            w["diff_base_lsn"].to_string(),
        );
        check(
            "diff_base_guid",
            s.differential_base_guid.map(|g| g.to_string()) == opt_str(&w["diff_base_guid"]),
            format!("{:?}", s.differential_base_guid),
            w["diff_base_guid"].to_string(),
        );
        check(
            "flag_checksums",
            Some(s.has_checksums) == w["flag_checksums"].as_bool(),
            s.has_checksums.to_string(),
            w["flag_checksums"].to_string(),
        );
        check(
            "collation_tds",
            Some(s.collation.tds.clone()) == opt_str(&w["collation_tds"]),
            s.collation.tds.clone(),
            w["collation_tds"].to_string(),
        );
        let model = match w["recovery_model_guess"].as_str() {
            Some("FULL") => Some(RecoveryModel::Full),
            Some("SIMPLE") => Some(RecoveryModel::Simple),
            Some("BULK_LOGGED") => Some(RecoveryModel::BulkLogged),
            _ => None,
        };
        check(
            "recovery_model_guess",
            s.recovery_model == model,
            format!("{:?}", s.recovery_model),
            w["recovery_model_guess"].to_string(),
        );
        check(
            "backup_start",
            fmt_date(s.backup_start) == date(&w["backup_start"]),
            format!("{:?}", fmt_date(s.backup_start)),
            w["backup_start"].to_string(),
        );
        check(
            "backup_finish",
            fmt_date(s.backup_finish) == date(&w["backup_finish"]),
            format!("{:?}", fmt_date(s.backup_finish)),
            w["backup_finish"].to_string(),
        );
        check(
            "backup_size",
            s.backup_size == w["backup_size"].as_u64(),
            format!("{:?}", s.backup_size),
            w["backup_size"].to_string(),
        );
        // Facts EXPECTED.json does not list, but every real set has.
        check(
            "files",
            !s.files.is_empty() && s.files.iter().any(|f| f.file_type == 'L'),
            format!("{} files", s.files.len()),
            "a file list with a log file".into(),
        );
        check(
            "collation name",
            s.collation.name.is_some(),
            "none".into(),
            "a name".into(),
        );
    }
    bad
}

#[test]
fn every_fixture_matches_expected_json() {
    let dir = fixtures_or_skip!();
    let expected = expected(&dir);
    assert!(
        expected.len() > 100,
        "EXPECTED.json lists {} files",
        expected.len()
    );
    let mut bad = Vec::new();
    for (name, want) in &expected {
        let path = dir.join(name);
        let outcome = read_backup_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            outcome.file_size,
            want["size"].as_u64().unwrap_or_default(),
            "{name}: size"
        );
        if want["is_sql_backup"].as_bool() == Some(false) {
            match &outcome.result {
                Err(Error::NotABackup { .. }) => {}
                other => bad.push(format!("{name}: expected NotABackup, got {other:?}")),
            }
            continue;
        }
        match &outcome.result {
            Ok(file) => {
                bad.extend(compare(name, file, want));
                // The set numbers (SSET +62 in the head, ESET +78 in the tail) agree: one set,
                // numbered 1, so the file is not taken for an appended one.
                let sets = want["sets"].as_array().map_or(0, Vec::len);
                if file.set_count != u16::try_from(sets).ok() || file.has_multiple_sets() {
                    bad.push(format!(
                        "{name}: set count {:?}, want {sets}",
                        file.set_count
                    ));
                }
            }
            Err(e) => bad.push(format!("{name}: {e}")),
        }
        assert!(
            outcome.bytes_read <= 128 * 1024,
            "{name}: read {} bytes",
            outcome.bytes_read
        );
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn head_alone_gives_the_same_facts_without_completeness_or_final_sizes() {
    let dir = fixtures_or_skip!();
    for (name, want) in expected(&dir) {
        if want["is_sql_backup"].as_bool() != Some(true) {
            continue;
        }
        let bytes = std::fs::read(dir.join(&name)).expect("fixture is readable");
        let head = bytes
            .get(..backup::HEAD_LEN.min(bytes.len()))
            .unwrap_or(&bytes);
        let file = backup::read(head, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file.complete, None, "{name}");
        let set = file.first_set().expect("a set");
        // Only a file whose closing blocks lie in the head has its finish date without the tail.
        let closed_in_head = bytes.len() <= backup::HEAD_LEN;
        assert_eq!(set.backup_finish.is_some(), closed_in_head, "{name}");
        assert_eq!(set.backup_size.is_some(), closed_in_head, "{name}");
        assert_eq!(
            Some(set.backup_set_guid.to_string()),
            opt_str(&want["backup_set_guid"]),
            "{name}"
        );
        // With the tail, the same file is complete.
        let tail_len = backup::TAIL_LEN.min(bytes.len());
        let tail = Tail {
            bytes: bytes.get(bytes.len() - tail_len..).unwrap_or(&bytes),
            file_size: bytes.len() as u64,
        };
        let full = backup::read(head, Some(tail)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(full.complete, Some(true), "{name}");
    }
}

#[test]
fn special_media_facts_are_read() {
    let dir = fixtures_or_skip!();
    let read = |name: &str| {
        read_backup_file(&dir.join(name))
            .expect("readable")
            .result
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let northwind = read("misc/CConocimientos__Northwind/Northwind.bak");
    assert_eq!(northwind.media.block_size, 4096);
    assert_eq!(
        northwind.backup_sets[0].collation.name.as_deref(),
        Some("Modern_Spanish_CI_AS")
    );
    let plain = read("appveyor-lab/DoubleDiffing/difftest-full.bak");
    assert_eq!(plain.media.block_size, 512);
    assert!(!plain.media.has_media_password);
    let full = &plain.backup_sets[0];
    assert_eq!(full.collation.name.as_deref(), Some("Latin1_General_CI_AS"));
    let data = full
        .files
        .iter()
        .find(|f| f.file_type == 'D')
        .expect("a data file");
    assert_eq!(data.filegroup.as_deref(), Some("PRIMARY"));
    assert!(
        data.physical_name.to_ascii_lowercase().ends_with(".mdf"),
        "{}",
        data.physical_name
    );
    assert!(data.size > 0 && data.size % 8192 == 0);
    let log = full
        .files
        .iter()
        .find(|f| f.file_type == 'L')
        .expect("a log file");
    assert_eq!(log.filegroup, None);
    let password = read("appveyor-lab/backuppassword/passwd.bak");
    assert!(password.media.has_media_password);
    let sql_collation = read("misc/xandelima__MVCNorthwind/Northwind.bak");
    assert_eq!(
        sql_collation.backup_sets[0].collation.name.as_deref(),
        Some("SQL_Latin1_General_CP1_CI_AS")
    );
    let compressed = read("appveyor-lab/singlerestore/SharePoint_Config.bak");
    assert!(compressed.media.compressed);
    let set = &compressed.backup_sets[0];
    assert!(
        set.compressed_backup_size
            .is_some_and(|c| c < set.backup_size.unwrap_or(0))
    );
}

#[test]
fn stripes_of_one_media_set_share_its_guid_and_number_their_families() {
    let dir = fixtures_or_skip!();
    let names = [
        "misc/cake-contrib__Cake.SqlServer/src/Tests/TestData/multiFilesBackup1.bak",
        "misc/cake-contrib__Cake.SqlServer/src/Tests/TestData/multiFilesBackup2.bak",
        "misc/cake-contrib__Cake.SqlServer/src/Tests/TestData/multiFilesBackup3.bak",
    ];
    let files: Vec<BackupFile> = names
        .iter()
        .map(|n| {
            read_backup_file(&dir.join(n))
                .expect("readable")
                .result
                .expect("valid")
        })
        .collect();
    let guid = files[0].media.media_set_guid;
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.media.media_set_guid, guid);
        assert_eq!(f.media.family_count, 3);
        assert_eq!(usize::from(f.media.family_sequence), i + 1);
        assert_eq!(
            f.backup_sets[0].backup_set_guid,
            files[0].backup_sets[0].backup_set_guid
        );
    }
    assert_ne!(
        files[0].media.media_family_id,
        files[1].media.media_family_id
    );
}

/// Each folder's log backups, ordered by FirstLSN, link: each FirstLSN is the previous LastLSN.
#[test]
fn log_chains_in_fixture_folders_link() {
    let dir = fixtures_or_skip!();
    let mut by_folder: BTreeMap<(String, String), Vec<(Lsn, Lsn)>> = BTreeMap::new();
    for (name, want) in expected(&dir) {
        if want["is_sql_backup"].as_bool() != Some(true)
            || name.ends_with(char::is_numeric) && name.contains(".trn.")
        {
            continue;
        }
        let file = read_backup_file(&dir.join(&name))
            .expect("readable")
            .result
            .expect("valid");
        // Stripes carry the same set: take family 1 only.
        if file.media.family_sequence != 1 {
            continue;
        }
        for set in file
            .backup_sets
            .iter()
            .filter(|s| s.backup_type == BackupType::Log)
        {
            let folder = Path::new(&name)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            by_folder
                .entry((folder, set.database_name.clone()))
                .or_default()
                .push((set.first_lsn, set.last_lsn));
        }
    }
    let mut linked = 0;
    for ((folder, db), mut logs) in by_folder {
        logs.sort();
        logs.dedup();
        let mut breaks = 0;
        for pair in logs.windows(2) {
            if pair[1].0 == pair[0].1 {
                linked += 1;
            } else {
                breaks += 1;
            }
        }
        // Stripe1 holds three series of the same database taken at different times (the
        // RestoreTimeStripe_*, restoretime_* and restoretime_21.trn.* copies): three chains.
        let chains_expected = if folder.ends_with("RestoreTimeStripe/Stripe1") {
            3
        } else {
            1
        };
        assert_eq!(breaks + 1, chains_expected, "{folder} {db}: {logs:?}");
    }
    assert!(linked >= 25, "only {linked} links found");
}

/// Drives a `Fetch` over in-memory bytes, as production drives it over a file or a blob.
fn fetch(bytes: &[u8]) -> backup::FetchOutcome {
    let mut fetch = backup::Fetch::new(bytes.len() as u64);
    while let Some(r) = fetch.poll_read() {
        let start = usize::try_from(r.offset).expect("offset fits");
        let end = (start + r.len).min(bytes.len());
        fetch.handle_read(r, &bytes[start..end]);
    }
    fetch.finish()
}

/// A full backup with a log backup appended WITH NOINIT, made from the two real files by
/// renumbering the log's set (no writer involved): the reader lists the full from the head and
/// the log from its closing copy in the tail, each with the facts EXPECTED.json gives for the
/// file it came from, and counts two sets, reading no more than a head and a tail.
#[test]
fn a_full_and_a_log_in_one_file_are_both_listed_from_real_bytes() {
    let dir = fixtures_or_skip!();
    let expected = expected(&dir);
    let bytes = support::two_sets::full_then_log(&dir);
    let outcome = fetch(&bytes);
    assert_eq!(
        outcome.bytes_read,
        (backup::HEAD_LEN + backup::TAIL_LEN) as u64
    );
    let file = outcome.result.expect("a two-set file reads");
    assert_eq!(file.complete, Some(true));
    assert_eq!(file.set_count, Some(2));
    assert!(file.has_multiple_sets());
    assert_eq!(file.backup_sets.len(), 2);
    // Set 1: the full backup, from the head (its closing copy lies in neither read).
    let full = &file.backup_sets[0];
    let want_full = &expected[support::two_sets::FULL]["sets"][0];
    assert_eq!(full.position, 1);
    assert!(!full.from_tail_only);
    assert_eq!(full.backup_type, BackupType::Full);
    assert_eq!(Some(full.first_lsn), lsn(&want_full["first_lsn"]));
    assert_eq!(
        Some(full.backup_set_guid.to_string()),
        opt_str(&expected[support::two_sets::FULL]["backup_set_guid"])
    );
    assert_eq!(full.backup_finish, None);
    // Set 2: the log backup, every fact its closing copy holds.
    let log = &file.backup_sets[1];
    let want_log = &expected[support::two_sets::LOG]["sets"][0];
    assert_eq!(log.position, 2);
    assert!(log.from_tail_only);
    assert_eq!(log.backup_type, type_of(&want_log["backup_type"]));
    assert_eq!(
        Some(log.database_name.clone()),
        opt_str(&want_log["database_name"])
    );
    assert_eq!(
        Some(log.server_name.clone()),
        opt_str(&want_log["server_name"])
    );
    assert_eq!(Some(log.first_lsn), lsn(&want_log["first_lsn"]));
    assert_eq!(Some(log.last_lsn), lsn(&want_log["last_lsn"]));
    assert_eq!(Some(log.checkpoint_lsn), lsn(&want_log["checkpoint_lsn"]));
    assert_eq!(
        log.database_backup_lsn,
        lsn(&want_log["database_backup_lsn"])
    );
    assert_eq!(fmt_date(log.backup_start), date(&want_log["backup_start"]));
    assert_eq!(
        fmt_date(log.backup_finish),
        date(&want_log["backup_finish"])
    );
    assert_eq!(log.backup_size, want_log["backup_size"].as_u64());
    assert!(log.files.iter().any(|f| f.file_type == 'L'));
    // The backup set GUID lives in the SSET block, which lies beyond the head: unknown, not made up.
    assert!(log.backup_set_guid.is_nil() && log.machine_name.is_empty());
}
