//! Reading one coverage report — Cobertura XML, lcov or JaCoCo XML — into per-line hits.
//!
//! The main function is [`read`]; its result is a [`Parsed`] report: one [`FileLines`] per
//! file entry, as the report names the file ([`SourcePath`]), with each coverable line and
//! whether it ran. Only per-line data is read (Cobertura `<line number hits>`, lcov `DA:`,
//! JaCoCo `<line nr mi ci>`): the summary attributes tools write are computed differently from
//! one tool to the next (coverage.py's percentage mixes in branches when they are measured), so
//! they are kept only to be shown beside what was counted. Reports of big projects are tens of
//! MB, so both readers stream: quick-xml's pull reader, which never fetches the DTD a JaCoCo
//! report names, and lcov a line at a time.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Cobertura,
    Lcov,
    Jacoco,
}

impl Format {
    pub(crate) const NAMES: &'static [&'static str] = &["cobertura", "lcov", "jacoco"];

    pub(crate) fn parse(name: &str) -> Option<Format> {
        match name {
            "cobertura" => Some(Format::Cobertura),
            "lcov" => Some(Format::Lcov),
            "jacoco" => Some(Format::Jacoco),
            _ => None,
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Format::Cobertura => "Cobertura",
            Format::Lcov => "lcov",
            Format::Jacoco => "JaCoCo",
        }
    }
}

/// Where a report says a file is, before it is matched to a file of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourcePath {
    /// A path as written, absolute or relative; a Cobertura `filename` is relative to one of
    /// the report's `<source>` roots.
    Path { path: String, roots: Vec<String> },
    /// A JaCoCo `package/sourcefile`: the end of a path in the repository.
    Suffix(String),
}

/// One file entry of a report. A file may be listed more than once (Cobertura lists a Java
/// file's inner classes apart; lcov may repeat a record); entries are merged by file later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileLines {
    pub(crate) source: SourcePath,
    /// Each coverable line with whether it ran, in report order; a line may repeat.
    pub(crate) lines: Vec<(u32, bool)>,
}

/// A report as read.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) format: Format,
    pub(crate) files: Vec<FileLines>,
    /// What the report itself states as covered and coverable lines, when it says so.
    pub(crate) stated: Option<(u64, u64)>,
}

/// Why a report could not be read, and where in it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) message: String,
    pub(crate) at: At,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    Nowhere,
    /// A 1-based line (lcov).
    Line(u64),
    /// A byte offset (XML), turned into a line and column by [`locate`].
    Offset(u64),
    /// A 1-based line and column.
    LineCol(u64, u64),
}

impl ParseError {
    fn new(message: impl Into<String>, at: At) -> ParseError {
        ParseError {
            message: message.into(),
            at,
        }
    }

    /// `FILE:LINE:COL: message`, or `FILE: message` where no position is known.
    pub(crate) fn describe(&self, file: &str) -> String {
        match self.at {
            At::Nowhere | At::Offset(_) => format!("`{file}`: {}", self.message),
            At::Line(l) => format!("`{file}`:{l}: {}", self.message),
            At::LineCol(l, c) => format!("`{file}`:{l}:{c}: {}", self.message),
        }
    }
}

/// Reads the report at `path`; `format` is what `format:` says, else it is told by the content.
pub(crate) fn read(path: &Path, format: Option<Format>) -> Result<Parsed, ParseError> {
    // Checked before opening: opening a FIFO would block the stage.
    let meta = std::fs::metadata(path).map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::NotFound {
            "no such file".to_owned()
        } else {
            format!("cannot read it: {e}")
        };
        ParseError::new(message, At::Nowhere)
    })?;
    if !meta.is_file() {
        return Err(ParseError::new("not a regular file", At::Nowhere));
    }
    let file = File::open(path)
        .map_err(|e| ParseError::new(format!("cannot read it: {e}"), At::Nowhere))?;
    parse(BufReader::with_capacity(64 * 1024, file), format).map_err(|mut e| {
        if let At::Offset(offset) = e.at
            && let Ok(f) = File::open(path)
        {
            e.at = locate(BufReader::new(f), offset);
        }
        e
    })
}

