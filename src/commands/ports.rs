//! `portcullis ports`: the port law. Only the live check exists so far; scanning files for
//! declared ports is refused rather than faked.

use std::collections::BTreeSet;

use crate::cli::{PortsArgs, PortsFormat};
use crate::commands::print_error;
use crate::exit_code;
use crate::ports::live;
use crate::ports::{Finding, Policy, Severity};
use crate::report::junit::escape;

pub(crate) fn ports(args: &PortsArgs) -> u8 {
    if !args.live {
        let message = if args.paths.is_empty() {
            "`ports` needs `--live`: there is nothing else to check yet"
        } else {
            "scanning files for declared ports is not built yet; it comes in a later version"
        };
        print_error(
            message,
            Some("use `--live` to check the sockets listening on this machine now"),
        );
        return exit_code::INVALID;
    }
    if !args.paths.is_empty() {
        print_error(
            "`--live` checks this machine, not files; scanning PATHs is not built yet",
            Some("drop the PATHs, or drop `--live` once static scanning exists"),
        );
        return exit_code::INVALID;
    }
    let policy = match policy(args) {
        Ok(policy) => policy,
        Err(message) => {
            print_error(&message, None);
            return exit_code::INVALID;
        }
    };
    let sockets = live::read_sockets();
    let inodes: BTreeSet<u64> = sockets.iter().map(|s| s.inode).collect();
    let owners = live::socket_owners(&inodes);
    let docker = live::docker_published();
    let findings = live::evaluate(&policy, &sockets, &owners, &docker);
    let text = match args.format {
        PortsFormat::Human => human(&findings),
        PortsFormat::Json => {
            let mut json =
                serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
                    .unwrap_or_default();
            json.push('\n');
            json
        }
        PortsFormat::Junit => junit(&findings),
    };
    let written = crate::commands::write_data(text.as_bytes());
    if written != exit_code::PASSED {
        return written;
    }
    if findings.iter().any(|f| f.severity == Severity::Violation) {
        exit_code::STAGE_FAILED
    } else {
        exit_code::PASSED
    }
}

/// Builds the policy; a port both allowed and forbidden, or a malformed `--allow`, is a usage
/// error.
fn policy(args: &PortsArgs) -> Result<Policy, String> {
    let mut policy = Policy {
        forbid: args.forbid.iter().copied().collect(),
        require_listening: args.require_listening.iter().copied().collect(),
        ..Policy::default()
    };
    for a in &args.allow {
        let (port, role) = match a.split_once('=') {
            Some((port, role)) if !role.is_empty() => (port, Some(role.to_owned())),
            Some(_) => return Err(format!("`--allow {a}` has an empty role")),
            None => (a.as_str(), None),
        };
        let port: u16 =
            port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                format!("`--allow {a}` is not `PORT` or `PORT=ROLE` (PORT: 1-65535)")
            })?;
        if policy.forbid.contains(&port) {
            return Err(format!("port `{port}` is both allowed and forbidden"));
        }
        policy.allow.insert(port, role);
    }
    Ok(policy)
}

fn human(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let severity = match f.severity {
            Severity::Violation => "violation",
            Severity::Note => "note",
        };
        out.push_str(&format!("{severity}[{}]: {}\n", f.rule, f.message));
    }
    let violations = findings
        .iter()
        .filter(|f| f.severity == Severity::Violation)
        .count();
    let notes = findings.len() - violations;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    out.push_str(&format!(
        "{}, {}\n",
        plural(violations, "violation"),
        plural(notes, "note")
    ));
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
        "  <testsuite name=\"ports --live\" tests=\"{tests}\" failures=\"{violations}\" errors=\"0\">\n"
    ));
    if findings.is_empty() {
        out.push_str("    <testcase name=\"port law\" classname=\"ports\"/>\n");
    }
    for f in findings {
        let name = escape(&format!("{} port {}: {}", f.rule, f.port, f.message), true);
        match f.severity {
            Severity::Violation => out.push_str(&format!(
                "    <testcase name=\"{name}\" classname=\"ports\"><failure type=\"{}\" message=\"{}\">{}</failure></testcase>\n",
                f.rule,
                escape(&f.message, true),
                escape(&f.message, false)
            )),
            Severity::Note => out.push_str(&format!(
                "    <testcase name=\"{name}\" classname=\"ports\"><system-out>note: {}</system-out></testcase>\n",
                escape(&f.message, false)
            )),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
