//! Prometheus metrics in the text format, for node_exporter's textfile collector.
//!
//! The main functions are [`run`], [`drill`] and [`write`]. The figures an alert needs, the last
//! successful backup and drill, are read from the backups' manifests, which outlive a run, so a
//! failed run still reports when the last good backup was taken. The file is written to a
//! temporary name in the same folder and renamed, as the collector's documentation asks, so it
//! is never read half-written.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::pg::store::{self, Listed, Manifest};

/// One metric family: a gauge with its samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

fn family(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        samples: Vec::new(),
    }
}

/// The text format: `# HELP`, `# TYPE`, then one line per sample. Families without samples are
/// left out.
pub(crate) fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} gauge\n",
            f.name, f.help, f.name
        ));
        for (labels, value) in &f.samples {
            out.push_str(f.name);
            if !labels.is_empty() {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                out.push_str(&format!("{{{}}}", labels.join(",")));
            }
            out.push_str(&format!(" {}\n", number(*value)));
        }
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Writes `families` to `path` atomically: a temporary file in the same folder, fsynced, made
/// readable by the collector (0644), then renamed over `path`.
pub(crate) fn write(path: &Path, families: &[Family]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".portcullis-metrics-")
        .tempfile_in(folder)?;
    tmp.write_all(render(families).as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn seconds(timestamp: &str) -> Option<f64> {
    timestamp
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond() as f64 / 1000.0)
}