/// Reads a report from `input`.
pub(crate) fn parse(mut input: impl BufRead, format: Option<Format>) -> Result<Parsed, ParseError> {
    let io = |e: std::io::Error| ParseError::new(format!("cannot read it: {e}"), At::Nowhere);
    // What the content starts with tells XML from lcov: leading white space and a byte-order
    // mark are skipped (and kept out of the readers, which then start at the content).
    let mut skipped_bom = false;
    let first = loop {
        let buf = input.fill_buf().map_err(io)?;
        let Some(&byte) = buf.first() else {
            return Err(ParseError::new(
                "the file is empty; the tool that writes it did not run or wrote nothing",
                At::Nowhere,
            ));
        };
        if !skipped_bom && buf.starts_with(b"\xef\xbb\xbf") {
            skipped_bom = true;
            input.consume(3);
            continue;
        }
        if byte.is_ascii_whitespace() {
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            input.consume(n);
            continue;
        }
        break byte;
    };
    if first == b'<' {
        if format == Some(Format::Lcov) {
            return Err(ParseError::new(
                "`format: lcov` was given, but the file holds XML",
                At::Nowhere,
            ));
        }
        return Xml::default().run(input, format);
    }
    match format {
        Some(Format::Lcov) => lcov(input),
        Some(f) => Err(ParseError::new(
            format!(
                "`format: {}` was given, but the file does not hold XML",
                f.title().to_lowercase()
            ),
            At::Nowhere,
        )),
        None => {
            let head = input.fill_buf().map_err(io)?;
            if head.starts_with(b"TN:") || head.starts_with(b"SF:") {
                lcov(input)
            } else {
                let line: String = String::from_utf8_lossy(head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(40)
                    .collect();
                Err(ParseError::new(
                    format!(
                        "not a coverage report: it starts with `{line}`, not an XML root \
                         element `coverage` (Cobertura) or `report` (JaCoCo), nor lcov's \
                         `TN:` or `SF:`"
                    ),
                    At::Line(1),
                ))
            }
        }
    }
}

/// The line and column of byte `offset` of a file.
fn locate(mut input: impl BufRead, offset: u64) -> At {
    let (mut line, mut col, mut seen) = (1u64, 1u64, 0u64);
    while seen < offset {
        let Ok(buf) = input.fill_buf() else { break };
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min((offset - seen) as usize);
        for &b in &buf[..n] {
            if b == b'\n' {
                line += 1;
                col = 1;
            } else if b & 0xC0 != 0x80 {
                col += 1;
            }
        }
        seen += n as u64;
        input.consume(n);
    }
    At::LineCol(line, col)
}

/// lcov: `SF:` opens a file's record, `DA:LINE,HITS` is a line, `end_of_record` closes it. A
/// record left open at the next `SF:` or at the end of the file is closed there.
fn lcov(mut input: impl BufRead) -> Result<Parsed, ParseError> {
    let mut files = Vec::new();
    let mut current: Option<FileLines> = None;
    let (mut found, mut hit, mut summed) = (0u64, 0u64, false);
    let mut raw = Vec::new();
    let mut number = 0u64;
    loop {
        raw.clear();
        let n = input
            .read_until(b'\n', &mut raw)
            .map_err(|e| ParseError::new(format!("cannot read it: {e}"), At::Line(number + 1)))?;
        if n == 0 {
            break;
        }
        number += 1;
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches(['\n', '\r']).trim();
        if line.is_empty() {
            continue;
        }
        if line == "end_of_record" {
            files.extend(current.take());
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(ParseError::new(
                format!(
                    "`{}` is not an lcov line (`KEY:VALUE` or `end_of_record`)",
                    clip(line)
                ),
                At::Line(number),
            ));
        };
        match key {
            "SF" => {
                files.extend(current.take());
                current = Some(FileLines {
                    source: SourcePath::Path {
                        path: value.to_owned(),
                        roots: Vec::new(),
                    },
                    lines: Vec::new(),
                });
            }
            "DA" => {
                let Some(file) = current.as_mut() else {
                    return Err(ParseError::new(
                        "`DA:` before any `SF:`: a line without its file",
                        At::Line(number),
                    ));
                };
                let mut parts = value.split(',');
                let line_no = parts.next().and_then(|s| s.trim().parse::<u32>().ok());
                let hits = parts.next().and_then(|s| hits(s.trim()));
                match (line_no, hits) {
                    (Some(0), Some(_)) => {}
                    (Some(l), Some(h)) => file.lines.push((l, h)),
                    _ => {
                        return Err(ParseError::new(
                            format!("`{}` is not `DA:LINE,HITS`", clip(line)),
                            At::Line(number),
                        ));
                    }
                }
            }
            "LF" | "LH" => {
                if let Ok(n) = value.trim().parse::<u64>() {
                    summed = true;
                    if key == "LF" {
                        found += n;
                    } else {
                        hit += n;
                    }
                }
            }
            // Test names, functions, branches, versions and what newer tools add.
            k if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {}
            _ => {
                return Err(ParseError::new(
                    format!(
                        "`{}` is not an lcov line (`KEY:VALUE` or `end_of_record`)",
                        clip(line)
                    ),
                    At::Line(number),
                ));
            }
        }
    }
    files.extend(current.take());
    if files.is_empty() {
        return Err(ParseError::new(
            "the lcov file holds no `SF:` record",
            At::Nowhere,
        ));
    }
    Ok(Parsed {
        format: Format::Lcov,
        files,
        stated: summed.then_some((hit, found)),
    })
}

/// A hit count: whole numbers (some tools write `-1` for lines they could not count, which is
/// not run), and the odd tool's `1.0`.
fn hits(s: &str) -> Option<bool> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n > 0);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        // Larger than i64: certainly run.
        return Some(true);
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f > 0.0)
}

