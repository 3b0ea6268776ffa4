//! The conditions GitHub and GitLab read before a job starts, evaluated as those engines do,
//! for the export simulations: GitHub's `if:` expressions (the `github` context, `==`, `!=`,
//! `&&`, `||`, `!`, the string functions and status functions) and GitLab's `rules: if:`
//! (`$VAR`, `==`, `!=`, `=~ /re/`, `!~`, `&&`, `||`, parentheses). Written from the engines'
//! documentation, apart from portcullis's own translator, so that a wrong translation shows.

use std::collections::HashMap;

/// A value of GitHub's expression language; GitHub's `&&` and `||` return an operand.
#[derive(Debug, Clone, PartialEq)]
enum Gh {
    Str(String),
    Bool(bool),
    Null,
}

impl Gh {
    fn truthy(&self) -> bool {
        match self {
            Gh::Str(s) => !s.is_empty(),
            Gh::Bool(b) => *b,
            Gh::Null => false,
        }
    }

    fn text(&self) -> String {
        match self {
            Gh::Str(s) => s.clone(),
            Gh::Bool(b) => b.to_string(),
            Gh::Null => String::new(),
        }
    }
}

/// How the needs of a job ended, for its status functions.
pub(crate) struct Status {
    /// Every need succeeded.
    pub(crate) success: bool,
    /// A job before it failed.
    pub(crate) failure: bool,
}

/// Whether GitHub runs a job with this `if:` (with or without `${{ }}`); without a status
/// function GitHub adds `success() &&`.
pub(crate) fn github_if(text: &str, github: &HashMap<&str, String>, status: &Status) -> bool {
    let inner = text
        .trim()
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .unwrap_or(text)
        .trim();
    let tokens = tokenize(inner, false);
    let mut p = GhParser {
        tokens,
        pos: 0,
        github,
        status,
    };
    let value = p.or();
    assert_eq!(
        p.pos,
        p.tokens.len(),
        "GitHub expression not read whole: `{inner}`"
    );
    let uses_status = ["success()", "failure()", "always()", "cancelled()"]
        .iter()
        .any(|f| inner.contains(f));
    value.truthy() && (uses_status || status.success)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Var(String),
    Regex(String),
    Op(&'static str),
}

fn tokenize(text: &str, gitlab: bool) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' && !gitlab {
            let mut s = String::new();
            i += 1;
            loop {
                assert!(i < chars.len(), "unclosed string in `{text}`");
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        s.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Str(s));
            continue;
        }
        if c == '"' && gitlab {
            let mut s = String::new();
            i += 1;
            while chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
            continue;
        }
        if c == '/' && gitlab {
            let mut s = String::new();
            i += 1;
            while chars[i] != '/' {
                if chars[i] == '\\' && chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Regex(s));
            continue;
        }
        if c == '$' && gitlab {
            let start = i + 1;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Var(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.' | '-'))
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
            continue;
        }
        let rest: String = chars[i..].iter().take(2).collect();
        let op = ["&&", "||", "==", "!=", "=~", "!~"]
            .into_iter()
            .find(|o| rest.starts_with(o))
            .or_else(|| {
                ["!", "(", ")", ","]
                    .into_iter()
                    .find(|o| rest.starts_with(o))
            })
            .unwrap_or_else(|| panic!("unexpected `{c}` in `{text}`"));
        out.push(Tok::Op(op));
        i += op.len();
    }
    out
}

struct GhParser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    github: &'a HashMap<&'a str, String>,
    status: &'a Status,
}

