//! A stage's `if:` in GitHub's and GitLab's syntax.
//!
//! What an engine can read before the job starts is translated: the status functions, and
//! comparisons of the run's context (`PORTCULLIS_BRANCH`, `_TAG`, `_COMMIT`, `_EVENT`) with
//! quoted text or patterns. What it cannot read (the pipeline's own variables, stage outputs)
//! stays with portcullis, which evaluates the whole condition again inside the job: the job's
//! condition is then the translatable part of a top-level `&&` chain, so the engine never skips a
//! job portcullis would run. [`Translated::partial`] says when that happened, for a comment.

use crate::config::expr::{CmpOp, Expr, Func};
use crate::config::pipeline::Condition;
use crate::context;

/// A condition in an engine's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Translated {
    /// GitHub: the job's `if:`. GitLab: the `if:` of its rule. `None`: none needed.
    pub(crate) expr: Option<String>,
    /// GitLab only: the rule's `when:` (`on_success`, `on_failure`, `always`).
    pub(crate) when: &'static str,
    /// Parts the engine cannot read, left to portcullis inside the job.
    pub(crate) partial: Vec<String>,
}

/// A condition the engine is not given: only what lets the job start when portcullis may run
/// the stage (`always()` for one that decides on failures), and `what` for a comment.
pub(crate) fn untranslated(condition: &Condition, what: String, github: bool) -> Translated {
    let decides = condition.decides_status();
    Translated {
        expr: (github && decides).then(|| "always()".to_owned()),
        when: if decides { "always" } else { "on_success" },
        partial: vec![what],
    }
}

/// The job's `if:` for GitHub Actions.
pub(crate) fn github(condition: &Condition) -> Translated {
    let Some(expr) = &condition.expr else {
        return Translated {
            expr: None,
            when: "on_success",
            partial: Vec::new(),
        };
    };
    if let Some(text) = to_github(expr) {
        return Translated {
            expr: Some(text),
            when: "on_success",
            partial: Vec::new(),
        };
    }
    let (kept, left) = split_and(expr, &to_github);
    let mut kept = kept;
    // A condition that decides about failures must still let the job start after one; the job
    // then decides.
    if expr.decides_status() && !kept.iter().any(|k| mentions_status(k)) {
        kept.insert(0, "always()".to_owned());
    }
    Translated {
        expr: (!kept.is_empty()).then(|| kept.join(" && ")),
        when: "on_success",
        partial: left,
    }
}

/// The job's rule for GitLab CI: `when:` from the status functions, `if:` from the rest.
pub(crate) fn gitlab(condition: &Condition) -> Translated {
    let Some(expr) = &condition.expr else {
        return Translated {
            expr: None,
            when: "on_success",
            partial: Vec::new(),
        };
    };
    let mut when = "on_success";
    let mut ifs: Vec<String> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    let mut status_left = false;
    for conjunct in conjuncts(expr) {
        match conjunct {
            Expr::Call(Func::Success, _) => {}
            Expr::Call(Func::Failure, _) => when = "on_failure",
            Expr::Call(Func::Always, _) => when = "always",
            // Runs whatever happened before, except after a cancel: GitLab starts no job after
            // a cancel anyway.
            Expr::Not(inner) if matches!(**inner, Expr::Call(Func::Cancelled, _)) => {
                if when == "on_success" {
                    when = "always";
                }
            }
            other => {
                if other.decides_status() {
                    status_left = true;
                    partial.push(format!("`{other}`"));
                } else if let Some(text) = to_gitlab(other, false) {
                    ifs.push(text);
                } else {
                    partial.push(format!("`{other}`"));
                }
            }
        }
    }
    if status_left {
        // `failure() || X` and the like: the job starts whatever happened; portcullis decides.
        when = "always";
    }
    Translated {
        expr: (!ifs.is_empty()).then(|| ifs.join(" && ")),
        when,
        partial,
    }
}

fn mentions_status(text: &str) -> bool {
    ["always()", "failure()", "cancelled()"]
        .iter()
        .any(|f| text.contains(f))
}

/// The operands of a top-level `&&` chain, left to right.
fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::And(a, b) => {
            let mut out = conjuncts(a);
            out.extend(conjuncts(b));
            out
        }
        other => vec![other],
    }
}