fn clip(s: &str) -> String {
    if s.chars().count() > 60 {
        let mut c: String = s.chars().take(60).collect();
        c.push('…');
        c
    } else {
        s.to_owned()
    }
}

/// The XML reader's state: which root it is in and where in it.
#[derive(Default)]
struct Xml {
    format: Option<Format>,
    files: Vec<FileLines>,
    /// Open elements.
    depth: usize,
    /// Cobertura: `<source>` roots, the text of the one being read, and `<method>` depth
    /// (a method's lines repeat its class's).
    roots: Vec<String>,
    source_text: Option<String>,
    in_method: usize,
    /// JaCoCo: the package being read.
    package: String,
    /// The index in `files` of the `<class>` or `<sourcefile>` being read.
    current: Option<usize>,
    stated: Option<(u64, u64)>,
}

impl Xml {
    fn run(mut self, input: impl BufRead, given: Option<Format>) -> Result<Parsed, ParseError> {
        let mut reader = Reader::from_reader(input);
        let mut buf = Vec::new();
        loop {
            let event = match reader.read_event_into(&mut buf) {
                Ok(e) => e,
                Err(e) => {
                    return Err(ParseError::new(
                        format!("not well-formed XML: {e}"),
                        At::Offset(reader.error_position()),
                    ));
                }
            };
            let at = At::Offset(reader.buffer_position());
            let res = match event {
                Event::Start(e) => {
                    let r = self.open(&e, given);
                    self.depth += 1;
                    r
                }
                Event::Empty(e) => self
                    .open(&e, given)
                    .map(|()| self.close(e.local_name().as_ref())),
                Event::End(e) => {
                    self.depth = self.depth.saturating_sub(1);
                    self.close(e.local_name().as_ref());
                    Ok(())
                }
                Event::Text(t) => {
                    self.text(&t.xml10_content());
                    Ok(())
                }
                Event::CData(t) => {
                    self.text(&t.xml10_content());
                    Ok(())
                }
                Event::GeneralRef(r) => {
                    self.text(&crate::report::junit_import::resolve(&r));
                    Ok(())
                }
                Event::Eof => break,
                // The DOCTYPE (JaCoCo's names `report.dtd`) is skipped, never fetched.
                _ => Ok(()),
            };
            res.map_err(|message| ParseError::new(message, at))?;
            buf.clear();
        }
        let Some(format) = self.format else {
            return Err(ParseError::new(
                "the file holds no XML element",
                At::Nowhere,
            ));
        };
        if self.depth != 0 {
            return Err(ParseError::new(
                "the file ends inside an unclosed element (was it cut short?)",
                At::Offset(reader.buffer_position()),
            ));
        }
        Ok(Parsed {
            format,
            files: self.files,
            stated: self.stated,
        })
    }

