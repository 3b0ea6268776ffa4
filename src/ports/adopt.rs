//! What makes the port law adoptable on an existing repository: where it looks ([`Reach`]:
//! excludes, includes, test and fixture trees), what it already knows about ([`Baseline`]),
//! and a [`Summary`] when the findings are too many to read one by one.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::{Finding, Severity};

/// More findings than this and the human output ends with a [`Summary`].
pub(crate) const SCREENFUL: usize = 40;

/// More findings than this and a JUnit report has one case per file instead of per finding.
pub(crate) const JUNIT_GROUP_ABOVE: usize = 100;

/// Which files a scan reads, and which it reads as tests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Reach {
    /// From `--include`/`--exclude` globs (gitignore-like: `web/**`, `*.test.ts`, a folder
    /// name alone matches it anywhere); a glob that does not parse is an error naming it.
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Reach, String> {
        let set = |globs: &[String]| -> Result<Option<GlobSet>, String> {
            if globs.is_empty() {
                return Ok(None);
            }
            let mut builder = GlobSetBuilder::new();
            for g in globs {
                let g = g.trim_end_matches('/');
                // A bare name (`vendor`) matches that file or folder anywhere, and what is in it.
                let patterns = if g.contains('/') {
                    vec![g.to_owned(), format!("{g}/**")]
                } else {
                    vec![format!("**/{g}"), format!("**/{g}/**")]
                };
                for p in patterns {
                    // The error names the glob as written, not its rewritten form.
                    builder.add(
                        Glob::new(&p).map_err(|e| format!("`{g}` is not a glob: {}", e.kind()))?,
                    );
                }
            }
            builder
                .build()
                .map(Some)
                .map_err(|e| format!("cannot build the globs: {e}"))
        };
        Ok(Reach {
            include: set(include)?,
            exclude: set(exclude)?,
        })
    }

    /// Whether the file at `rel` (relative to the scan root) is read.
    pub(crate) fn reads(&self, rel: &Path) -> bool {
        !self.exclude.as_ref().is_some_and(|x| x.is_match(rel))
            && self.include.as_ref().is_none_or(|i| i.is_match(rel))
    }

    /// Whether a folder at `rel` is entered: not when it is excluded.
    pub(crate) fn enters(&self, rel: &Path) -> bool {
        !self.exclude.as_ref().is_some_and(|x| x.is_match(rel))
    }
}

/// Folder names that hold tests, fixtures or sample data.
const TEST_DIRS: &[&str] = &[
    "tests",
    "test",
    "__tests__",
    "spec",
    "specs",
    "e2e",
    "fixtures",
    "__fixtures__",
    "__mocks__",
    "testdata",
    "test-data",
    "sample-data",
    "sample_data",
    "samples",
];

/// Why the file at `rel` is a test, sample or documentation file, when it is one: the port in
/// a URL there is one a test or a reader points at, not one the system opens.
pub(crate) fn test_file(rel: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    // In any case (SwiftPM's and Xcode's `Tests/`), and .NET's test projects (`Api.Tests/`).
    if parts.iter().any(|p| {
        TEST_DIRS.iter().any(|d| d.eq_ignore_ascii_case(p))
            || p.ends_with(".Tests")
            || p.ends_with(".IntegrationTests")
    }) {
        return Some("a test, fixture or sample folder");
    }
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    if matches!(ext, "md" | "markdown" | "rst" | "txt" | "adoc") {
        return Some("documentation");
    }
    let stem = name.split('.').next().unwrap_or(name);
    let test_name = name.contains(".test.")
        || name.contains(".spec.")
        || stem.ends_with("_test")
        || stem.ends_with("_spec")
        || (stem.starts_with("test_") && name.ends_with(".py"))
        || name == "conftest.py";
    test_name.then_some("a test file")
}