/// The conjuncts `translate` can write, and the written form of those it cannot.
fn split_and(
    expr: &Expr,
    translate: &dyn Fn(&Expr) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for c in conjuncts(expr) {
        match translate(c) {
            Some(text) => kept.push(paren(c, text)),
            None => left.push(format!("`{c}`")),
        }
    }
    (kept, left)
}

fn paren(expr: &Expr, text: String) -> String {
    if matches!(expr, Expr::Or(..)) {
        format!("({text})")
    } else {
        text
    }
}

fn quoted_github(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// GitHub's value of a context variable, where it has one.
fn github_var(name: &str) -> Option<&'static str> {
    match name {
        context::BRANCH => Some(
            "(github.head_ref || (startsWith(github.ref, 'refs/heads/') && github.ref_name || ''))",
        ),
        context::TAG => Some("(startsWith(github.ref, 'refs/tags/') && github.ref_name || '')"),
        context::COMMIT => Some("github.sha"),
        _ => None,
    }
}

/// GitHub's event names for one of portcullis's.
fn github_events(event: &str) -> Vec<String> {
    match event {
        "pull_request" => vec!["pull_request".into(), "pull_request_target".into()],
        "manual" => vec!["workflow_dispatch".into()],
        "local" => Vec::new(),
        other => vec![other.to_owned()],
    }
}

fn to_github(expr: &Expr) -> Option<String> {
    to_github_in(expr, true)
}

/// Whether a value differs in GitHub's reading only by case: GitHub's `==`, `!=` and string
/// functions ignore case, portcullis's do not. Event names are lower case on both sides.
fn folds_case(expr: &Expr) -> bool {
    let mut found = false;
    expr.walk(&mut |e| {
        if let Expr::Var(name) = e
            && name != context::EVENT
        {
            found = true;
        }
    });
    found
}

/// `positive` is false under an odd number of `!`. A test GitHub reads ignoring case holds in
/// GitHub whenever it holds in portcullis only where it is not negated (`BRANCH == 'main'` may
/// run a job for `Main` that portcullis then skips inside; `BRANCH != 'main'` would skip one it
/// runs): negated, it is left to portcullis.
fn to_github_in(expr: &Expr, positive: bool) -> Option<String> {
    Some(match expr {
        Expr::Str(s) => quoted_github(s),
        Expr::Num(_) | Expr::Bool(_) | Expr::Null => expr.to_string(),
        Expr::Var(name) => github_var(name)?.to_owned(),
        Expr::Output { .. } => return None,
        Expr::Call(func, args) => {
            if matches!(func, Func::StartsWith | Func::EndsWith | Func::Contains)
                && !positive
                && args.iter().any(folds_case)
            {
                return None;
            }
            let args: Option<Vec<String>> = args.iter().map(to_github).collect();
            format!("{}({})", func.name(), args?.join(", "))
        }
        Expr::Not(inner) => format!("!{}", wrap(inner, to_github_in(inner, !positive)?)),
        Expr::And(a, b) => format!(
            "{} && {}",
            wrap_or(a, to_github_in(a, positive)?),
            wrap_or(b, to_github_in(b, positive)?)
        ),
        Expr::Or(a, b) => format!(
            "{} || {}",
            to_github_in(a, positive)?,
            to_github_in(b, positive)?
        ),
        Expr::Compare(op, a, b) => {
            if let Some(text) = event_compare(*op, a, b, &|events, negated| {
                let tests: Vec<String> = events
                    .iter()
                    .map(|e| {
                        format!(
                            "github.event_name {} {}",
                            if negated { "!=" } else { "==" },
                            quoted_github(e)
                        )
                    })
                    .collect();
                match (tests.len(), negated) {
                    (0, false) => "false".to_owned(),
                    (0, true) => "true".to_owned(),
                    (1, _) => tests[0].clone(),
                    (_, false) => format!("({})", tests.join(" || ")),
                    (_, true) => format!("({})", tests.join(" && ")),
                }
            }) {
                return Some(text);
            }
            // A text without letters reads the same whatever the case.
            let caseless =
                |e: &Expr| matches!(e, Expr::Str(t) if !t.chars().any(char::is_alphabetic));
            let folds = (folds_case(a) || folds_case(b)) && !caseless(a) && !caseless(b);
            match op {
                CmpOp::Eq | CmpOp::Ne if folds && (*op == CmpOp::Eq) != positive => return None,
                CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge if folds => return None,
                _ => {}
            }
            format!("{} {} {}", to_github(a)?, op.as_str(), to_github(b)?)
        }
        Expr::Match {
            value,
            glob,
            negated,
        } => {
            if folds_case(value) && *negated == positive {
                return None;
            }
            let value = to_github(value)?;
            let test = glob_as_github(&value, glob)?;
            if *negated { format!("!({test})") } else { test }
        }
    })
}

