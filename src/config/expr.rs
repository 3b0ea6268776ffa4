//! The expressions of `if:`: comparisons, pattern matches, `&&`, `||`, `!`, parentheses and the
//! status functions.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := compare ( "&&" compare )*
//! compare := unary ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~" ) unary )?
//! unary   := "!" unary | primary
//! primary := STRING | NUMBER | true | false | null | NAME | STAGE.KEY
//!          | FUNC "(" [ expr ( "," expr )* ] ")" | "(" expr ")"
//! ```
//!
//! A bare `NAME` is a variable (the pipeline's `env`, a `--var`, a built-in such as
//! `PORTCULLIS_BRANCH`); `STAGE.KEY` is an output of an ancestor stage. Strings are quoted with
//! `'` (a doubled `''` is one quote) or `"`. The right side of `=~` / `!~` is a glob written as a
//! string (`'release/*'`). The whole may be wrapped in `${{ }}`, as GitHub writes it, which is
//! also how an expression starting with `!` is written without YAML reading it as a tag.
//!
//! [`parse`] gives an [`Expr`] or an error with its byte range in the expression; the validator
//! checks the names. [`Expr::eval`] computes a value from an [`Env`]; [`Expr::explain`] lists the
//! names it read with their values, for the reason a stage was skipped.

use std::fmt;
use std::ops::Range;

/// A parsed `if:` expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Var(String),
    Output {
        stage: String,
        key: String,
    },
    Call(Func, Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    /// `=~` (or `!~` when `negated`): the left side's text against a glob.
    Match {
        value: Box<Expr>,
        glob: String,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Success,
    Failure,
    Always,
    Cancelled,
    Contains,
    StartsWith,
    EndsWith,
}

impl Func {
    const ALL: [(&'static str, Func, usize); 7] = [
        ("success", Func::Success, 0),
        ("failure", Func::Failure, 0),
        ("always", Func::Always, 0),
        ("cancelled", Func::Cancelled, 0),
        ("contains", Func::Contains, 2),
        ("startsWith", Func::StartsWith, 2),
        ("endsWith", Func::EndsWith, 2),
    ];

    pub(crate) fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f, _)| *f == self)
            .map_or("", |(n, _, _)| n)
    }

    fn arity(self) -> usize {
        Func::ALL
            .iter()
            .find(|(_, f, _)| *f == self)
            .map_or(0, |(_, _, a)| *a)
    }

    /// Whether the function asks how the run is going.
    pub(crate) fn is_status(self) -> bool {
        matches!(
            self,
            Func::Success | Func::Failure | Func::Always | Func::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A value while evaluating.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Value {
    /// False for `false`, null, `0`, the empty string and the strings `false` and `0` (a
    /// variable set to `false` means false); true for anything else.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Null => false,
            Value::Num(n) => *n != 0.0,
            Value::Str(s) => {
                let s = s.trim();
                !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0")
            }
        }
    }

    pub(crate) fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => format_number(*n),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            Value::Bool(_) | Value::Null => None,
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// How the run stands when a condition is evaluated, and where names get their values.
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn output(&self, stage: &str, key: &str) -> Option<String>;
    /// Every need passed and the run has not aborted.
    fn success(&self) -> bool;
    /// The run has failed or was interrupted.
    fn failure(&self) -> bool;
    /// The run was interrupted.
    fn cancelled(&self) -> bool;
}