/// A port in a test or sample file, referenced but not opened, is only a note. Binds,
/// publishes, defaults and settings count as anywhere.
pub(crate) fn demote_test_reference(finding: &mut Finding, why: &str) {
    // Documentation opens nothing, whatever it shows: a command line in a README included.
    if finding.severity == Severity::Violation
        && (finding.kind == "reference" || why == "documentation")
    {
        finding.severity = Severity::Note;
        finding.message = format!(
            "only a note, in {why} (a URL written there opens no port): {}",
            finding.message
        );
    }
}

/// The line a finding is on, reduced to what survives edits elsewhere in the file: its words
/// without surrounding or repeated whitespace, hashed (FNV-1a, 64 bits) with the rule and port.
pub(crate) fn fingerprint(line: &str, rule: &str, port: u16) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
    for byte in words
        .bytes()
        .chain([0])
        .chain(rule.bytes())
        .chain(port.to_le_bytes())
    {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// One known violation in a baseline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) file: String,
    pub(crate) rule: String,
    pub(crate) port: u16,
    pub(crate) fingerprint: String,
    /// Where it was when recorded; for readers, not matched.
    pub(crate) line: u32,
}

/// `--write-baseline` / `--baseline`: the violations a team accepts today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    #[serde(rename = "portcullis-ports-baseline")]
    pub(crate) version: u32,
    pub(crate) findings: Vec<Entry>,
}

impl Baseline {
    /// The violations of `findings` that have a file position.
    pub(crate) fn of(findings: &[Finding]) -> Baseline {
        Baseline {
            version: 1,
            findings: findings
                .iter()
                .filter(|f| f.severity == Severity::Violation)
                .filter_map(|f| {
                    Some(Entry {
                        file: f.file.clone()?,
                        rule: f.rule.to_owned(),
                        port: f.port,
                        fingerprint: f.fingerprint.clone()?,
                        line: f.line?,
                    })
                })
                .collect(),
        }
    }

    pub(crate) fn read(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the baseline `{}`: {e}", path.display()))?;
        let baseline: Baseline = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not a port baseline ({e})", path.display()))?;
        if baseline.version != 1 {
            return Err(format!(
                "`{}` is a version {} baseline; this portcullis reads version 1",
                path.display(),
                baseline.version
            ));
        }
        Ok(baseline)
    }

    /// Writes the baseline, sorted so that it diffs well, through a temporary file.
    pub(crate) fn write(&self, path: &Path) -> Result<(), String> {
        let mut sorted = self.clone();
        sorted.findings.sort_by(|a, b| {
            (&a.file, a.line, a.port, &a.rule).cmp(&(&b.file, b.line, b.port, &b.rule))
        });
        let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_default();
        text.push('\n');
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let written = tempfile::NamedTempFile::new_in(dir)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, text.as_bytes())?;
                f.persist(path).map_err(|e| e.error)
            })
            .map_err(|e| format!("cannot write the baseline `{}`: {e}", path.display()));
        written.map(|_| ())
    }

    /// Turns each violation the baseline holds into a note (each entry covers one finding),
    /// and adds a note for each entry that matches nothing any more: the code was fixed, and
    /// the entry can go. `name` is how the baseline is named in messages.
    pub(crate) fn apply(&self, findings: &mut Vec<Finding>, name: &str) {
        let mut unused: Vec<&Entry> = self.findings.iter().collect();
        for f in findings
            .iter_mut()
            .filter(|f| f.severity == Severity::Violation)
        {
            let Some(i) = unused.iter().position(|e| {
                Some(e.file.as_str()) == f.file.as_deref()
                    && e.rule == f.rule
                    && e.port == f.port
                    && Some(e.fingerprint.as_str()) == f.fingerprint.as_deref()
            }) else {
                continue;
            };
            unused.swap_remove(i);
            f.severity = Severity::Note;
            f.message = format!("in the baseline `{name}`: {}", f.message);
        }
        for e in unused {
            findings.push(Finding {
                file: Some(e.file.clone()),
                line: Some(e.line),
                column: Some(1),
                port: e.port,
                kind: "reference",
                scope: "host",
                severity: Severity::Note,
                rule: "baseline-fixed",
                message: format!(
                    "the baseline `{name}` lists a `{}` finding for port {} here that the scan no longer finds: remove it (`--write-baseline` rewrites the file)",
                    e.rule, e.port
                ),
                fingerprint: None,
            });
        }
    }
}

