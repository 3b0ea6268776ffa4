//! `${{ NAME }}` and `${{ STAGE.KEY }}` references inside `run`, `command`, `env` and `with`
//! values.
//!
//! [`parse`] turns a string into a [`Template`]; the validator then checks that every name
//! exists and that every stage named is an ancestor. Anything else is text: a shell's own
//! `$HOME` and `${HOME:-/root}` pass through untouched, which is why the references have double
//! braces (no shell reads `${{`). `$${{` is a literal `${{`.
//!
//! Expansion happens here and nowhere else: [`Template::render`] is the one function that puts
//! values in place of references. The runner expands scripts, argv, `env` and `workdir` with it;
//! [`expand_node`] expands a whole `with:` tree with it before a built-in kind reads a single
//! field, so a kind only ever sees final values; `plan` and `--dry-run` render with secrets
//! shown as `***` and unknown outputs left as written.

use std::collections::HashMap;
use std::ops::Range;

use super::yaml::{Node, NodeKind};

/// A string with `${NAME}` and `${STAGE.KEY}` references, already checked to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplatePart {
    Literal(String),
    /// `${NAME}`: pipeline env, a secret, or a `--var`.
    Var(String),
    /// `${STAGE.KEY}`: an output of an ancestor stage.
    Output {
        stage: String,
        key: String,
    },
}

impl TemplatePart {
    /// The reference as written, `${{ NAME }}` or `${{ STAGE.KEY }}`.
    pub(crate) fn source(&self) -> String {
        match self {
            TemplatePart::Literal(s) => s.replace("${{", "$${{"),
            TemplatePart::Var(n) => format!("${{{{ {n} }}}}"),
            TemplatePart::Output { stage, key } => format!("${{{{ {stage}.{key} }}}}"),
        }
    }
}

/// Outputs of the stages that ran, by stage then key.
pub(crate) type Outputs = HashMap<String, HashMap<String, String>>;

/// Where references get their values.
#[derive(Clone, Copy)]
pub(crate) struct Values<'a> {
    pub(crate) vars: &'a HashMap<String, String>,
    pub(crate) outputs: &'a Outputs,
}

/// A rendered template: its text, and the first reference that had no value (left as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) text: String,
    pub(crate) missing: Option<TemplatePart>,
}

impl Template {
    /// Whether the template holds any reference.
    pub(crate) fn has_references(&self) -> bool {
        self.parts
            .iter()
            .any(|p| !matches!(p, TemplatePart::Literal(_)))
    }

    /// Whether the template names variable `name`: as a reference `${NAME}`, or in its literal
    /// text as `$NAME` or `${NAME}`, which a shell (or a program reading its environment) would
    /// resolve. Literal text is matched loosely on purpose: naming a variable that is not read
    /// costs nothing, missing one that is read breaks the stage.
    pub(crate) fn names_variable(&self, name: &str) -> bool {
        self.parts.iter().any(|part| match part {
            TemplatePart::Var(n) => n == name,
            TemplatePart::Literal(text) => mentions_variable(text, name),
            TemplatePart::Output { .. } => false,
        })
    }

    /// Puts each reference's value in its place; a reference without a value stays as written
    /// and is named in [`Rendered::missing`].
    pub(crate) fn render(&self, values: Values<'_>) -> Rendered {
        let mut text = String::new();
        let mut missing = None;
        for part in &self.parts {
            let value = match part {
                TemplatePart::Literal(s) => {
                    text.push_str(s);
                    continue;
                }
                TemplatePart::Var(name) => values.vars.get(name),
                TemplatePart::Output { stage, key } => {
                    values.outputs.get(stage).and_then(|o| o.get(key))
                }
            };
            match value {
                Some(v) => text.push_str(v),
                None => {
                    text.push_str(&part.source());
                    missing.get_or_insert_with(|| part.clone());
                }
            }
        }
        Rendered { text, missing }
    }