impl Expr {
    pub(crate) fn eval(&self, env: &dyn Env) -> Value {
        match self {
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Num(n) => Value::Num(*n),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Null => Value::Null,
            Expr::Var(name) => env.var(name).map_or(Value::Null, Value::Str),
            Expr::Output { stage, key } => env.output(stage, key).map_or(Value::Null, Value::Str),
            Expr::Not(e) => Value::Bool(!e.eval(env).truthy()),
            Expr::And(a, b) => {
                let left = a.eval(env);
                if left.truthy() { b.eval(env) } else { left }
            }
            Expr::Or(a, b) => {
                let left = a.eval(env);
                if left.truthy() { left } else { b.eval(env) }
            }
            Expr::Compare(op, a, b) => Value::Bool(compare(*op, &a.eval(env), &b.eval(env))),
            Expr::Match {
                value,
                glob,
                negated,
            } => {
                let matched =
                    glob_matcher(glob).is_some_and(|m| m.is_match(value.eval(env).text()));
                Value::Bool(matched != *negated)
            }
            Expr::Call(func, args) => {
                let text = |i: usize| args.get(i).map(|a| a.eval(env).text()).unwrap_or_default();
                Value::Bool(match func {
                    Func::Success => env.success(),
                    Func::Failure => env.failure(),
                    Func::Always => true,
                    Func::Cancelled => env.cancelled(),
                    Func::Contains => text(0).contains(&text(1)),
                    Func::StartsWith => text(0).starts_with(&text(1)),
                    Func::EndsWith => text(0).ends_with(&text(1)),
                })
            }
        }
    }

    /// Every sub-expression, this one first.
    pub(crate) fn walk(&self, visit: &mut dyn FnMut(&Expr)) {
        visit(self);
        match self {
            Expr::Not(e) => e.walk(visit),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) => {
                a.walk(visit);
                b.walk(visit);
            }
            Expr::Match { value, .. } => value.walk(visit),
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(visit)),
            Expr::Str(_)
            | Expr::Num(_)
            | Expr::Bool(_)
            | Expr::Null
            | Expr::Var(_)
            | Expr::Output { .. } => {}
        }
    }

    /// Whether the expression calls `failure()`, `always()` or `cancelled()`: then it decides on
    /// its own whether the stage runs after a failure. Without them, as in GitHub Actions, the
    /// stage also needs every need to have passed (an implicit `success() &&`).
    pub(crate) fn decides_status(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            if let Expr::Call(f, _) = e
                && f.is_status()
                && *f != Func::Success
            {
                found = true;
            }
        });
        found
    }

    /// The variables and outputs the expression reads, in order, without repeats: `NAME` or
    /// `STAGE.KEY`.
    pub(crate) fn names(&self) -> Vec<Name> {
        let mut out: Vec<Name> = Vec::new();
        self.walk(&mut |e| {
            let name = match e {
                Expr::Var(n) => Name::Var(n.clone()),
                Expr::Output { stage, key } => Name::Output {
                    stage: stage.clone(),
                    key: key.clone(),
                },
                _ => return,
            };
            if !out.contains(&name) {
                out.push(name);
            }
        });
        out
    }

    /// What each name read was worth, for a skip reason: `PORTCULLIS_BRANCH = 'feature/x'`.
    /// Unset names read `(unset)`; `mask` hides secret values.
    pub(crate) fn explain(&self, env: &dyn Env, mask: &dyn Fn(&str) -> String) -> String {
        let mut parts: Vec<String> = Vec::new();
        for name in self.names() {
            let (label, value) = match &name {
                Name::Var(n) => (n.clone(), env.var(n)),
                Name::Output { stage, key } => (format!("{stage}.{key}"), env.output(stage, key)),
            };
            parts.push(match value {
                Some(v) => format!("{label} = '{}'", mask(&v)),
                None => format!("{label} (unset)"),
            });
        }
        let mut statuses: Vec<String> = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(f, _) = e
                && f.is_status()
                && *f != Func::Always
            {
                let value = match f {
                    Func::Success => env.success(),
                    Func::Failure => env.failure(),
                    _ => env.cancelled(),
                };
                let text = format!("{}() = {value}", f.name());
                if !statuses.contains(&text) {
                    statuses.push(text);
                }
            }
        });
        parts.extend(statuses);
        parts.join(", ")
    }
}

/// A name an expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    Var(String),
    Output { stage: String, key: String },
}

/// `==` and `!=` compare text, unless one side is a number written as one (`N == 3`): then
/// both as numbers when the other reads as one. So `matrix.python == '3.10'` is false for `3.1`.
/// `<`, `<=`, `>`, `>=` compare as numbers when both sides read as numbers (`'10' > '9'`), else
/// as text.
fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let numeric = match op {
        CmpOp::Eq | CmpOp::Ne => matches!(a, Value::Num(_)) || matches!(b, Value::Num(_)),
        _ => true,
    };
    let ordering = match (a.number(), b.number()) {
        (Some(x), Some(y)) if numeric => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.text().cmp(&b.text()),
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    }
}

