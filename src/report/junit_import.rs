//! Reading the JUnit files that test tools wrote, to merge them into the report.
//!
//! The main function is [`read`]. Its input is untrusted: it is streamed through quick-xml's
//! reader and only what the strict schema allows survives (test suites with their properties
//! and output, test cases with name, classname, time, outcome elements and output). Counts
//! are recomputed from the cases, never taken from the file, and sizes are bounded so a huge
//! or hostile file cannot exhaust memory. The dialects of pytest, jest-junit, vitest and
//! cargo-nextest all fit this one reading: a root `<testsuites>` or bare `<testsuite>`,
//! nested suites flattened, unknown elements and attributes ignored.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::reader::Reader;

use super::junit::{Case, Keep, MAX_TEXT, Problem, ProblemKind, Suite, clip};

/// Larger files are refused before reading: a test run that writes more has a report
/// nobody reads, and refusing keeps the reader's buffer bounded.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// Test cases kept per file.
pub(crate) const MAX_CASES: usize = 20_000;
/// Bytes of text (outputs, failure bodies) kept per file, across all its cases.
const MAX_KEPT: usize = 16 << 20;
/// Texts are captured a little beyond [`MAX_TEXT`] and masked before they are clipped, so
/// a secret that straddles the clip point is still whole when the redactor sees it.
const CAPTURE: usize = MAX_TEXT + 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Xml(#[from] quick_xml::Error),
    #[error("{0}")]
    Attr(#[from] quick_xml::events::attributes::AttrError),
    #[error("the file is larger than {} MiB", MAX_FILE_BYTES >> 20)]
    TooLarge,
    #[error("not a regular file")]
    NotAFile,
    #[error("the root element is `{0}`, not `testsuites` or `testsuite`")]
    Root(String),
    #[error("the file ends inside an unclosed element")]
    Truncated,
    #[error("the file holds no root element")]
    Empty,
    #[error("the file holds more than {MAX_CASES} test cases; the rest were left out")]
    TooManyCases,
}

/// Reads the JUnit file at `path` into suites named `STAGE / SUITE`, passing every text
/// through `mask`. Returns the suites it could keep and, apart, what went wrong: a file
/// that does not parse gives no suites, one with too many cases gives the first ones.
pub(crate) fn read(
    path: &Path,
    stage: &str,
    mask: &dyn Fn(&str) -> String,
) -> (Vec<Suite>, Option<ImportError>) {
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // Checked before opening: opening a FIFO would block the run.
    let opened = std::fs::metadata(path).and_then(|m| Ok((m, File::open(path)?)));
    let error = match opened {
        Err(e) => e.into(),
        Ok((m, _)) if !m.is_file() => ImportError::NotAFile,
        Ok((m, _)) if m.len() > MAX_FILE_BYTES => ImportError::TooLarge,
        // `take` also bounds a file that grows while it is read.
        Ok((_, f)) => {
            return parse(
                BufReader::new(f.take(MAX_FILE_BYTES)),
                stage,
                &file_name,
                mask,
            );
        }
    };
    (Vec::new(), Some(error))
}

/// Where the reader is: the element stack keeps only what decides where text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Suites,
    Suite,
    Properties,
    Case,
    Problem,
    StackTrace,
    Out,
    Err,
    Other,
}

struct Import<'a> {
    stage: &'a str,
    file_name: &'a str,
    mask: &'a dyn Fn(&str) -> String,
    stack: Vec<Node>,
    suites: Vec<Suite>,
    /// Indices into `suites` of the suites open around the reader.
    open: Vec<usize>,
    /// The suite for cases found outside any `<testsuite>`, made on first need.
    loose: Option<usize>,
    case: Option<Case>,
    cases: usize,
    kept: usize,
}

fn parse(
    input: impl BufRead,
    stage: &str,
    file_name: &str,
    mask: &dyn Fn(&str) -> String,
) -> (Vec<Suite>, Option<ImportError>) {
    let mut im = Import {
        stage,
        file_name,
        mask,
        stack: Vec::new(),
        suites: Vec::new(),
        open: Vec::new(),
        loose: None,
        case: None,
        cases: 0,
        kept: 0,
    };
    match im.run(&mut Reader::from_reader(input)) {
        Ok(()) => (im.finish(), None),
        Err(e @ ImportError::TooManyCases) => (im.finish(), Some(e)),
        Err(e) => (Vec::new(), Some(e)),
    }
}