impl GhParser<'_> {
    fn eat(&mut self, op: &str) -> bool {
        if self.tokens.get(self.pos)
            == Some(&Tok::Op(match op {
                "&&" => "&&",
                "||" => "||",
                "!" => "!",
                "(" => "(",
                ")" => ")",
                "," => ",",
                "==" => "==",
                _ => "!=",
            }))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Gh {
        let mut left = self.and();
        while self.eat("||") {
            let right = self.and();
            left = if left.truthy() { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Gh {
        let mut left = self.unary();
        while self.eat("&&") {
            let right = self.unary();
            left = if left.truthy() { right } else { left };
        }
        left
    }

    fn unary(&mut self) -> Gh {
        if self.eat("!") {
            return Gh::Bool(!self.unary().truthy());
        }
        let left = self.primary();
        if self.eat("==") {
            let right = self.primary();
            return Gh::Bool(left.text().eq_ignore_ascii_case(&right.text()));
        }
        if self.eat("!=") {
            let right = self.primary();
            return Gh::Bool(!left.text().eq_ignore_ascii_case(&right.text()));
        }
        left
    }

    fn primary(&mut self) -> Gh {
        let tok = self.tokens[self.pos].clone();
        self.pos += 1;
        match tok {
            Tok::Str(s) => Gh::Str(s),
            Tok::Op("(") => {
                let v = self.or();
                assert!(self.eat(")"), "unclosed parenthesis");
                v
            }
            Tok::Word(w) if self.eat("(") => {
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.or().text().to_lowercase());
                        if self.eat(")") {
                            break;
                        }
                        assert!(self.eat(","), "`,` between arguments");
                    }
                }
                Gh::Bool(match w.as_str() {
                    "success" => self.status.success,
                    "failure" => self.status.failure,
                    "always" => true,
                    "cancelled" => false,
                    "startsWith" => args[0].starts_with(&args[1]),
                    "endsWith" => args[0].ends_with(&args[1]),
                    "contains" => args[0].contains(&args[1]),
                    other => panic!("GitHub has no function `{other}` here"),
                })
            }
            Tok::Word(w) if w == "true" => Gh::Bool(true),
            Tok::Word(w) if w == "false" => Gh::Bool(false),
            Tok::Word(w) => {
                let key = w.strip_prefix("github.").unwrap_or_else(|| {
                    panic!("a job's `if:` reads `{w}`, not in the github context")
                });
                self.github
                    .get(key)
                    .map_or(Gh::Null, |v| Gh::Str(v.clone()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Whether GitLab's `rules: - if:` holds with these CI/CD variables (unset is null).
pub(crate) fn gitlab_if(text: &str, vars: &HashMap<String, String>) -> bool {
    let tokens = tokenize(text, true);
    let mut p = GlParser {
        tokens,
        pos: 0,
        vars,
    };
    let v = p.or();
    assert_eq!(
        p.pos,
        p.tokens.len(),
        "GitLab rule not read whole: `{text}`"
    );
    v
}

struct GlParser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    vars: &'a HashMap<String, String>,
}

impl GlParser<'_> {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Tok::Op(o)) if *o == op)
    }

    fn or(&mut self) -> bool {
        let mut v = self.and();
        while self.peek_op("||") {
            self.pos += 1;
            let r = self.and();
            v = v || r;
        }
        v
    }

    fn and(&mut self) -> bool {
        let mut v = self.term();
        while self.peek_op("&&") {
            self.pos += 1;
            let r = self.term();
            v = v && r;
        }
        v
    }

    fn term(&mut self) -> bool {
        if self.peek_op("(") {
            self.pos += 1;
            let v = self.or();
            assert!(self.peek_op(")"), "unclosed parenthesis");
            self.pos += 1;
            return v;
        }
        let Tok::Var(name) = self.tokens[self.pos].clone() else {
            panic!("a rule compares a variable: {:?}", self.tokens[self.pos]);
        };
        self.pos += 1;
        let value = self.vars.get(&name).cloned();
        for op in ["==", "!=", "=~", "!~"] {
            if self.peek_op(op) {
                self.pos += 1;
                let right = self.tokens[self.pos].clone();
                self.pos += 1;
                return match (op, right) {
                    ("==", Tok::Str(s)) => value.as_deref() == Some(s.as_str()),
                    ("!=", Tok::Str(s)) => value.as_deref() != Some(s.as_str()),
                    ("==", Tok::Word(w)) if w == "null" => value.is_none(),
                    ("!=", Tok::Word(w)) if w == "null" => value.is_some(),
                    (op, Tok::Regex(re)) => {
                        let re = regex::Regex::new(&re).expect("a valid regex");
                        // An unset variable matches no pattern.
                        let matched = value.as_deref().is_some_and(|v| re.is_match(v));
                        if op == "=~" { matched } else { !matched }
                    }
                    other => panic!("GitLab compares with {other:?}?"),
                };
            }
        }
        value.is_some_and(|v| !v.is_empty())
    }
}