/// The matcher of a glob of `=~`: `*` and `?` match `/` too, so `release/*` matches
/// `release/1.2/rc1`.
pub(crate) fn glob_matcher(glob: &str) -> Option<globset::GlobMatcher> {
    globset::GlobBuilder::new(glob)
        .literal_separator(false)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

/// The expression as portcullis writes it (for `plan`, `graph`, skip reasons).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

impl Expr {
    /// Precedence: 0 or, 1 and, 2 not, 3 comparison, 4 primary.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(..) => 0,
            Expr::And(..) => 1,
            Expr::Compare(..) | Expr::Match { .. } => 2,
            Expr::Not(_) => 3,
            _ => 4,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, outer: u8) -> fmt::Result {
        let paren = self.precedence() < outer;
        if paren {
            f.write_str("(")?;
        }
        match self {
            Expr::Str(s) => write!(f, "'{}'", s.replace('\'', "''"))?,
            Expr::Num(n) => f.write_str(&format_number(*n))?,
            Expr::Bool(b) => write!(f, "{b}")?,
            Expr::Null => f.write_str("null")?,
            Expr::Var(n) => f.write_str(n)?,
            Expr::Output { stage, key } => write!(f, "{stage}.{key}")?,
            Expr::Not(e) => {
                f.write_str("!")?;
                e.write(f, 3)?;
            }
            Expr::And(a, b) => {
                a.write(f, 1)?;
                f.write_str(" && ")?;
                b.write(f, 2)?;
            }
            Expr::Or(a, b) => {
                a.write(f, 0)?;
                f.write_str(" || ")?;
                b.write(f, 1)?;
            }
            Expr::Compare(op, a, b) => {
                a.write(f, 3)?;
                write!(f, " {} ", op.as_str())?;
                b.write(f, 3)?;
            }
            Expr::Match {
                value,
                glob,
                negated,
            } => {
                value.write(f, 3)?;
                let op = if *negated { "!~" } else { "=~" };
                write!(f, " {op} '{}'", glob.replace('\'', "''"))?;
            }
            Expr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.write(f, 0)?;
                }
                f.write_str(")")?;
            }
        }
        if paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A syntax error: what, and where in the expression (byte range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) message: String,
    pub(crate) range: Range<usize>,
    pub(crate) help: String,
}

/// A name with the range it was written at, for the validator's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameAt {
    pub(crate) name: Name,
    pub(crate) range: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

const OPS: [&str; 12] = [
    "&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!", "=",
];

fn lex(text: &str, base: usize) -> Result<Vec<(Tok, Range<usize>)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let quote = c;
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(ParseError {
                        message: "this string is not closed".into(),
                        range: base + start..base + text.len(),
                        help: format!("end it with `{}`", quote as char),
                    });
                };
                if b == quote {
                    if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        value.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                let ch = text[i..].chars().next().unwrap_or('\0');
                value.push(ch);
                i += ch.len_utf8();
            }
            out.push((Tok::Str(value), base + start..base + i));
            continue;
        }
        if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let n: f64 = text[start..i].parse().map_err(|_| ParseError {
                message: format!("`{}` is not a number", &text[start..i]),
                range: base + start..base + i,
                help: "write a number like `3` or `2.5`, or quote text".into(),
            })?;
            out.push((Tok::Num(n), base + start..base + i));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
            {
                i += 1;
            }
            out.push((
                Tok::Ident(text[start..i].to_owned()),
                base + start..base + i,
            ));
            continue;
        }
        match c {
            b'(' => {
                out.push((Tok::LParen, base + i..base + i + 1));
                i += 1;
                continue;
            }
            b')' => {
                out.push((Tok::RParen, base + i..base + i + 1));
                i += 1;
                continue;
            }
            b',' => {
                out.push((Tok::Comma, base + i..base + i + 1));
                i += 1;
                continue;
            }
            _ => {}
        }
        if let Some(op) = OPS.iter().find(|op| text[i..].starts_with(**op)) {
            if *op == "=" {
                return Err(ParseError {
                    message: "`=` is not an operator here".into(),
                    range: base + i..base + i + 1,
                    help: "compare with `==`".into(),
                });
            }
            out.push((Tok::Op(op), base + i..base + i + op.len()));
            i += op.len();
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or('\0');
        let help = if ch == '$' {
            "name a variable without `$`, e.g. `PORTCULLIS_BRANCH == 'main'`".to_owned()
        } else {
            "use `==`, `!=`, `<`, `>`, `=~`, `&&`, `||`, `!`, parentheses, quoted strings and names"
                .to_owned()
        };
        return Err(ParseError {
            message: format!("unexpected `{ch}`"),
            range: base + i..base + i + ch.len_utf8(),
            help,
        });
    }
    Ok(out)
}

