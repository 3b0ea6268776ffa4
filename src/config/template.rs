//! `${NAME}` and `${STAGE.KEY}` references inside `run`, `command`, `env` and `with` values.
//!
//! [`parse`] turns a string into a [`Template`]; the validator then checks that every name
//! exists and that every stage named is an ancestor. `$${` is a literal `${`, so a shell
//! variable can still be written `$${HOME}` (or simply `$HOME`).

use std::ops::Range;

use super::pipeline::{Template, TemplatePart};

/// A reference found in a string, with its byte range in that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) part: TemplatePart,
    pub(crate) range: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) range: Range<usize>,
    pub(crate) message: String,
}

pub(crate) fn parse(text: &str) -> Result<(Template, Vec<Reference>), TemplateError> {
    let mut parts = Vec::new();
    let mut refs = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(pos) = rest.find('$') {
        literal.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(escaped) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = escaped;
            offset += pos + 3;
        } else if let Some(body) = after.strip_prefix("${") {
            let start = offset + pos;
            let Some(close) = body.find('}') else {
                return Err(TemplateError {
                    range: start..text.len(),
                    message: "`${` is not closed by `}`".into(),
                });
            };
            let name = &body[..close];
            let range = start..start + close + 3;
            let part = reference(name).ok_or_else(|| TemplateError {
                range: range.clone(),
                message: format!("`${{{name}}}` is not a valid reference"),
            })?;
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part.clone());
            refs.push(Reference { part, range });
            rest = &body[close + 1..];
            offset = start + close + 3;
        } else {
            literal.push('$');
            rest = &after[1..];
            offset += pos + 1;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() || parts.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    Ok((Template { parts }, refs))
}

fn reference(name: &str) -> Option<TemplatePart> {
    let is_var = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let is_id = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match name.split_once('.') {
        None if is_var(name) => Some(TemplatePart::Var(name.to_owned())),
        Some((stage, key)) if is_id(stage) && is_id(key) => Some(TemplatePart::Output {
            stage: stage.to_owned(),
            key: key.to_owned(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> TemplatePart {
        TemplatePart::Literal(s.into())
    }

    #[test]
    fn parses_references_and_escapes() {
        let cases: &[(&str, Vec<TemplatePart>)] = &[
            ("plain $HOME", vec![lit("plain $HOME")]),
            ("", vec![lit("")]),
            (
                "a ${X} b",
                vec![lit("a "), TemplatePart::Var("X".into()), lit(" b")],
            ),
            ("$${HOME}", vec![lit("${HOME}")]),
            (
                "${backup.rehearsal-url}",
                vec![TemplatePart::Output {
                    stage: "backup".into(),
                    key: "rehearsal-url".into(),
                }],
            ),
            ("$$ $", vec![lit("$$ $")]),
        ];
        for (text, want) in cases {
            let (template, _) = parse(text).expect(text);
            assert_eq!(&template.parts, want, "{text}");
        }
    }

    #[test]
    fn reference_ranges_and_errors() {
        let (_, refs) = parse("x ${A} ${b.c}").expect("parses");
        assert_eq!(refs[0].range, 2..6);
        assert_eq!(refs[1].range, 7..13);
        assert_eq!(parse("echo ${oops").expect_err("unclosed").range, 5..11);
        assert!(parse("${1abc}").is_err());
        assert!(parse("${a b}").is_err());
    }

    #[test]
    fn source_round_trips() {
        for text in ["a ${X} $${Y} ${s.k}", "$HOME", "${A}${B}"] {
            let (template, _) = parse(text).expect(text);
            assert_eq!(template.source(), text);
        }
    }
}