/// Parentheses around what binds looser than a unary `!`.
fn wrap(expr: &Expr, text: String) -> String {
    if matches!(
        expr,
        Expr::And(..) | Expr::Or(..) | Expr::Compare(..) | Expr::Match { .. }
    ) {
        format!("({text})")
    } else {
        text
    }
}

fn wrap_or(expr: &Expr, text: String) -> String {
    if matches!(expr, Expr::Or(..)) {
        format!("({text})")
    } else {
        text
    }
}

/// `PORTCULLIS_EVENT == 'x'` (either side): written with the engine's event names by `write`.
fn event_compare(
    op: CmpOp,
    a: &Expr,
    b: &Expr,
    write: &dyn Fn(Vec<String>, bool) -> String,
) -> Option<String> {
    let event = match (a, b) {
        (Expr::Var(v), Expr::Str(s)) | (Expr::Str(s), Expr::Var(v)) if v == context::EVENT => s,
        _ => return None,
    };
    let negated = match op {
        CmpOp::Eq => false,
        CmpOp::Ne => true,
        _ => return None,
    };
    Some(write(github_events(event).into_iter().collect(), negated))
}

/// A glob that GitHub's functions can say: no pattern, `text*`, `*text`, `*text*`.
fn glob_as_github(value: &str, glob: &str) -> Option<String> {
    let meta = |s: &str| s.contains(['*', '?', '[', ']', '{', '}', '\\']);
    let inner = glob.trim_start_matches('*').trim_end_matches('*');
    if meta(inner) {
        return None;
    }
    let starts = glob.starts_with('*');
    let ends = glob.ends_with('*') && glob.len() > 1;
    let lit = quoted_github(inner);
    Some(match (starts, ends) {
        (false, false) => format!("{value} == {lit}"),
        (false, true) => format!("startsWith({value}, {lit})"),
        (true, false) => format!("endsWith({value}, {lit})"),
        (true, true) => format!("contains({value}, {lit})"),
    })
}

/// GitLab's variables for a context variable: a branch is in one of two, by pipeline kind.
fn gitlab_vars(name: &str) -> Option<&'static [&'static str]> {
    match name {
        context::BRANCH => Some(&["$CI_COMMIT_BRANCH", "$CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"]),
        context::TAG => Some(&["$CI_COMMIT_TAG"]),
        context::COMMIT => Some(&["$CI_COMMIT_SHA"]),
        _ => None,
    }
}

fn gitlab_events(event: &str) -> Vec<String> {
    match event {
        "pull_request" => vec![
            "merge_request_event".into(),
            "external_pull_request_event".into(),
        ],
        "manual" => vec!["web".into()],
        "local" => Vec::new(),
        other => vec![other.to_owned()],
    }
}

