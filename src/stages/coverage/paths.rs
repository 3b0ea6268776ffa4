//! Matching the files a coverage report names to files on disk.
//!
//! The main type is [`Resolver`]. Tools name files in their own ways: coverage.py writes a
//! Cobertura `filename` relative to one of the `<source>` roots, cargo-llvm-cov and Jest write
//! absolute lcov `SF:` paths, JaCoCo writes only `package/sourcefile` (the folder it lives in,
//! `src/main/java`, is not said), and a report made on another machine (a CI container, a
//! Windows runner) names paths that do not exist here. A file is therefore looked for as
//! written, under each root, under the stage's working directory and beside the report; failing
//! that, the longest tail of its path that names a file under the working directory wins, and
//! a JaCoCo path is matched by its tail against the files of the working tree. Found files are
//! keyed by their canonical path, so that two reports naming one file in two ways merge, and
//! changed lines (which git names from the repository's top) meet the same key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::parse::SourcePath;

/// Where a report's file was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A file on disk, by its canonical path.
    Found(PathBuf),
    /// No file here matches; the path as the report writes it.
    Missing(String),
    /// Several files here could be the one named (a JaCoCo path's tail, a Cobertura `filename`
    /// under several roots); the path as the report writes it. Such an entry is counted on its
    /// own, never merged with another.
    Ambiguous(String, usize),
}

impl Resolved {
    pub(crate) fn key(&self) -> PathBuf {
        match self {
            Resolved::Found(p) => p.clone(),
            Resolved::Missing(s) | Resolved::Ambiguous(s, _) => PathBuf::from(s),
        }
    }
}

pub(crate) struct Resolver {
    /// The stage's working directory, canonical.
    workdir: PathBuf,
    /// Files under the working directory by file name, relative to it; walked on first need.
    index: Option<HashMap<OsString, Vec<PathBuf>>>,
}

impl Resolver {
    pub(crate) fn new(workdir: &Path) -> Resolver {
        Resolver {
            workdir: canonical(workdir),
            index: None,
        }
    }

    pub(crate) fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// How a key is shown: relative to the working directory when under it.
    pub(crate) fn display(&self, key: &Path) -> String {
        key.strip_prefix(&self.workdir)
            .unwrap_or(key)
            .display()
            .to_string()
    }

    /// Finds the file `source` names; `report_dir` is the folder of the report naming it.
    pub(crate) fn resolve(&mut self, report_dir: &Path, source: &SourcePath) -> Resolved {
        match source {
            SourcePath::Path { path, roots } => self.resolve_path(report_dir, path, roots),
            SourcePath::Suffix(suffix) => self.resolve_suffix(suffix),
        }
    }

    fn resolve_path(&self, report_dir: &Path, path: &str, roots: &[String]) -> Resolved {
        let written = Path::new(path);
        if written.is_absolute() {
            if written.is_file() {
                return Resolved::Found(canonical(written));
            }
            return self
                .tail_of(path, 1)
                .map_or_else(|| Resolved::Missing(path.to_owned()), Resolved::Found);
        }
        // Under the roots first: coverage.py writes `filename` relative to one of them. When
        // several roots hold a file of that name (`alpha/__init__.py`, `beta/__init__.py`),
        // the report does not say which: ambiguous, never merged with another entry.
        let mut under_roots: Vec<PathBuf> = Vec::new();
        for root in roots {
            let root = Path::new(root);
            let tries = if root.is_absolute() {
                vec![root.join(written)]
            } else {
                vec![
                    self.workdir.join(root).join(written),
                    report_dir.join(root).join(written),
                ]
            };
            for candidate in tries.iter().filter(|p| p.is_file()) {
                let found = canonical(candidate);
                if !under_roots.contains(&found) {
                    under_roots.push(found);
                }
            }
        }
        match under_roots.len() {
            0 => {}
            1 => return Resolved::Found(under_roots.remove(0)),
            n => return Resolved::Ambiguous(path.to_owned(), n),
        }
        // Made elsewhere: the longest tail of `ROOT/filename`, of two parts at least (so that
        // `pkg/utils.py` wins over a `utils.py` at the top), then the path as written.
        for root in roots {
            if let Some(found) = self.tail_of(&format!("{root}/{path}"), 2) {
                return Resolved::Found(found);
            }
        }
        for candidate in [self.workdir.join(written), report_dir.join(written)] {
            if candidate.is_file() {
                return Resolved::Found(canonical(&candidate));
            }
        }
        if let Some(found) = self.tail_of(path, 1) {
            return Resolved::Found(found);
        }
        Resolved::Missing(match roots.first() {
            Some(root) => format!("{}/{path}", root.trim_end_matches('/')),
            None => path.to_owned(),
        })
    }

    /// The longest tail of `text`, of `shortest` parts at least, that is a file under the
    /// working directory.
    fn tail_of(&self, text: &str, shortest: usize) -> Option<PathBuf> {
        let parts = components(text);
        for start in 0..parts.len() {
            if parts.len() - start < shortest {
                break;
            }
            let candidate = parts[start..]
                .iter()
                .fold(self.workdir.clone(), |p, c| p.join(c));
            if candidate.is_file() {
                return Some(canonical(&candidate));
            }
        }
        None
    }