    /// The expanded text; fails, naming the reference, when one has no value (an output the
    /// stage it names did not publish).
    pub(crate) fn expand(&self, values: Values<'_>) -> Result<String, String> {
        let rendered = self.render(values);
        match rendered.missing {
            None => Ok(rendered.text),
            Some(TemplatePart::Output { stage, key }) => Err(format!(
                "`${{{{ {stage}.{key} }}}}`: stage `{stage}` published no output `{key}`"
            )),
            Some(part) => Err(format!("`{}` has no value", part.source())),
        }
    }
}

/// Whether `text` holds `$NAME` or `${NAME}` followed by no further name character.
fn mentions_variable(text: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices('$').any(|(pos, _)| {
        let after = &text[pos + 1..];
        let after = after.strip_prefix('{').unwrap_or(after);
        after
            .strip_prefix(name)
            .is_some_and(|rest| !rest.starts_with(is_name_char))
    })
}

/// A `with:` tree after expansion.
#[derive(Debug, Clone)]
pub(crate) struct ExpandedNode {
    pub(crate) node: Node,
    /// Spans of the scalars that kept a reference without a value; a check of such a value
    /// waits until the values are known.
    pub(crate) deferred: Vec<Range<usize>>,
    /// Spans of the scalars whose references were all replaced, with the value they became, so
    /// an error about such a value can say what was read.
    pub(crate) substituted: Vec<(Range<usize>, String)>,
    /// The first reference that had no value.
    pub(crate) missing: Option<TemplatePart>,
}

/// Expands every scalar value of a tree (mapping keys are names, never expanded). A scalar that
/// held a reference becomes plain, so that `port: "${PORT}"` reads as the number it expands to.
/// Spans are kept, so a kind's error about an expanded value still points at what was written.
pub(crate) fn expand_node(node: &Node, values: Values<'_>) -> ExpandedNode {
    let mut out = ExpandedNode {
        node: Node {
            span: node.span.clone(),
            kind: NodeKind::Seq(Vec::new()),
        },
        deferred: Vec::new(),
        substituted: Vec::new(),
        missing: None,
    };
    out.node = expand_inner(node, values, &mut out);
    out
}