impl Import<'_> {
    fn run(&mut self, reader: &mut Reader<impl BufRead>) -> Result<(), ImportError> {
        let mut buf = Vec::new();
        let mut seen_root = false;
        loop {
            match reader.read_event_into(&mut buf)? {
                Event::Start(e) => self.open(&e)?,
                Event::Empty(e) => {
                    self.open(&e)?;
                    self.close();
                }
                Event::End(_) => self.close(),
                Event::Text(t) => self.text(&t.xml10_content()),
                Event::CData(t) => self.text(&t.xml10_content()),
                Event::GeneralRef(r) => self.text(&resolve(&r)),
                Event::Eof => break,
                _ => {}
            }
            seen_root |= !self.stack.is_empty();
            buf.clear();
        }
        match (seen_root, self.stack.is_empty()) {
            (false, _) => Err(ImportError::Empty),
            (true, false) => Err(ImportError::Truncated),
            (true, true) => Ok(()),
        }
    }

    fn open(&mut self, e: &BytesStart<'_>) -> Result<(), ImportError> {
        let name = e.local_name();
        let node = match (self.stack.last().copied(), name.as_ref()) {
            (None, "testsuites") => Node::Suites,
            (None | Some(Node::Suites | Node::Suite), "testsuite") => {
                let suite_name = attr(e, "name")?.unwrap_or_else(|| self.file_name.to_owned());
                self.open.push(self.suites.len());
                self.suites.push(Suite {
                    name: format!("{} / {}", self.stage, (self.mask)(&suite_name)),
                    timestamp: attr(e, "timestamp")?,
                    time: attr(e, "time")?.and_then(|t| parse_time(&t)),
                    ..Suite::default()
                });
                Node::Suite
            }
            (None, other) => {
                return Err(ImportError::Root(other.to_owned()));
            }
            (Some(Node::Suite), "properties") => Node::Properties,
            (Some(Node::Properties), "property") => {
                if let (Some(n), Some(v), Some(&i)) =
                    (attr(e, "name")?, attr(e, "value")?, self.open.last())
                {
                    let kept = ((self.mask)(&n), (self.mask)(&v));
                    self.suites[i].properties.push(kept);
                }
                Node::Other
            }
            (Some(Node::Suites | Node::Suite), "testcase") => {
                if self.cases == MAX_CASES {
                    return Err(ImportError::TooManyCases);
                }
                self.cases += 1;
                self.case = Some(Case {
                    name: (self.mask)(&attr(e, "name")?.unwrap_or_default()),
                    classname: (self.mask)(&attr(e, "classname")?.unwrap_or_default()),
                    time: attr(e, "time")?.and_then(|t| parse_time(&t)),
                    ..Case::default()
                });
                Node::Case
            }
            (Some(Node::Problem), "stackTrace") => Node::StackTrace,
            (Some(Node::Suite | Node::Case | Node::Problem), "system-out") => Node::Out,
            (Some(Node::Suite | Node::Case | Node::Problem), "system-err") => Node::Err,
            (Some(Node::Case), tag) => match ProblemKind::from_tag(tag) {
                Some(kind) => {
                    let mut problem = Problem::new(kind, "");
                    problem.message = attr(e, "message")?.map(|m| (self.mask)(&m));
                    problem.type_ = attr(e, "type")?.map(|t| (self.mask)(&t));
                    if let Some(case) = &mut self.case {
                        case.problems.push(problem);
                    }
                    Node::Problem
                }
                None => Node::Other,
            },
            _ => Node::Other,
        };
        self.stack.push(node);
        Ok(())
    }

    fn close(&mut self) {
        match self.stack.pop() {
            Some(Node::Case) => {
                if let Some(case) = self.case.take() {
                    self.keep_case(case);
                }
            }
            Some(Node::Suite) => {
                self.open.pop();
            }
            _ => {}
        }
    }

    fn keep_case(&mut self, mut case: Case) {
        let fix = |s: &mut String| *s = clip(&(self.mask)(s), MAX_TEXT, Keep::Start);
        fix(&mut case.out);
        fix(&mut case.err);
        for p in &mut case.problems {
            fix(&mut p.text);
            fix(&mut p.out);
            fix(&mut p.err);
        }
        let suite = match (self.open.last(), self.loose) {
            (Some(&i), _) | (None, Some(i)) => i,
            (None, None) => {
                self.suites.push(Suite {
                    name: format!("{} / {}", self.stage, self.file_name),
                    ..Suite::default()
                });
                *self.loose.insert(self.suites.len() - 1)
            }
        };
        self.suites[suite].cases.push(case);
    }

    fn text(&mut self, s: &str) {
        let n = self.stack.len();
        let parent = n.checked_sub(2).map(|i| self.stack[i]);
        let case = self.case.as_mut();
        let suite = self.open.last().map(|&i| &mut self.suites[i]);
        let dst = match (self.stack.last(), parent) {
            (Some(Node::Problem | Node::StackTrace), _) => case
                .and_then(|c| c.problems.last_mut())
                .map(|p| &mut p.text),
            (Some(Node::Out), Some(Node::Case)) => case.map(|c| &mut c.out),
            (Some(Node::Err), Some(Node::Case)) => case.map(|c| &mut c.err),
            (Some(Node::Out), Some(Node::Problem)) => {
                case.and_then(|c| c.problems.last_mut()).map(|p| &mut p.out)
            }
            (Some(Node::Err), Some(Node::Problem)) => {
                case.and_then(|c| c.problems.last_mut()).map(|p| &mut p.err)
            }
            (Some(Node::Out), Some(Node::Suite)) => suite.map(|s| &mut s.out),
            (Some(Node::Err), Some(Node::Suite)) => suite.map(|s| &mut s.err),
            _ => None,
        };
        if let Some(dst) = dst {
            let mut room = CAPTURE.saturating_sub(dst.len()).min(MAX_KEPT - self.kept);
            if room < s.len() {
                while !s.is_char_boundary(room) {
                    room -= 1;
                }
            }
            let taken = &s[..room.min(s.len())];
            dst.push_str(taken);
            self.kept += taken.len();
        }
    }

    /// Suites without cases are left out: they are the wrappers of nested suites, or
    /// suites of a tool that collected nothing, and neither tells a reader anything.
    fn finish(self) -> Vec<Suite> {
        let mask = self.mask;
        let mut suites = self.suites;
        suites.retain(|s| !s.cases.is_empty());
        for s in &mut suites {
            s.out = clip(&mask(&s.out), MAX_TEXT, Keep::Start);
            s.err = clip(&mask(&s.err), MAX_TEXT, Keep::Start);
        }
        suites
    }
}

fn attr(e: &BytesStart<'_>, key: &str) -> Result<Option<String>, ImportError> {
    match e.try_get_attribute(key)? {
        Some(a) => Ok(Some(
            a.normalized_value(XmlVersion::Implicit1_0)?.into_owned(),
        )),
        None => Ok(None),
    }
}

/// Entities other than the five predefined ones and character references are kept as
/// written: a JUnit file (or a coverage report) has no business declaring its own.
pub(crate) fn resolve(r: &BytesRef<'_>) -> String {
    match r.resolve_char_ref() {
        Ok(Some(c)) => c.to_string(),
        Ok(None) => quick_xml::escape::resolve_predefined_entity(r)
            .map_or_else(|| format!("&{};", &**r), str::to_owned),
        Err(_) => '\u{FFFD}'.to_string(),
    }
}

/// Tools write seconds, some with thousands separators (`1,234.5`), some localised with a
/// decimal comma (`0,5`); anything else (negative, `NaN`, empty) is dropped rather than
/// copied into a report it would break.
fn parse_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    let s = if s.contains('.') {
        s.replace(',', "")
    } else {
        s.replace(',', ".")
    };
    Duration::try_from_secs_f64(s.parse().ok()?).ok()
}