/// Parses an `if:` value. Returns the expression and every name it reads with its range.
pub(crate) fn parse(text: &str) -> Result<(Expr, Vec<NameAt>), ParseError> {
    let (inner, base) = unwrap_braces(text);
    let tokens = lex(inner, base)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: base + inner.len(),
        names: Vec::new(),
    };
    if p.tokens.is_empty() {
        return Err(ParseError {
            message: "the condition is empty".into(),
            range: 0..text.len(),
            help: "write an expression such as `PORTCULLIS_BRANCH == 'main'`, or leave `if:` out"
                .into(),
        });
    }
    let expr = p.or()?;
    if let Some((tok, range)) = p.tokens.get(p.pos) {
        let help = if matches!(tok, Tok::Ident(_) | Tok::Str(_)) {
            "join conditions with `&&` or `||`"
        } else {
            "remove it, or add what it should apply to"
        };
        return Err(ParseError {
            message: "unexpected text after the condition".into(),
            range: range.clone(),
            help: help.into(),
        });
    }
    Ok((expr, p.names))
}

/// `${{ X }}` → (`X`, offset of `X`); anything else as it is.
fn unwrap_braces(text: &str) -> (&str, usize) {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("${{")
        && let Some(inner) = rest.strip_suffix("}}")
    {
        let offset = text.find("${{").unwrap_or(0) + 3;
        return (inner, offset);
    }
    (text, 0)
}

struct Parser {
    tokens: Vec<(Tok, Range<usize>)>,
    pos: usize,
    end: usize,
    names: Vec<NameAt>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn range(&self) -> Range<usize> {
        self.tokens
            .get(self.pos)
            .map_or(self.end..self.end, |(_, r)| r.clone())
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.peek()
            == Some(&Tok::Op(match op {
                "&&" => "&&",
                "||" => "||",
                "!" => "!",
                _ => return false,
            }))
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat_op("||") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.compare()?;
        while self.eat_op("&&") {
            let right = self.compare()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `!` binds tighter than a comparison, as in GitHub: `!A == 'x'` is `(!A) == 'x'`.
    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        let left = self.unary()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) if !matches!(*op, "&&" | "||" | "!") => *op,
            _ => return Ok(left),
        };
        self.pos += 1;
        if matches!(op, "=~" | "!~") {
            let range = self.range();
            let Some(Tok::Str(glob)) = self.peek().cloned() else {
                return Err(ParseError {
                    message: format!("`{op}` needs a quoted pattern on its right"),
                    range,
                    help: "write e.g. `PORTCULLIS_BRANCH =~ 'release/*'`".into(),
                });
            };
            if glob_matcher(&glob).is_none() {
                return Err(ParseError {
                    message: format!("`{glob}` is not a valid pattern"),
                    range,
                    help: "use `*` for any text, `?` for one character, `[abc]` for a set".into(),
                });
            }
            self.pos += 1;
            return self.no_chain(Expr::Match {
                value: Box::new(left),
                glob,
                negated: op == "!~",
            });
        }
        let cmp = match op {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        let right = self.unary()?;
        self.no_chain(Expr::Compare(cmp, Box::new(left), Box::new(right)))
    }