fn expand_inner(node: &Node, values: Values<'_>, out: &mut ExpandedNode) -> Node {
    let kind = match &node.kind {
        NodeKind::Scalar { value, plain } => match parse(value) {
            Ok((template, _)) if template.has_references() || value.contains("$${{") => {
                let rendered = template.render(values);
                if let Some(part) = rendered.missing {
                    out.deferred.push(node.span.clone());
                    out.missing.get_or_insert(part);
                } else if template.has_references() {
                    out.substituted
                        .push((node.span.clone(), rendered.text.clone()));
                }
                NodeKind::Scalar {
                    value: rendered.text,
                    plain: *plain || template.has_references(),
                }
            }
            _ => node.kind.clone(),
        },
        NodeKind::Seq(items) => {
            NodeKind::Seq(items.iter().map(|n| expand_inner(n, values, out)).collect())
        }
        NodeKind::Map(pairs) => NodeKind::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), expand_inner(v, values, out)))
                .collect(),
        ),
    };
    Node {
        span: node.span.clone(),
        kind,
    }
}

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
        if let Some(escaped) = after.strip_prefix("$${{") {
            literal.push_str("${{");
            rest = escaped;
            offset += pos + 4;
        } else if let Some(body) = after.strip_prefix("${{") {
            let start = offset + pos;
            let Some(close) = body.find("}}") else {
                return Err(TemplateError {
                    range: start..text.len(),
                    message: "`${{` is not closed by `}}`".into(),
                });
            };
            let name = body[..close].trim();
            let range = start..start + close + 5;
            let part = reference(name).ok_or_else(|| TemplateError {
                range: range.clone(),
                message: format!("`${{{{ {name} }}}}` is not a valid reference"),
            })?;
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(part.clone());
            refs.push(Reference { part, range });
            rest = &body[close + 2..];
            offset = start + close + 5;
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
            (
                "plain $HOME ${HOME} ${HOME:-/root}",
                vec![lit("plain $HOME ${HOME} ${HOME:-/root}")],
            ),
            ("", vec![lit("")]),
            (
                "a ${{ X }} b",
                vec![lit("a "), TemplatePart::Var("X".into()), lit(" b")],
            ),
            ("${{X}}", vec![TemplatePart::Var("X".into())]),
            ("$${{ HOME }}", vec![lit("${{ HOME }}")]),
            (
                "${{ backup.rehearsal-url }}",
                vec![TemplatePart::Output {
                    stage: "backup".into(),
                    key: "rehearsal-url".into(),
                }],
            ),
            ("$$ $ ${#arr[@]}", vec![lit("$$ $ ${#arr[@]}")]),
        ];
        for (text, want) in cases {
            let (template, _) = parse(text).expect(text);
            assert_eq!(&template.parts, want, "{text}");
        }
    }

    #[test]
    fn reference_ranges_and_errors() {
        let (_, refs) = parse("x ${{ A }} ${{b.c}}").expect("parses");
        assert_eq!(refs[0].range, 2..10);
        assert_eq!(refs[1].range, 11..19);
        assert_eq!(parse("echo ${{ oops").expect_err("unclosed").range, 5..13);
        assert!(parse("${{ 1abc }}").is_err());
        assert!(parse("${{ a b }}").is_err());
    }

    #[test]
    fn render_leaves_what_has_no_value_as_written() {
        let (t, _) = parse("${{ A }}-${{ B }}-${{ s.k }}").expect("parses");
        let vars: HashMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        let outputs: Outputs = [("s".to_owned(), [("k".to_owned(), "v".to_owned())].into())].into();
        let values = Values {
            vars: &vars,
            outputs: &outputs,
        };
        let r = t.render(values);
        assert_eq!(r.text, "1-${{ B }}-v");
        assert_eq!(r.missing, Some(TemplatePart::Var("B".into())));
        assert!(
            t.expand(values)
                .expect_err("B has no value")
                .contains("${{ B }}")
        );
    }

    #[test]
    fn expand_node_expands_values_not_keys_and_types_them() {
        let text = "port: \"${{ P }}\"\n\"${{ K }}\": x\nlist: [a, \"${{ P }}\"]\nlater: ${{ o.k }}\nkeep: $${{ X }}\n";
        let node = crate::config::yaml::parse(text).expect("yaml");
        let vars: HashMap<String, String> = [("P".to_owned(), "3001".to_owned())].into();
        let outputs = Outputs::new();
        let e = expand_node(
            &node,
            Values {
                vars: &vars,
                outputs: &outputs,
            },
        );
        let NodeKind::Map(pairs) = &e.node.kind else {
            panic!("a map")
        };
        assert_eq!(
            pairs[0].1.kind,
            NodeKind::Scalar {
                value: "3001".into(),
                plain: true
            }
        );
        assert_eq!(pairs[1].0.as_str(), Some("${{ K }}"));
        assert_eq!(pairs[4].1.as_str(), Some("${{ X }}"));
        assert_eq!(e.deferred.len(), 1);
        assert_eq!(
            e.missing,
            Some(TemplatePart::Output {
                stage: "o".into(),
                key: "k".into()
            })
        );
    }

    #[test]
    fn names_variable_as_reference_or_shell_variable() {
        let cases = [
            ("${{ TOKEN }}", true),
            ("curl -H \"$TOKEN\"", true),
            ("echo ${TOKEN}", true),
            ("echo ${TOKEN_2} $TOKENS $MY_TOKEN", false),
            ("echo TOKEN", false),
            ("${{ s.TOKEN }}", false),
        ];
        for (text, named) in cases {
            let (template, _) = parse(text).expect(text);
            assert_eq!(template.names_variable("TOKEN"), named, "{text}");
        }
    }

    #[test]
    fn source_round_trips() {
        for text in [
            "a ${{ X }} $${{ Y }} ${{ s.k }}",
            "$HOME ${HOME}",
            "${{ A }}${{ B }}",
        ] {
            let (template, _) = parse(text).expect(text);
            let source: String = template.parts.iter().map(TemplatePart::source).collect();
            assert_eq!(source, text);
        }
    }
}