fn quoted_gitlab(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// GitLab's rules compare a variable with text or a regular expression, and combine with `&&`,
/// `||` and parentheses; there is no `!`, so a negation is pushed down to the comparisons.
fn to_gitlab(expr: &Expr, negated: bool) -> Option<String> {
    let join = |a: &Expr, b: &Expr, and: bool| -> Option<String> {
        let and = and != negated;
        let op = if and { " && " } else { " || " };
        Some(format!(
            "({}{op}{})",
            to_gitlab(a, negated)?,
            to_gitlab(b, negated)?
        ))
    };
    match expr {
        Expr::Not(inner) => to_gitlab(inner, !negated),
        Expr::And(a, b) => join(a, b, true),
        Expr::Or(a, b) => join(a, b, false),
        // Truthy: one of the variables is set and not empty; negated, none is.
        Expr::Var(name) => Some(emptiness(gitlab_vars(name)?, negated)),
        Expr::Compare(op, a, b) => {
            let op = match (op, negated) {
                (CmpOp::Eq, false) | (CmpOp::Ne, true) => "==",
                (CmpOp::Ne, false) | (CmpOp::Eq, true) => "!=",
                _ => return None,
            };
            let (name, text) = match (&**a, &**b) {
                (Expr::Var(v), Expr::Str(s)) | (Expr::Str(s), Expr::Var(v)) => (v, s),
                _ => return None,
            };
            if name == context::EVENT {
                let tests: Vec<String> = gitlab_events(text)
                    .iter()
                    .map(|e| format!("$CI_PIPELINE_SOURCE {op} {}", quoted_gitlab(e)))
                    .collect();
                if tests.is_empty() {
                    // No GitLab pipeline is a local run; a rule that never or always holds.
                    return Some(if op == "==" {
                        "$CI_PIPELINE_SOURCE == \"local\"".to_owned()
                    } else {
                        "$CI_PIPELINE_SOURCE != \"local\"".to_owned()
                    });
                }
                return Some(combine(tests, op == "!="));
            }
            let vars = gitlab_vars(name)?;
            if text.is_empty() {
                // GitLab leaves a variable it has no value for undefined, and `null == ""` is
                // false there: "empty" is "null or empty" in every variable.
                return Some(emptiness(vars, op == "=="));
            }
            let tests: Vec<String> = vars
                .iter()
                .map(|v| format!("{v} {op} {}", quoted_gitlab(text)))
                .collect();
            // A branch is in either variable: equal to either, or different from both.
            Some(combine(tests, op == "!="))
        }
        Expr::Match {
            value,
            glob,
            negated: not,
        } => {
            let Expr::Var(name) = &**value else {
                return None;
            };
            let regex = glob_regex(glob)?;
            let op = if *not != negated { "!~" } else { "=~" };
            if name == context::EVENT {
                return None;
            }
            let tests: Vec<String> = gitlab_vars(name)?
                .iter()
                .map(|v| format!("{v} {op} {regex}"))
                .collect();
            Some(combine(tests, op == "!~"))
        }
        // `startsWith(PORTCULLIS_BRANCH, 'feat/')` is a pattern match GitLab can say.
        Expr::Call(func @ (Func::StartsWith | Func::EndsWith | Func::Contains), args) => {
            let [Expr::Var(name), Expr::Str(part)] = args.as_slice() else {
                return None;
            };
            if part.contains(['*', '?', '[', ']', '{', '}']) {
                return None;
            }
            let glob = match func {
                Func::StartsWith => format!("{part}*"),
                Func::EndsWith => format!("*{part}"),
                _ => format!("*{part}*"),
            };
            to_gitlab(
                &Expr::Match {
                    value: Box::new(Expr::Var(name.clone())),
                    glob,
                    negated: false,
                },
                negated,
            )
        }
        _ => None,
    }
}

/// Whether the context variable read from `vars` is empty (`empty`) or not, in GitLab's terms:
/// empty is every variable undefined or `""`; not empty is one of them set to something.
fn emptiness(vars: &[&str], empty: bool) -> String {
    let tests: Vec<String> = vars
        .iter()
        .map(|v| {
            if empty {
                format!("({v} == null || {v} == \"\")")
            } else {
                format!("({v} != null && {v} != \"\")")
            }
        })
        .collect();
    combine(tests, empty)
}

fn combine(tests: Vec<String>, and: bool) -> String {
    if tests.len() == 1 {
        return tests.into_iter().next().unwrap_or_default();
    }
    format!("({})", tests.join(if and { " && " } else { " || " }))
}

/// A glob as a GitLab `/regex/`: anchored, `*` any text, `?` one character.
fn glob_regex(glob: &str) -> Option<String> {
    let mut out = String::from("/^");
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' | ']' | '{' | '}' => return None,
            '/' => out.push_str("\\/"),
            c if "\\.+()|^$".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push_str("$/");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::expr;

    fn condition(text: &str) -> Condition {
        Condition {
            expr: Some(expr::parse(text).unwrap().0),
        }
    }

    #[test]
    fn github_translates_context_and_status() {
        let t = github(&condition("PORTCULLIS_BRANCH == 'main' && success()"));
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "(github.head_ref || (startsWith(github.ref, 'refs/heads/') && github.ref_name || '')) == 'main' && success()"
            )
        );
        assert!(t.partial.is_empty());
        let t = github(&condition(
            "PORTCULLIS_TAG =~ 'v*' || PORTCULLIS_EVENT == 'manual'",
        ));
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "startsWith((startsWith(github.ref, 'refs/tags/') && github.ref_name || ''), 'v') || github.event_name == 'workflow_dispatch'"
            )
        );
        let t = github(&condition("PORTCULLIS_EVENT != 'pull_request'"));
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "(github.event_name != 'pull_request' && github.event_name != 'pull_request_target')"
            )
        );
        assert_eq!(
            github(&condition("failure()")).expr.as_deref(),
            Some("failure()")
        );
    }

    #[test]
    fn github_keeps_what_it_can_and_says_what_it_cannot() {
        let t = github(&condition("PORTCULLIS_COMMIT != '' && DEPLOY == 'yes'"));
        assert_eq!(t.expr.as_deref(), Some("github.sha != ''"));
        assert_eq!(t.partial, vec!["`DEPLOY == 'yes'`".to_owned()]);
        // A failure condition that cannot be said whole must still let the job start.
        let t = github(&condition("failure() || DEPLOY == 'yes'"));
        assert_eq!(t.expr.as_deref(), Some("always()"));
        // GitHub ignores case: a negated test of a branch is left to portcullis, a plain one
        // is kept (GitHub may then start a job portcullis skips inside, never the reverse).
        let t = github(&condition(
            "PORTCULLIS_BRANCH != 'main' && PORTCULLIS_EVENT != 'schedule'",
        ));
        assert_eq!(t.expr.as_deref(), Some("github.event_name != 'schedule'"));
        assert_eq!(t.partial, vec!["`PORTCULLIS_BRANCH != 'main'`".to_owned()]);
        let t = github(&condition(
            "!(PORTCULLIS_TAG =~ 'v*') || !startsWith(PORTCULLIS_BRANCH, 'x')",
        ));
        assert_eq!(t.expr, None);
        let t = github(&condition("!(PORTCULLIS_TAG !~ 'v*')"));
        assert!(t.expr.is_some(), "{t:?}");
        let t = github(&condition("PORTCULLIS_BRANCH =~ 'rel-[0-9]*'"));
        assert_eq!(t.expr, None);
        assert_eq!(t.partial.len(), 1);
    }

    #[test]
    fn gitlab_rules() {
        let t = gitlab(&condition("PORTCULLIS_BRANCH == 'main' && success()"));
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "($CI_COMMIT_BRANCH == \"main\" || $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME == \"main\")"
            )
        );
        assert_eq!(t.when, "on_success");
        let t = gitlab(&condition("failure() && PORTCULLIS_TAG =~ 'v1.*'"));
        assert_eq!(t.when, "on_failure");
        assert_eq!(t.expr.as_deref(), Some("$CI_COMMIT_TAG =~ /^v1\\..*$/"));
        let t = gitlab(&condition(
            "!(PORTCULLIS_EVENT == 'pull_request') && always()",
        ));
        assert_eq!(t.when, "always");
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "($CI_PIPELINE_SOURCE != \"merge_request_event\" && $CI_PIPELINE_SOURCE != \"external_pull_request_event\")"
            )
        );
        let t = gitlab(&condition(
            "startsWith(PORTCULLIS_BRANCH, 'feat/') && !endsWith(PORTCULLIS_TAG, '.0')",
        ));
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "($CI_COMMIT_BRANCH =~ /^feat\\/.*$/ || $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME =~ /^feat\\/.*$/) && $CI_COMMIT_TAG !~ /^.*\\.0$/"
            )
        );
        // A bare name is true when either variable holds something; `== ''` is null or empty.
        let t = gitlab(&condition("PORTCULLIS_BRANCH"));
        assert_eq!(
            t.expr.as_deref(),
            Some(
                "(($CI_COMMIT_BRANCH != null && $CI_COMMIT_BRANCH != \"\") || ($CI_MERGE_REQUEST_SOURCE_BRANCH_NAME != null && $CI_MERGE_REQUEST_SOURCE_BRANCH_NAME != \"\"))"
            )
        );
        let t = gitlab(&condition("PORTCULLIS_TAG == ''"));
        assert_eq!(
            t.expr.as_deref(),
            Some("($CI_COMMIT_TAG == null || $CI_COMMIT_TAG == \"\")")
        );
        let t = gitlab(&condition("!PORTCULLIS_TAG"));
        assert_eq!(
            t.expr.as_deref(),
            Some("($CI_COMMIT_TAG == null || $CI_COMMIT_TAG == \"\")")
        );
        let t = gitlab(&condition("failure() || X == '1'"));
        assert_eq!((t.when, t.expr.as_deref()), ("always", None));
        assert_eq!(t.partial, vec!["`failure() || X == '1'`".to_owned()]);
    }
}
