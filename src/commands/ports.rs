//! `portcullis ports`: the port law, over source trees (static mode) and this machine's
//! sockets and containers (`--live`).

use std::path::PathBuf;

use crate::cli::{PortsArgs, PortsFormat};
use crate::commands::{Error, print_note, print_warning};
use crate::exit_code;
use crate::ports::adopt::{Baseline, JUNIT_GROUP_ABOVE, Reach, SCREENFUL, Summary};
use crate::ports::{Finding, Policy, Severity, count_text};
use crate::ports::{live, scan};
use crate::report::junit::escape;

pub(crate) fn ports(args: &PortsArgs) -> Result<u8, Error> {
    let policy = policy(args).map_err(|(message, help)| Error::usage(message).help(help))?;
    let reach = Reach::new(&args.include, &args.exclude).map_err(|e| {
        Error::usage(e).help("write globs such as `--exclude 'web/**'` or `--exclude vendor`")
    })?;
    let baseline = match &args.baseline {
        Some(path) => Some(
            Baseline::read(path)
                .map_err(|e| Error::usage(e).help("write one with `--write-baseline FILE`"))?,
        ),
        None => None,
    };
    let mut findings = Vec::new();
    // Static mode for the PATHs given, or for the current folder when neither PATHs nor
    // `--live` are.
    let roots: Vec<PathBuf> = if args.paths.is_empty() && !args.live {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    if !roots.is_empty() {
        let result = scan::scan(&roots, &policy, &reach);
        if !result.errors.is_empty() && result.files == 0 {
            let what: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
            return Err(Error::usage(format!("cannot scan {}", what.join("; "))).help(
                "give folders or files that exist; relative PATHs start from the current folder",
            ));
        }
        for e in &result.errors {
            print_warning(&format!("skipped {e}"));
        }
        findings.extend(result.findings);
    }
    if args.live {
        findings.extend(live::check(&policy));
    }
    if let (Some(baseline), Some(path)) = (&baseline, &args.baseline) {
        baseline.apply(&mut findings, &path.display().to_string());
    }
    let text = match args.format {
        PortsFormat::Human => human(&findings),
        PortsFormat::Json => {
            let mut json = serde_json::to_string_pretty(&Report {
                findings: &findings,
                summary: Summary::of(&findings),
            })
            .unwrap_or_default();
            json.push('\n');
            json
        }
        PortsFormat::Junit => junit(&findings),
    };
    crate::commands::write_data(text.as_bytes())?;
    if let Some(path) = &args.write_baseline {
        let written = Baseline::of(&findings);
        written.write(path).map_err(Error::failed)?;
        print_note(&format!(
            "wrote {} to `{}`; `--baseline {}` counts them as notes from now on",
            crate::text::plural(written.findings.len(), "violation"),
            path.display(),
            path.display()
        ));
        return Ok(exit_code::PASSED);
    }
    if findings.iter().any(|f| f.severity == Severity::Violation) {
        Ok(exit_code::STAGE_FAILED)
    } else {
        Ok(exit_code::PASSED)
    }
}

/// The `--format json` document; fields in the documented order.
#[derive(serde::Serialize)]
struct Report<'a> {
    findings: &'a [Finding],
    summary: Summary,
}

/// Builds the policy; a port both allowed and forbidden, or a malformed `--allow`, is a usage
/// error.
fn policy(args: &PortsArgs) -> Result<Policy, (String, &'static str)> {
    let mut policy = Policy {
        forbid: args.forbid.iter().copied().collect(),
        require_listening: args.require_listening.iter().copied().collect(),
        exposure: args.exposure,
        ..Policy::default()
    };
    const FORM: &str = "write `--allow 3001` or `--allow 3001=frontend`";
    for a in &args.allow {
        let (port, role) = match a.split_once('=') {
            Some((port, role)) if !role.is_empty() => (port, Some(role.to_owned())),
            Some(_) => return Err((format!("`--allow {a}` has an empty role"), FORM)),
            None => (a.as_str(), None),
        };
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
            let message = format!("`--allow {a}` is not `PORT` or `PORT=ROLE` (PORT: 1-65535)");
            (message, FORM)
        })?;
        if policy.forbid.contains(&port) {
            return Err((
                format!("port `{port}` is both allowed and forbidden"),
                "keep it in one of `--allow` and `--forbid`",
            ));
        }
        policy.allow.insert(port, role);
    }
    Ok(policy)
}

