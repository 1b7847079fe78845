//! Forensics benchmark: how long `promptflag exposures` takes to answer "who saw what" over ten
//! million exposures in a real SQLite file.
//!
//! Loads the exposures through the collector's own storage path (`collector::db::insert_batches`,
//! the same transactions and indexes a running collector writes) into a file under
//! `target/bench-exposures/` (kept and reused while it holds the expected count), then times the
//! real binary end to end on three questions: one version's units in a 30-minute window, the
//! whole day per variant and version with the first 100 000 units, and the whole day as CSV.
//!
//! ```
//! cargo xtask bench exposures
//! PROMPTFLAG_BENCH_EXPOSURES=1000000 cargo bench -p promptflag-cli --bench exposures_query
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use promptflag_telemetry::collector::db::{Synchronous, insert_batches, open};
use promptflag_telemetry::collector::event::{ExposureRecord, Record};

/// 2026-11-21T00:00:00Z.
const DAY_START_MS: i64 = 1_795_219_200_000;
const DAY_MS: i64 = 86_400_000;
const UNITS: u64 = 1_000_000;
const BATCH: usize = 50_000;

/// A small deterministic generator, so every load is the same data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Exposure `index` of `total`: spread evenly over one day; a unit keeps its variant; the
/// treatment serves 1.0.0 in the morning and 2.0.0 from noon; a second flag takes a fifth of the
/// traffic, so the queried flag is not the whole table.
fn exposure(index: u64, total: u64, random: &mut SplitMix) -> ExposureRecord {
    let timestamp_ms = DAY_START_MS + (index as i64) * DAY_MS / (total as i64);
    let unit = random.next() % UNITS;
    let other_flag = random.next().is_multiple_of(5);
    let treatment = unit % 2 == 1;
    let (variant, version) = match (treatment, timestamp_ms >= DAY_START_MS + DAY_MS / 2) {
        (false, _) => ("control", "1.4.0"),
        (true, false) => ("concise", "1.0.0"),
        (true, true) => ("concise", "2.0.0"),
    };
    let flag = if other_flag {
        "onboarding_prompt"
    } else {
        "support_reply"
    };
    ExposureRecord {
        key: format!("x-{index}"),
        timestamp_ms,
        environment: Some(String::from("prod")),
        flag_key: flag.to_string(),
        variant: variant.to_string(),
        prompt_id: Some(flag.to_string()),
        prompt_version: Some(version.to_string()),
        prompt_hash: Some(format!(
            "{:064x}",
            version.len() as u64 + u64::from(treatment)
        )),
        revision: Some(if version == "2.0.0" { 8 } else { 7 }),
        unit: Some(format!("user-{unit}")),
        reason: Some(String::from("SPLIT")),
    }
}

fn stored(path: &Path) -> u64 {
    let connection = open(path, Synchronous::Normal).unwrap();
    connection
        .query_row("SELECT COUNT(*) FROM exposures", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap()
        .max(0) as u64
}

fn load(path: &Path, total: u64) {
    if path.exists() && stored(path) == total {
        eprintln!("reusing {} ({total} exposures)", path.display());
        return;
    }
    let _ = std::fs::remove_file(path);
    let mut connection = open(path, Synchronous::Normal).unwrap();
    let started = Instant::now();
    let mut random = SplitMix(7);
    let mut index = 0;
    while index < total {
        let end = (index + BATCH as u64).min(total);
        let batch: Vec<Record> = (index..end)
            .map(|i| Record::Exposure(exposure(i, total, &mut random)))
            .collect();
        insert_batches(&mut connection, &[&batch]).unwrap();
        index = end;
    }
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    eprintln!(
        "loaded {total} exposures into {} in {:.1} s ({:.0} MB)",
        path.display(),
        started.elapsed().as_secs_f64(),
        std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / 1e6
    );
}

fn time(db: &Path, what: &str, args: &[&str]) {
    let mut best = f64::INFINITY;
    let mut bytes = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_promptflag"))
            .arg("--db")
            .arg(db)
            .arg("exposures")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        best = best.min(started.elapsed().as_secs_f64());
        bytes = output.stdout.len();
    }
    println!("{what:<58} {best:>7.2} s  ({bytes} bytes out)");
}

fn main() {
    let total: u64 = std::env::var("PROMPTFLAG_BENCH_EXPOSURES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-exposures");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("exposures-{total}.sqlite3"));
    load(&db, total);
    println!("promptflag exposures over {total} exposures (best of 3, the whole command)");
    time(
        &db,
        "support_reply@2.0.0, 14:00–14:30, csv (every unit)",
        &[
            "--flag",
            "support_reply",
            "--version",
            "2.0.0",
            "--from",
            "2026-11-21T14:00:00Z",
            "--to",
            "2026-11-21T14:30:00Z",
            "--format",
            "csv",
        ],
    );
    time(
        &db,
        "support_reply, whole day, per variant and version (text)",
        &[
            "--flag",
            "support_reply",
            "--from",
            "2026-11-21T00:00:00Z",
            "--to",
            "2026-11-22T00:00:00Z",
        ],
    );
    time(
        &db,
        "support_reply, whole day, json, first 100 000 units",
        &[
            "--flag",
            "support_reply",
            "--from",
            "2026-11-21T00:00:00Z",
            "--to",
            "2026-11-22T00:00:00Z",
            "--format",
            "json",
        ],
    );
}