    /// `a == b == c` reads ambiguously: refused.
    fn no_chain(&self, expr: Expr) -> Result<Expr, ParseError> {
        if let Some(Tok::Op(op)) = self.peek()
            && !matches!(*op, "&&" | "||" | "!")
        {
            return Err(ParseError {
                message: format!("a comparison cannot be followed by `{op}`"),
                range: self.range(),
                help: "join comparisons with `&&` or `||`, or group them with parentheses".into(),
            });
        }
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let range = self.range();
        let Some(tok) = self.peek().cloned() else {
            return Err(ParseError {
                message: "the condition ends here, a value is missing".into(),
                range,
                help: "complete the expression".into(),
            });
        };
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::LParen => {
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(ParseError {
                        message: "this parenthesis is not closed".into(),
                        range,
                        help: "add `)`".into(),
                    });
                }
                self.pos += 1;
                Ok(inner)
            }
            Tok::Ident(word) => {
                if self.peek() == Some(&Tok::LParen) {
                    return self.call(&word, range);
                }
                // YAML's spellings of the constants, as an editor reading the file sees them.
                match word.as_str() {
                    "true" | "True" | "TRUE" => return Ok(Expr::Bool(true)),
                    "false" | "False" | "FALSE" => return Ok(Expr::Bool(false)),
                    "null" | "Null" | "NULL" => return Ok(Expr::Null),
                    _ => {}
                }
                let name = match word.split_once('.') {
                    None if is_var_name(&word) => Name::Var(word.clone()),
                    Some((stage, key))
                        if !stage.is_empty() && !key.is_empty() && !key.contains('.') =>
                    {
                        Name::Output {
                            stage: stage.to_owned(),
                            key: key.to_owned(),
                        }
                    }
                    _ => {
                        return Err(ParseError {
                            message: format!("`{word}` is not a name"),
                            range,
                            help: "name a variable (`PORTCULLIS_BRANCH`) or a stage's output (`STAGE.KEY`); quote text".into(),
                        });
                    }
                };
                self.names.push(NameAt {
                    name: name.clone(),
                    range,
                });
                Ok(match name {
                    Name::Var(n) => Expr::Var(n),
                    Name::Output { stage, key } => Expr::Output { stage, key },
                })
            }
            Tok::RParen | Tok::Comma | Tok::Op(_) => Err(ParseError {
                message: "a value is missing here".into(),
                range,
                help: "put a name, a quoted string, a number or a function call here".into(),
            }),
        }
    }

    fn call(&mut self, word: &str, range: Range<usize>) -> Result<Expr, ParseError> {
        let Some((_, func, arity)) = Func::ALL.iter().find(|(n, _, _)| *n == word) else {
            let names: Vec<&str> = Func::ALL.iter().map(|(n, _, _)| *n).collect();
            let help = super::errors::did_you_mean(word, names.iter().copied())
                .unwrap_or_else(|| format!("the functions are {}", names.join(", ")));
            return Err(ParseError {
                message: format!("unknown function `{word}`"),
                range,
                help,
            });
        };
        self.pos += 1; // `(`
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.or()?);
                match self.peek() {
                    Some(Tok::Comma) => self.pos += 1,
                    Some(Tok::RParen) => {
                        self.pos += 1;
                        break;
                    }
                    _ => {
                        return Err(ParseError {
                            message: format!("`{word}(` is not closed"),
                            range: self.range(),
                            help: "separate arguments with `,` and end with `)`".into(),
                        });
                    }
                }
            }
        }
        if args.len() != *arity {
            return Err(ParseError {
                message: format!(
                    "`{word}` takes {arity} argument{}, not {}",
                    if *arity == 1 { "" } else { "s" },
                    args.len()
                ),
                range,
                help: if *arity == 0 {
                    format!("write `{word}()`")
                } else {
                    format!("write `{word}(TEXT, PART)`")
                },
            });
        }
        debug_assert_eq!(func.arity(), *arity);
        Ok(Expr::Call(*func, args))
    }
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    struct TestEnv {
        vars: HashMap<&'static str, &'static str>,
        failed: bool,
        cancelled: bool,
    }

    impl Env for TestEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| (*v).to_owned())
        }
        fn output(&self, stage: &str, key: &str) -> Option<String> {
            (stage == "build" && key == "version").then(|| "1.4.0".to_owned())
        }
        fn success(&self) -> bool {
            !self.failed
        }
        fn failure(&self) -> bool {
            self.failed
        }
        fn cancelled(&self) -> bool {
            self.cancelled
        }
    }

    fn env(branch: &'static str) -> TestEnv {
        TestEnv {
            vars: HashMap::from([
                ("PORTCULLIS_BRANCH", branch),
                ("N", "10"),
                ("FLAG", "false"),
            ]),
            failed: false,
            cancelled: false,
        }
    }

    fn holds(text: &str, env: &TestEnv) -> bool {
        parse(text).unwrap().0.eval(env).truthy()
    }

    #[test]
    fn comparisons_patterns_and_logic() {
        let main = env("main");
        let feature = env("feature/x");
        assert!(holds("PORTCULLIS_BRANCH == 'main'", &main));
        assert!(!holds("PORTCULLIS_BRANCH == 'main'", &feature));
        assert!(holds("PORTCULLIS_BRANCH != \"main\"", &feature));
        assert!(holds("PORTCULLIS_BRANCH =~ 'feature/*'", &feature));
        assert!(holds("PORTCULLIS_BRANCH !~ 'release/*'", &feature));
        assert!(holds("N > 9 && N <= 10", &main));
        // Numbers compare as numbers, not as text ("10" < "9" as text).
        assert!(!holds("N < 9", &main));
        assert!(holds("!(N == 3) || false", &main));
        assert!(!holds("FLAG", &main));
        assert!(holds("!FLAG", &main));
        assert!(!holds("UNSET", &main));
        assert!(holds("UNSET == ''", &main));
        assert!(holds("build.version =~ '1.*'", &main));
        assert!(holds(
            "startsWith(PORTCULLIS_BRANCH, 'feat') && contains(build.version, '.4.')",
            &feature
        ));
        assert!(holds("endsWith('a.tar.gz', '.gz')", &main));
        assert!(holds("${{ PORTCULLIS_BRANCH == 'main' }}", &main));
        assert!(holds("'it''s' == \"it's\"", &main));
        // Quoted versions are text: 3.10 is not 3.1. A bare number compares as a number.
        assert!(!holds("'3.10' == '3.1'", &main));
        assert!(holds("N == 10.0", &main));
        assert!(!holds("N == '10.0'", &main));
    }

    #[test]
    fn precedence_binds_and_tighter_than_or() {
        let main = env("main");
        assert!(holds("true || false && false", &main));
        assert!(!holds("(true || false) && false", &main));
        assert!(!holds("!true && true", &main));
        // As in GitHub, `!` binds tighter than `==`.
        assert!(holds("!FLAG == true", &main));
        assert!(!holds("!(PORTCULLIS_BRANCH == 'main')", &main));
        assert_eq!(
            parse("!(A == 'x') && (!A) == 'y'").unwrap().0.to_string(),
            "!(A == 'x') && !A == 'y'"
        );
    }

    #[test]
    fn status_functions() {
        let mut e = env("main");
        e.failed = true;
        assert!(holds("failure()", &e));
        assert!(!holds("success()", &e));
        assert!(holds("always()", &e));
        assert!(!holds("cancelled()", &e));
        assert!(holds("failure() && PORTCULLIS_BRANCH == 'main'", &e));
        assert!(parse("failure()").unwrap().0.decides_status());
        assert!(
            parse("!cancelled() && X == '1'")
                .unwrap()
                .0
                .decides_status()
        );
        assert!(!parse("success() && X == '1'").unwrap().0.decides_status());
        assert!(!parse("X == '1'").unwrap().0.decides_status());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "PORTCULLIS_BRANCH == 'main' && success()",
            "(A == '1' || B != '2') && !failure()",
            "!(A =~ 'v*')",
            "a-b.out-put >= 3 || C",
            "contains(A, 'it''s')",
        ] {
            let (expr, _) = parse(text).unwrap();
            let shown = expr.to_string();
            assert_eq!(parse(&shown).unwrap().0, expr, "{text} -> {shown}");
        }
        assert_eq!(
            parse("(a || b) && c").unwrap().0.to_string(),
            "(a || b) && c"
        );
        assert_eq!(parse("a || (b && c)").unwrap().0.to_string(), "a || b && c");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases: [(&str, &str, &str); 9] = [
            ("A = 'x'", "`=` is not an operator here", "="),
            ("A == 'x", "this string is not closed", "'x"),
            ("A ==", "the condition ends here, a value is missing", ""),
            ("(A == 'x'", "this parenthesis is not closed", "("),
            ("sucess()", "unknown function `sucess`", "sucess"),
            ("always(1)", "`always` takes 0 arguments, not 1", "always"),
            ("A == 'x' B", "unexpected text after the condition", "B"),
            ("$A == 'x'", "unexpected `$`", "$"),
            (
                "A == 'x' == 'y'",
                "a comparison cannot be followed by `==`",
                "==",
            ),
        ];
        for (text, message, at) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.message, message, "{text}");
            assert_eq!(&text[e.range.clone()], at, "{text}");
        }
        assert!(parse("  ").is_err());
        assert!(
            parse("A =~ B")
                .unwrap_err()
                .message
                .contains("quoted pattern")
        );
    }

    #[test]
    fn names_are_listed_with_their_place() {
        let (_, names) = parse("A == 'x' && build.version != A").unwrap();
        let places: Vec<(Name, Range<usize>)> =
            names.into_iter().map(|n| (n.name, n.range)).collect();
        assert_eq!(places[0], (Name::Var("A".into()), 0..1));
        assert_eq!(
            places[1],
            (
                Name::Output {
                    stage: "build".into(),
                    key: "version".into()
                },
                12..25
            )
        );
    }

    proptest! {
        /// Whatever is written, parsing never panics; what parses prints back to the same
        /// expression, and errors point inside the text.
        #[test]
        fn any_text_parses_or_says_where(text in "[ -~]{0,40}") {
            match parse(&text) {
                Ok((expr, _)) => {
                    let shown = expr.to_string();
                    prop_assert_eq!(parse(&shown).map(|(e, _)| e), Ok(expr));
                }
                Err(e) => prop_assert!(e.range.end <= text.len() && e.range.start <= e.range.end),
            }
        }

        #[test]
        fn expressions_of_the_grammar_round_trip(
            text in proptest::collection::vec(
                prop_oneof![
                    Just("A".to_owned()),
                    Just("b.c".to_owned()),
                    Just("'x y'".to_owned()),
                    Just("3".to_owned()),
                    Just("failure()".to_owned()),
                    Just("contains(A, 'q')".to_owned()),
                ],
                1..6,
            ).prop_flat_map(|atoms| {
                let n = atoms.len();
                (
                    Just(atoms),
                    proptest::collection::vec(
                        prop_oneof![
                            Just(" && "),
                            Just(" || "),
                        ],
                        n,
                    ),
                    proptest::collection::vec(proptest::bool::ANY, n),
                )
            }).prop_map(|(atoms, ops, nots)| {
                let mut out = String::new();
                for (i, atom) in atoms.iter().enumerate() {
                    if i > 0 {
                        out.push_str(ops[i]);
                    }
                    if nots[i] {
                        out.push('!');
                    }
                    out.push_str(atom);
                }
                out
            })
        ) {
            let (expr, _) = parse(&text).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{text}: {e:?}")))?;
            let shown = expr.to_string();
            prop_assert_eq!(parse(&shown).map(|(e, _)| e), Ok(expr.clone()));
            let env = env("main");
            // Printing keeps the meaning, not only the tree.
            prop_assert_eq!(
                parse(&shown).unwrap().0.eval(&env).truthy(),
                expr.eval(&env).truthy()
            );
        }
    }

    #[test]
    fn explain_names_values() {
        let (expr, _) =
            parse("PORTCULLIS_BRANCH == 'main' && success() && MISSING != 'x'").unwrap();
        let e = env("feature/x");
        assert_eq!(
            expr.explain(&e, &|v| v.to_owned()),
            "PORTCULLIS_BRANCH = 'feature/x', MISSING (unset), success() = true"
        );
    }
}