fn human(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&f.line_text(f.place(None).as_deref()));
        out.push('\n');
    }
    let violations = findings
        .iter()
        .filter(|f| f.severity == Severity::Violation)
        .count();
    out.push_str(&count_text(violations, findings.len() - violations));
    out.push('\n');
    if findings.len() > SCREENFUL {
        out.push_str(&Summary::of(findings).text());
    }
    out
}

/// A JUnit document: one suite, one test case per finding (violations fail); with no
/// finding, one passing case so the document says what was checked.
fn junit(findings: &[Finding]) -> String {
    let violations = findings
        .iter()
        .filter(|f| f.severity == Severity::Violation)
        .count();
    let tests = findings.len().max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"portcullis ports\" tests=\"{tests}\" failures=\"{violations}\" errors=\"0\">\n"
    ));
    out.push_str(&format!(
        "  <testsuite name=\"ports\" tests=\"{tests}\" failures=\"{violations}\" errors=\"0\">\n"
    ));
    if findings.is_empty() {
        out.push_str("    <testcase name=\"port law\" classname=\"ports\"/>\n");
    }
    if findings.len() > JUNIT_GROUP_ABOVE {
        return junit_by_file(findings);
    }
    for f in findings {
        let name = escape(&f.case_name(f.place(None).as_deref()), true);
        let classname = escape(f.file.as_deref().unwrap_or("ports"), true);
        match f.severity {
            Severity::Violation => out.push_str(&format!(
                "    <testcase name=\"{name}\" classname=\"{classname}\"><failure type=\"{}\" message=\"{}\">{}</failure></testcase>\n",
                f.rule,
                escape(&f.message, true),
                escape(&f.message, false)
            )),
            Severity::Note => out.push_str(&format!(
                "    <testcase name=\"{name}\" classname=\"{classname}\"><system-out>note: {}</system-out></testcase>\n",
                escape(&f.message, false)
            )),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Past [`JUNIT_GROUP_ABOVE`] findings, one test case per file (and one for this machine), failing
/// when the file has a violation, with every finding of the file in its text: a dashboard of
/// hundreds of cases says less than one per file.
fn junit_by_file(findings: &[Finding]) -> String {
    let mut files: std::collections::BTreeMap<&str, Vec<&Finding>> =
        std::collections::BTreeMap::new();
    for f in findings {
        files
            .entry(f.file.as_deref().unwrap_or("this machine"))
            .or_default()
            .push(f);
    }
    let failing = files
        .values()
        .filter(|fs| fs.iter().any(|f| f.severity == Severity::Violation))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"portcullis ports\" tests=\"{}\" failures=\"{failing}\" errors=\"0\">\n",
        files.len()
    ));
    out.push_str(&format!(
        "  <testsuite name=\"ports\" tests=\"{}\" failures=\"{failing}\" errors=\"0\">\n",
        files.len()
    ));
    for (file, fs) in &files {
        let violations = fs
            .iter()
            .filter(|f| f.severity == Severity::Violation)
            .count();
        let lines: Vec<String> = fs
            .iter()
            .map(|f| f.line_text(f.place(None).as_deref()))
            .collect();
        let name = escape(file, true);
        if violations > 0 {
            let message = format!(
                "{} in {file}",
                count_text(violations, fs.len() - violations)
            );
            out.push_str(&format!(
                "    <testcase name=\"{name}\" classname=\"ports\"><failure type=\"port-law\" message=\"{}\">{}</failure></testcase>\n",
                escape(&message, true),
                escape(&lines.join("\n"), false)
            ));
        } else {
            out.push_str(&format!(
                "    <testcase name=\"{name}\" classname=\"ports\"><system-out>{}</system-out></testcase>\n",
                escape(&lines.join("\n"), false)
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