/// The last backup and drill figures of one backup folder, labelled with `labels`.
fn backup_families(
    families: &mut Families,
    labels: &[(&'static str, String)],
    manifests: &[Manifest],
) {
    let with_db = |m: &Manifest| {
        let mut l = labels.to_vec();
        l.push(("database", m.database.name.clone()));
        l
    };
    // Newest last: ids sort by time.
    if let Some(m) = manifests.last() {
        let l = with_db(m);
        if let Some(t) = seconds(&m.finished_at) {
            families.backup_last_success.samples.push((l.clone(), t));
        }
        families
            .backup_size
            .samples
            .push((l.clone(), m.size_bytes as f64));
        families
            .backup_duration
            .samples
            .push((l.clone(), (m.dump_ms + m.verify_ms) as f64 / 1000.0));
    }
    if let Some((m, t)) = manifests.iter().rev().find_map(|m| {
        m.offsite
            .as_ref()
            .and_then(|c| seconds(&c.verified_at))
            .map(|t| (m, t))
    }) {
        families.offsite_last_success.samples.push((with_db(m), t));
    }
    let last_passed = manifests
        .iter()
        .flat_map(|m| m.drills.iter().filter(|d| d.passed).map(move |d| (m, d)))
        .filter_map(|(m, d)| seconds(&d.at).map(|t| (m, d, t)))
        .max_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((m, d, t)) = last_passed {
        let l = with_db(m);
        families.drill_last_success.samples.push((l.clone(), t));
        families
            .drill_recovery
            .samples
            .push((l.clone(), d.recovery_ms as f64 / 1000.0));
        if let Some(rto) = d.rto_ms {
            families.drill_rto.samples.push((l, rto as f64 / 1000.0));
        }
    }
}

struct Families {
    backup_last_success: Family,
    backup_size: Family,
    backup_duration: Family,
    offsite_last_success: Family,
    drill_last_success: Family,
    drill_recovery: Family,
    drill_rto: Family,
}

impl Families {
    fn new() -> Families {
        Families {
            backup_last_success: family(
                "portcullis_backup_last_success_timestamp_seconds",
                "When the newest valid backup finished (Unix time).",
            ),
            backup_size: family(
                "portcullis_backup_size_bytes",
                "Size of the newest valid backup's dump.",
            ),
            backup_duration: family(
                "portcullis_backup_duration_seconds",
                "How long the newest valid backup took to dump and verify.",
            ),
            offsite_last_success: family(
                "portcullis_backup_offsite_last_success_timestamp_seconds",
                "When the newest offsite copy was read back and verified (Unix time).",
            ),
            drill_last_success: family(
                "portcullis_drill_last_success_timestamp_seconds",
                "When the last restore drill that passed ended (Unix time).",
            ),
            drill_recovery: family(
                "portcullis_drill_recovery_seconds",
                "Recovery time measured by the last restore drill that passed, from start to verified.",
            ),
            drill_rto: family(
                "portcullis_drill_rto_seconds",
                "The recovery-time objective of the last restore drill that passed.",
            ),
        }
    }

    fn into_vec(self) -> Vec<Family> {
        vec![
            self.backup_last_success,
            self.backup_size,
            self.backup_duration,
            self.offsite_last_success,
            self.drill_last_success,
            self.drill_recovery,
            self.drill_rto,
        ]
    }
}

fn valid_manifests(dir: &Path) -> Vec<Manifest> {
    store::list(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e {
            Listed::Valid { manifest, .. } => Some(*manifest),
            _ => None,
        })
        .collect()
}

/// Metrics of one `portcullis run`: the run's and each stage's status and duration from the
/// summary document, and the backup figures of each backup folder the pipeline names
/// (`(stage, folder)`).
pub(crate) fn run(summary: &Value, folders: &[(String, std::path::PathBuf)]) -> Vec<Family> {
    let pipeline = summary["pipeline"].as_str().unwrap_or_default().to_owned();
    let mut run_success = family(
        "portcullis_run_success",
        "1 when the last run of the pipeline passed, else 0.",
    );
    let mut run_time = family(
        "portcullis_run_timestamp_seconds",
        "When the last run of the pipeline started (Unix time).",
    );
    let mut run_duration = family(
        "portcullis_run_duration_seconds",
        "How long the last run of the pipeline took.",
    );
    let mut stage_status = family(
        "portcullis_stage_status",
        "1 for the status each stage ended with in the last run, 0 for the others.",
    );
    let mut stage_duration = family(
        "portcullis_stage_duration_seconds",
        "How long each stage took in the last run.",
    );
    let p = vec![("pipeline", pipeline.clone())];
    let status = summary["status"].as_str().unwrap_or("interrupted");
    run_success
        .samples
        .push((p.clone(), f64::from(u8::from(status == "passed"))));
    if let Some(t) = summary["started_at"].as_str().and_then(seconds) {
        run_time.samples.push((p.clone(), t));
    }
    if let Some(ms) = summary["duration_ms"].as_f64() {
        run_duration.samples.push((p.clone(), ms / 1000.0));
    }
    const STATUSES: &[&str] = &[
        "passed",
        "warning",
        "failed",
        "skipped",
        "cancelled",
        "not_run",
    ];
    for stage in summary["stages"].as_array().into_iter().flatten() {
        let id = stage["id"].as_str().unwrap_or_default().to_owned();
        let ended = stage["status"].as_str().unwrap_or("not_run");
        for s in STATUSES
            .iter()
            .chain((!STATUSES.contains(&ended)).then_some(&ended))
        {
            stage_status.samples.push((
                vec![
                    ("pipeline", pipeline.clone()),
                    ("stage", id.clone()),
                    ("status", (*s).to_owned()),
                ],
                f64::from(u8::from(*s == ended)),
            ));
        }
        if let Some(ms) = stage["duration_ms"].as_f64() {
            stage_duration.samples.push((
                vec![("pipeline", pipeline.clone()), ("stage", id.clone())],
                ms / 1000.0,
            ));
        }
    }
    let mut families = Families::new();
    for (stage, folder) in folders {
        let labels = vec![("pipeline", pipeline.clone()), ("stage", stage.clone())];
        backup_families(&mut families, &labels, &valid_manifests(folder));
    }
    let mut all = vec![
        run_success,
        run_time,
        run_duration,
        stage_status,
        stage_duration,
    ];
    all.extend(families.into_vec());
    all
}

/// Metrics of one `portcullis backups drill`: this drill's result, and the backup and drill
/// figures of the folder it drilled.
pub(crate) fn drill(outcome: &crate::pg::drill::Outcome, folder: Option<&Path>) -> Vec<Family> {
    let mut success = family(
        "portcullis_drill_success",
        "1 when the last restore drill passed, else 0.",
    );
    let mut time = family(
        "portcullis_drill_timestamp_seconds",
        "When the last restore drill ended (Unix time).",
    );
    let mut recovery = family(
        "portcullis_drill_last_recovery_seconds",
        "Recovery time of the last restore drill, passed or not.",
    );
    success
        .samples
        .push((Vec::new(), f64::from(u8::from(outcome.error.is_none()))));
    time.samples.push((
        Vec::new(),
        jiff::Timestamp::now().as_millisecond() as f64 / 1000.0,
    ));
    recovery
        .samples
        .push((Vec::new(), outcome.recovery.as_secs_f64()));
    let mut families = Families::new();
    if let Some(folder) = folder {
        backup_families(&mut families, &[], &valid_manifests(folder));
    } else if let Some(record) = &outcome.record
        && record.passed
    {
        // A remote drill: its own record is the newest passed one.
        if let Some(t) = seconds(&record.at) {
            families.drill_last_success.samples.push((Vec::new(), t));
            families
                .drill_recovery
                .samples
                .push((Vec::new(), record.recovery_ms as f64 / 1000.0));
            if let Some(rto) = record.rto_ms {
                families
                    .drill_rto
                    .samples
                    .push((Vec::new(), rto as f64 / 1000.0));
            }
        }
    }
    let mut all = vec![success, time, recovery];
    all.extend(families.into_vec());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_escaped_labels() {
        let mut f = family("portcullis_x", "An x.");
        f.samples.push((vec![("stage", "a\"b\\c\nd".into())], 1.0));
        f.samples.push((Vec::new(), 2.5));
        let empty = family("portcullis_none", "Never set.");
        let text = render(&[f, empty]);
        assert_eq!(
            text,
            "# HELP portcullis_x An x.\n# TYPE portcullis_x gauge\n\
             portcullis_x{stage=\"a\\\"b\\\\c\\nd\"} 1\nportcullis_x 2.5\n"
        );
    }

    #[test]
    fn a_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.prom");
        std::fs::write(&path, "old").unwrap();
        let mut f = family("portcullis_y", "A y.");
        f.samples.push((Vec::new(), 3.0));
        write(&path, &[f]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# HELP portcullis_y A y.\n# TYPE portcullis_y gauge\nportcullis_y 3\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }
}