    fn open(&mut self, e: &BytesStart<'_>, given: Option<Format>) -> Result<(), String> {
        let local = e.local_name();
        let name: &str = local.as_ref();
        let Some(format) = self.format else {
            let found = match name {
                "coverage" => Format::Cobertura,
                "report" => Format::Jacoco,
                other => {
                    return Err(format!(
                        "the root element is `{other}`, not `coverage` (Cobertura) or `report` (JaCoCo)"
                    ));
                }
            };
            if let Some(g) = given
                && g != found
            {
                return Err(format!(
                    "`format: {}` was given, but the root element `{name}` is {}'s",
                    g.title().to_lowercase(),
                    found.title()
                ));
            }
            self.format = Some(found);
            if found == Format::Cobertura
                && let (Some(c), Some(v)) =
                    (attr_num(e, "lines-covered")?, attr_num(e, "lines-valid")?)
            {
                self.stated = Some((c, v));
            }
            return Ok(());
        };
        match (format, name) {
            (Format::Cobertura, "source") => self.source_text = Some(String::new()),
            (Format::Cobertura, "class") => {
                let filename = attr(e, "filename")?
                    .ok_or("a `<class>` without `filename`: which file it covers is unknown")?;
                self.current = Some(self.files.len());
                self.files.push(FileLines {
                    source: SourcePath::Path {
                        path: filename,
                        roots: self.roots.clone(),
                    },
                    lines: Vec::new(),
                });
            }
            (Format::Cobertura, "method") => self.in_method += 1,
            (Format::Cobertura, "line") if self.in_method == 0 => {
                if let Some(i) = self.current {
                    let number = line_number(e, "number")?;
                    let hits = attr(e, "hits")?
                        .ok_or("a `<line>` without `hits`")
                        .map_err(str::to_owned)
                        .and_then(|h| {
                            hits(h.trim()).ok_or(format!("`hits=\"{}\"` is not a number", clip(&h)))
                        })?;
                    if number > 0 {
                        self.files[i].lines.push((number, hits));
                    }
                }
            }
            (Format::Jacoco, "package") => {
                self.package = attr(e, "name")?.unwrap_or_default();
            }
            (Format::Jacoco, "sourcefile") => {
                let file = attr(e, "name")?
                    .ok_or("a `<sourcefile>` without `name`: which file it covers is unknown")?;
                let package = self.package.trim_matches('/');
                let suffix = if package.is_empty() {
                    file
                } else {
                    format!("{package}/{file}")
                };
                self.current = Some(self.files.len());
                self.files.push(FileLines {
                    source: SourcePath::Suffix(suffix),
                    lines: Vec::new(),
                });
            }
            (Format::Jacoco, "line") => {
                if let Some(i) = self.current {
                    let number = line_number(e, "nr")?;
                    let missed = attr_num(e, "mi")?.unwrap_or(0);
                    let covered = attr_num(e, "ci")?.unwrap_or(0);
                    if number > 0 && missed + covered > 0 {
                        self.files[i].lines.push((number, covered > 0));
                    }
                }
            }
            // The report's own line counter: a `<counter>` right under the root.
            (Format::Jacoco, "counter") if self.depth == 1 => {
                if attr(e, "type")?.as_deref() == Some("LINE")
                    && let (Some(m), Some(c)) = (attr_num(e, "missed")?, attr_num(e, "covered")?)
                {
                    self.stated = Some((c, m + c));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, name: &str) {
        match (self.format, name) {
            (Some(Format::Cobertura), "source") => {
                if let Some(text) = self.source_text.take() {
                    let root = text.trim();
                    if !root.is_empty() {
                        self.roots.push(root.to_owned());
                    }
                }
            }
            (Some(Format::Cobertura), "method") => {
                self.in_method = self.in_method.saturating_sub(1)
            }
            (Some(Format::Cobertura), "class") | (Some(Format::Jacoco), "sourcefile") => {
                self.current = None;
            }
            (Some(Format::Jacoco), "package") => self.package.clear(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(t) = self.source_text.as_mut() {
            t.push_str(text);
        }
    }
}

fn attr(e: &BytesStart<'_>, key: &str) -> Result<Option<String>, String> {
    match e
        .try_get_attribute(key)
        .map_err(|e| format!("not well-formed XML: {e}"))?
    {
        Some(a) => Ok(Some(
            a.normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("attribute `{key}`: {e}"))?
                .into_owned(),
        )),
        None => Ok(None),
    }
}

fn attr_num(e: &BytesStart<'_>, key: &str) -> Result<Option<u64>, String> {
    match attr(e, key)? {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("`{key}=\"{}\"` is not a whole number", clip(&v))),
        None => Ok(None),
    }
}

fn line_number(e: &BytesStart<'_>, key: &str) -> Result<u32, String> {
    let element = e.local_name();
    let element: &str = element.as_ref();
    match attr(e, key)? {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("`{key}=\"{}\"` is not a line number", clip(&v))),
        None => Err(format!("a `<{element}>` without `{key}`")),
    }
}

/// Reads a report held in memory, with XML positions as lines and columns.
#[cfg(test)]
fn parse_str(text: &str, format: Option<Format>) -> Result<Parsed, ParseError> {
    parse(text.as_bytes(), format).map_err(|mut e| {
        if let At::Offset(o) = e.at {
            e.at = locate(text.as_bytes(), o);
        }
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &Parsed, i: usize) -> Vec<(u32, bool)> {
        p.files[i].lines.clone()
    }

    #[test]
    fn cobertura_reads_lines_of_classes_not_methods() {
        let xml = r#"<?xml version="1.0" ?>
<coverage version="7.18.0" lines-valid="5" lines-covered="3" line-rate="0.6">
  <sources>
    <source>/ci/app/src</source>
    <source>/ci/app/lib</source>
  </sources>
  <packages><package name="."><classes>
    <class name="a.py" filename="a.py">
      <methods><method name="f"><lines><line number="1" hits="9"/></lines></method></methods>
      <lines>
        <line number="1" hits="1"/>
        <line number="2" hits="0" branch="true" condition-coverage="50% (1/2)"/>
        <line number="3" hits="0"><conditions><condition number="0" type="jump" coverage="0%"/></conditions></line>
      </lines>
    </class>
    <class name="b.py" filename="pkg/b.py"><lines><line number="4" hits="12"/><line number="5" hits="1"/></lines></class>
    <class name="empty.py" filename="empty.py"><methods/><lines/></class>
  </classes></package></packages>
</coverage>
"#;
        let p = parse_str(xml, None).expect("parses");
        assert_eq!(p.format, Format::Cobertura);
        assert_eq!(p.stated, Some((3, 5)));
        assert_eq!(p.files.len(), 3);
        assert_eq!(
            p.files[0].source,
            SourcePath::Path {
                path: "a.py".into(),
                roots: vec!["/ci/app/src".into(), "/ci/app/lib".into()]
            }
        );
        assert_eq!(lines(&p, 0), vec![(1, true), (2, false), (3, false)]);
        assert_eq!(lines(&p, 1), vec![(4, true), (5, true)]);
        assert!(lines(&p, 2).is_empty());
    }

    #[test]
    fn jacoco_reads_sourcefiles_and_skips_the_doctype() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd"><report name="demo"><sessioninfo id="x" start="1" dump="2"/><group name="mod"><package name="com/example"><class name="com/example/Calc" sourcefilename="Calc.java"><method name="add" desc="(II)I" line="5"><counter type="LINE" missed="0" covered="1"/></method></class><sourcefile name="Calc.java"><line nr="3" mi="3" ci="0" mb="0" cb="0"/><line nr="5" mi="0" ci="4" mb="0" cb="0"/><line nr="9" mi="1" ci="1" mb="1" cb="1"/><line nr="10" mi="0" ci="0" mb="0" cb="0"/><counter type="LINE" missed="1" covered="2"/></sourcefile></package></group><package name=""><sourcefile name="Top.java"><line nr="1" mi="0" ci="2"/></sourcefile></package><counter type="INSTRUCTION" missed="12" covered="10"/><counter type="LINE" missed="1" covered="3"/></report>"#;
        let p = parse_str(xml, None).expect("parses");
        assert_eq!(p.format, Format::Jacoco);
        assert_eq!(p.stated, Some((3, 4)));
        assert_eq!(
            p.files[0].source,
            SourcePath::Suffix("com/example/Calc.java".into())
        );
        assert_eq!(lines(&p, 0), vec![(3, false), (5, true), (9, true)]);
        assert_eq!(p.files[1].source, SourcePath::Suffix("Top.java".into()));
    }

    #[test]
    fn lcov_records_with_crlf_branches_and_a_missing_end_of_record() {
        let text = "TN:\r\nSF:/abs/src/a.rs\r\nFN:1,main\r\nFNDA:1,main\r\nDA:1,1\r\nDA:2,0\r\nBRDA:2,0,0,-\r\nDA:3,5,abc\r\nLF:3\r\nLH:2\r\nend_of_record\r\nSF:src/b.rs\r\nDA:7,0\r\nDA:7,2\r\nLF:1\r\nLH:1\r\nSF:src/c.rs\r\nDA:1,-1\r\n";
        let p = parse_str(text, None).expect("parses");
        assert_eq!(p.format, Format::Lcov);
        assert_eq!(p.stated, Some((3, 4)));
        assert_eq!(p.files.len(), 3);
        assert_eq!(
            p.files[0].source,
            SourcePath::Path {
                path: "/abs/src/a.rs".into(),
                roots: vec![]
            }
        );
        assert_eq!(lines(&p, 0), vec![(1, true), (2, false), (3, true)]);
        assert_eq!(lines(&p, 1), vec![(7, false), (7, true)]);
        assert_eq!(lines(&p, 2), vec![(1, false)]);
    }

    #[test]
    fn bad_reports_say_what_and_where() {
        let cases: &[(&str, Option<Format>, &str, At)] = &[
            ("", None, "the file is empty", At::Nowhere),
            ("  \n\n", None, "the file is empty", At::Nowhere),
            (
                "{\"totals\": {}}",
                None,
                "not a coverage report",
                At::Line(1),
            ),
            ("TN:\nDA:1,1\n", None, "`DA:` before any `SF:`", At::Line(2)),
            (
                "SF:a\nDA:x,1\n",
                None,
                "`DA:x,1` is not `DA:LINE,HITS`",
                At::Line(2),
            ),
            ("SF:a\nDA:1\n", None, "is not `DA:LINE,HITS`", At::Line(2)),
            (
                "SF:a\nthis is not lcov\n",
                None,
                "is not an lcov line",
                At::Line(2),
            ),
            ("TN:\n", None, "no `SF:` record", At::Nowhere),
            (
                "<coverage>\n  <packages>\n    <class filename=\"a\"><line number=\"1\" hits=\"1\"></class>",
                None,
                "not well-formed XML",
                At::LineCol(3, 51),
            ),
            (
                "<coverage><packages>",
                None,
                "ends inside an unclosed element",
                At::LineCol(1, 21),
            ),
            (
                "<testsuites/>",
                None,
                "the root element is `testsuites`",
                At::LineCol(1, 14),
            ),
            (
                "<coverage>\n<class filename=\"a\"><line number=\"one\" hits=\"1\"/></class></coverage>",
                None,
                "`number=\"one\"` is not a line number",
                At::LineCol(2, 50),
            ),
            (
                "<coverage/>",
                Some(Format::Jacoco),
                "`format: jacoco` was given",
                At::LineCol(1, 12),
            ),
            (
                "<report/>",
                Some(Format::Lcov),
                "`format: lcov` was given",
                At::Nowhere,
            ),
            (
                "SF:a\n",
                Some(Format::Cobertura),
                "does not hold XML",
                At::Nowhere,
            ),
        ];
        for (text, format, needle, at) in cases {
            let e = parse_str(text, *format).expect_err(text);
            assert!(e.message.contains(needle), "{text:?}: {}", e.message);
            assert_eq!(e.at, *at, "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn a_bom_and_leading_blank_lines_are_skipped() {
        let p = parse_str("\u{feff}\n\nSF:a\nDA:1,1\nend_of_record\n", None).expect("lcov");
        assert_eq!(p.files.len(), 1);
        let p = parse_str("\u{feff}<?xml version=\"1.0\"?><coverage/>", None).expect("xml");
        assert_eq!(p.format, Format::Cobertura);
        assert!(p.files.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let e = ParseError::new("bad", At::Line(4));
        assert_eq!(e.describe("lcov.info"), "`lcov.info`:4: bad");
        let e = ParseError::new("bad", At::LineCol(2, 7));
        assert_eq!(e.describe("cov.xml"), "`cov.xml`:2:7: bad");
        let e = ParseError::new("bad", At::Nowhere);
        assert_eq!(e.describe("cov.xml"), "`cov.xml`: bad");
    }
}