/// Counts of findings by rule, kind, port and top folder, for too many to read one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    pub(crate) violations: usize,
    pub(crate) notes: usize,
    /// Each `BTreeMap` counts `[violations, notes]`.
    pub(crate) by_rule: BTreeMap<String, [usize; 2]>,
    pub(crate) by_kind: BTreeMap<String, [usize; 2]>,
    pub(crate) by_port: BTreeMap<u16, [usize; 2]>,
    /// The top-level folders with the most findings (at most 10), most first.
    pub(crate) top_folders: Vec<(String, [usize; 2])>,
}

impl Summary {
    pub(crate) fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        let mut folders: BTreeMap<String, [usize; 2]> = BTreeMap::new();
        for f in findings {
            let i = usize::from(f.severity == Severity::Note);
            s.violations += 1 - i;
            s.notes += i;
            s.by_rule.entry(f.rule.to_owned()).or_default()[i] += 1;
            s.by_kind.entry(f.kind.to_owned()).or_default()[i] += 1;
            s.by_port.entry(f.port).or_default()[i] += 1;
            let folder = match f.file.as_deref() {
                Some(file) => match file.split_once('/') {
                    Some((top, _)) => format!("{top}/"),
                    None => "./".to_owned(),
                },
                None => "(this machine)".to_owned(),
            };
            folders.entry(folder).or_default()[i] += 1;
        }
        let mut top: Vec<(String, [usize; 2])> = folders.into_iter().collect();
        top.sort_by(|a, b| {
            (b.1[0] + b.1[1])
                .cmp(&(a.1[0] + a.1[1]))
                .then(a.0.cmp(&b.0))
        });
        top.truncate(10);
        s.top_folders = top;
        s
    }

    /// The human form: one line per dimension, `3000: 12 violations, 3 notes; ...`.
    pub(crate) fn text(&self) -> String {
        fn counts(n: &[usize; 2]) -> String {
            match n {
                [v, 0] => crate::text::plural(*v, "violation"),
                [0, n] => crate::text::plural(*n, "note"),
                [v, n] => format!(
                    "{}, {}",
                    crate::text::plural(*v, "violation"),
                    crate::text::plural(*n, "note")
                ),
            }
        }
        fn line<K: std::fmt::Display>(
            title: &str,
            items: impl Iterator<Item = (K, [usize; 2])>,
        ) -> String {
            let parts: Vec<String> = items.map(|(k, n)| format!("{k}: {}", counts(&n))).collect();
            format!("  {title:<8} {}\n", parts.join("; "))
        }
        let mut out = format!(
            "summary: {}\n",
            super::count_text(self.violations, self.notes)
        );
        out.push_str(&line("rule", self.by_rule.iter().map(|(k, v)| (k, *v))));
        out.push_str(&line("kind", self.by_kind.iter().map(|(k, v)| (k, *v))));
        out.push_str(&line("port", self.by_port.iter().map(|(k, v)| (k, *v))));
        out.push_str(&line(
            "folder",
            self.top_folders.iter().map(|(k, v)| (k, *v)),
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(file: &str, line: u32, port: u16, rule: &'static str, text: &str) -> Finding {
        Finding {
            file: Some(file.to_owned()),
            line: Some(line),
            column: Some(1),
            port,
            kind: "reference",
            scope: "host",
            severity: Severity::Violation,
            rule,
            message: format!("port {port}"),
            fingerprint: Some(fingerprint(text, rule, port)),
        }
    }

    #[test]
    fn fingerprints_survive_moves_and_whitespace_not_edits() {
        let a = fingerprint("  url = \"http://localhost:3000\"", "forbidden", 3000);
        assert_eq!(
            a,
            fingerprint("url =  \"http://localhost:3000\"\t", "forbidden", 3000)
        );
        assert_ne!(
            a,
            fingerprint("url = \"http://localhost:3000/x\"", "forbidden", 3000)
        );
        assert_ne!(
            a,
            fingerprint("  url = \"http://localhost:3000\"", "unlisted", 3000)
        );
    }

    #[test]
    fn baseline_covers_each_finding_once_and_reports_what_was_fixed() {
        let today = vec![
            finding("a.py", 3, 3000, "forbidden", "x = 'localhost:3000'"),
            finding("a.py", 9, 3000, "forbidden", "x = 'localhost:3000'"),
            finding("b.py", 1, 8000, "forbidden", "run(port=8000)"),
        ];
        let baseline = Baseline::of(&today);
        assert_eq!(baseline.findings.len(), 3);
        // Lines moved, one duplicate fixed, one new finding.
        let mut tomorrow = vec![
            finding("a.py", 5, 3000, "forbidden", "x = 'localhost:3000'"),
            finding("b.py", 2, 8000, "forbidden", "run(port=8000)"),
            finding("c.py", 1, 3002, "forbidden", "y = 3002"),
        ];
        baseline.apply(&mut tomorrow, "ports-baseline.json");
        let violations: Vec<_> = tomorrow
            .iter()
            .filter(|f| f.severity == Severity::Violation)
            .map(|f| f.file.clone().unwrap_or_default())
            .collect();
        assert_eq!(violations, ["c.py"]);
        let fixed: Vec<_> = tomorrow
            .iter()
            .filter(|f| f.rule == "baseline-fixed")
            .collect();
        assert_eq!(fixed.len(), 1);
        assert_eq!(fixed[0].file.as_deref(), Some("a.py"));
    }

    #[test]
    fn test_files_are_recognised() {
        for rel in [
            "tests/test_api.py",
            "src/__tests__/app.tsx",
            "web/src/app.test.ts",
            "pkg/server_test.go",
            "api/test_views.py",
            "conftest.py",
            "saleor/fixtures/data.json",
            "spec/models/user_spec.rb",
            "Tests/AppTests/AppTests.swift",
            "src/Api.Tests/HealthTests.cs",
        ] {
            assert!(test_file(rel).is_some(), "{rel}");
        }
        assert_eq!(test_file("README.md"), Some("documentation"));
        assert_eq!(test_file("docs/install.rst"), Some("documentation"));
        for rel in [
            "src/server.ts",
            "testing.py",
            "latest/app.py",
            "contest.py",
            "Contests/app.swift",
        ] {
            assert!(test_file(rel).is_none(), "{rel}");
        }
    }

    #[test]
    fn reach_excludes_and_includes() {
        let reach =
            Reach::new(&["web/**".into()], &["vendor".into(), "*.min.js".into()]).expect("globs");
        assert!(reach.reads(Path::new("web/src/app.ts")));
        assert!(!reach.reads(Path::new("api/app.py")));
        assert!(!reach.reads(Path::new("web/vendor/x.js")));
        assert!(!reach.reads(Path::new("web/a.min.js")));
        assert!(!reach.enters(Path::new("web/vendor")));
        assert!(Reach::new(&[], &["a[".into()]).is_err());
    }

    #[test]
    fn summary_counts_by_dimension() {
        let mut fs = vec![
            finding("web/a.ts", 1, 3000, "forbidden", "a"),
            finding("web/b.ts", 1, 3000, "forbidden", "b"),
            finding("api/c.py", 1, 8000, "forbidden", "c"),
        ];
        fs[2].severity = Severity::Note;
        let s = Summary::of(&fs);
        assert_eq!((s.violations, s.notes), (2, 1));
        assert_eq!(s.by_port[&3000], [2, 0]);
        assert_eq!(s.top_folders[0], ("web/".to_owned(), [2, 0]));
        assert!(s.text().contains("3000: 2 violations"), "{}", s.text());
    }
}