    fn resolve_suffix(&mut self, suffix: &str) -> Resolved {
        let parts = components(suffix);
        let Some(name) = parts.last() else {
            return Resolved::Missing(suffix.to_owned());
        };
        let index = self.index.get_or_insert_with(|| walk(&self.workdir));
        let matches: Vec<&PathBuf> = index
            .get(&OsString::from(name))
            .map(|paths| {
                paths
                    .iter()
                    .filter(|p| {
                        let have: Vec<String> = p
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy().into_owned())
                            .collect();
                        have.ends_with(&parts)
                    })
                    .collect()
            })
            .unwrap_or_default();
        match matches.as_slice() {
            [one] => Resolved::Found(canonical(&self.workdir.join(one))),
            [] => Resolved::Missing(suffix.to_owned()),
            many => Resolved::Ambiguous(suffix.to_owned(), many.len()),
        }
    }
}

/// The parts of a path as a report writes it, `/` or `\` separated, without `.`, empty parts
/// and a Windows drive.
fn components(path: &str) -> Vec<String> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != "." && !(c.len() == 2 && c.ends_with(':')))
        .map(str::to_owned)
        .collect()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Every file under `root` that git would not ignore, by file name.
fn walk(root: &Path) -> HashMap<OsString, Vec<PathBuf>> {
    let mut index: HashMap<OsString, Vec<PathBuf>> = HashMap::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .require_git(false)
        .build();
    for entry in walker.filter_map(Result::ok) {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if let Ok(rel) = entry.path().strip_prefix(root) {
            index
                .entry(entry.file_name().to_os_string())
                .or_default()
                .push(rel.to_path_buf());
        }
    }
    for paths in index.values_mut() {
        paths.sort();
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, "x\n").expect("write");
        }
        dir
    }

    fn path(p: &str, roots: &[&str]) -> SourcePath {
        SourcePath::Path {
            path: p.into(),
            roots: roots.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn report_paths_are_found_however_they_are_written() {
        let dir = tree(&[
            "app/calc/ops.py",
            "app/lib/util.py",
            "src/main/java/com/example/Calc.java",
            "web/src/x.ts",
            "a/Same.java",
            "b/Same.java",
        ]);
        let root = canonical(dir.path());
        let mut r = Resolver::new(dir.path());
        let found = |s: &str| Resolved::Found(root.join(s));
        let abs = root.join("app").display().to_string();
        let cases = [
            // Cobertura: relative to one of two roots, the second holding the file.
            (
                path("util.py", &[&format!("{abs}/calc"), &format!("{abs}/lib")]),
                found("app/lib/util.py"),
            ),
            // Roots from another machine: the tail under the working directory.
            (
                path("ops.py", &["/home/runner/work/app/app/calc"]),
                found("app/calc/ops.py"),
            ),
            // lcov: absolute here, absolute elsewhere (Windows too), relative.
            (
                path(&root.join("web/src/x.ts").display().to_string(), &[]),
                found("web/src/x.ts"),
            ),
            (
                path("C:\\build\\repo\\web\\src\\x.ts", &[]),
                found("web/src/x.ts"),
            ),
            (path("web/src/x.ts", &[]), found("web/src/x.ts")),
            (path("./web/src/x.ts", &[]), found("web/src/x.ts")),
            // JaCoCo: by package path, under whatever source folder.
            (
                SourcePath::Suffix("com/example/Calc.java".into()),
                found("src/main/java/com/example/Calc.java"),
            ),
            (
                SourcePath::Suffix("Same.java".into()),
                Resolved::Ambiguous("Same.java".into(), 2),
            ),
            (
                SourcePath::Suffix("org/x/Gone.java".into()),
                Resolved::Missing("org/x/Gone.java".into()),
            ),
            (
                path("gone.py", &["/elsewhere/src"]),
                Resolved::Missing("/elsewhere/src/gone.py".into()),
            ),
        ];
        for (source, want) in cases {
            assert_eq!(r.resolve(dir.path(), &source), want, "{source:?}");
        }
        assert_eq!(r.display(&root.join("app/lib/util.py")), "app/lib/util.py");
    }

    #[test]
    fn a_relative_root_is_taken_from_the_working_directory_or_the_report() {
        let dir = tree(&["pkg/mod/a.py", "reports/src/b.py"]);
        let root = canonical(dir.path());
        let mut r = Resolver::new(dir.path());
        assert_eq!(
            r.resolve(&dir.path().join("reports"), &path("a.py", &["pkg/mod"])),
            Resolved::Found(root.join("pkg/mod/a.py"))
        );
        assert_eq!(
            r.resolve(&dir.path().join("reports"), &path("b.py", &["src"])),
            Resolved::Found(root.join("reports/src/b.py"))
        );
    }
}
