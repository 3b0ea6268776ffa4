//! `matrix:`: one stage written once, run once per combination of values.
//!
//! The main type is [`MatrixSpec`], what the file says: axes (`python: ["3.11", "3.12"]`),
//! `include` and `exclude`, and `fail-fast`. [`MatrixSpec::combinations`] computes the
//! combinations the way GitHub Actions does: the product of the axes, less every combination an
//! `exclude` entry matches, then each `include` entry either extends the combinations whose axis
//! values it matches (when it adds only keys that are not axes) or is a combination of its own.
//!
//! Validation expands a matrix stage into one stage per combination ([`expand`]), named
//! `test (python=3.11)`: the runner schedules them as any other stages, and a stage that needs
//! `test` needs all of them. Each sees its values as `${{ matrix.KEY }}` (and in `if:` as
//! `matrix.KEY`), replaced by the values when the stage is expanded, and as the environment
//! variables `MATRIX_KEY`.

use std::sync::Arc;

use super::expr::Expr;
use super::pipeline::{Action, Stage, StageIdx, Template, TemplatePart, Uses};
use super::yaml::{Node, NodeKind};

/// Most combinations one matrix may have (GitHub's limit too).
pub(crate) const MAX_COMBINATIONS: usize = 256;

/// The name `${{ matrix.KEY }}` reads from.
pub(crate) const MATRIX: &str = "matrix";

/// One combination: keys and values in order (axes first, as written, then `include` keys).
pub(crate) type Combination = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatrixSpec {
    pub(crate) axes: Vec<(String, Vec<String>)>,
    pub(crate) include: Vec<Combination>,
    pub(crate) exclude: Vec<Combination>,
    /// A failed combination cancels the others of its matrix (default), as GitHub's
    /// `fail-fast`.
    pub(crate) fail_fast: bool,
}

impl MatrixSpec {
    /// Every key a combination may hold: the axes, then `include` keys.
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.axes.iter().map(|(k, _)| k.clone()).collect();
        for entry in &self.include {
            for (k, _) in entry {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    pub(crate) fn combinations(&self) -> Vec<Combination> {
        let mut product: Vec<Combination> = if self.axes.is_empty() {
            Vec::new()
        } else {
            vec![Vec::new()]
        };
        for (key, values) in &self.axes {
            product = product
                .into_iter()
                .flat_map(|combo| {
                    values.iter().map(move |v| {
                        let mut c = combo.clone();
                        c.push((key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        product.retain(|combo| !self.exclude.iter().any(|ex| matches(combo, ex)));
        let is_axis = |k: &str| self.axes.iter().any(|(a, _)| a == k);
        let original = product.len();
        for entry in &self.include {
            let (axis_part, extra): (Combination, Combination) =
                entry.iter().cloned().partition(|(k, _)| is_axis(k));
            let mut extended = false;
            // Added to every original combination whose axis values it does not change (a value
            // an earlier `include` added may change); else a combination of its own.
            for combo in product.iter_mut().take(original) {
                if !matches(combo, &axis_part) {
                    continue;
                }
                for (k, v) in &extra {
                    match combo.iter_mut().find(|(ck, _)| ck == k) {
                        Some(slot) => slot.1 = v.clone(),
                        None => combo.push((k.clone(), v.clone())),
                    }
                }
                extended = true;
            }
            if !extended && !product.iter().any(|c| same(c, entry)) {
                product.push(entry.clone());
            }
        }
        product
    }
}

/// Whether `combo` has every key of `pattern` with the same value.
fn matches(combo: &Combination, pattern: &Combination) -> bool {
    pattern
        .iter()
        .all(|(k, v)| combo.iter().any(|(ck, cv)| ck == k && cv == v))
}

fn same(a: &Combination, b: &Combination) -> bool {
    a.len() == b.len() && matches(a, b)
}

/// Whether two combinations hold the same keys and values, in any order.
pub(crate) fn same_values(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len()
        && b.iter()
            .all(|(k, v)| a.iter().any(|(ak, av)| ak == k && av == v))
}

/// A combination as `PORTCULLIS_MATRIX` gives it: `python=3.11, os=debian` (as in its stage's
/// name), or a JSON object when a value would make that ambiguous.
pub(crate) fn selector(combo: &Combination) -> String {
    let plain = combo.iter().all(|(_, v)| {
        !v.contains(", ") && !v.starts_with('{') && !v.trim().is_empty() && v.trim() == v
    });
    if plain {
        combo
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        let map: serde_json::Map<String, serde_json::Value> = combo
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

/// `PORTCULLIS_MATRIX`: one combination, as [`selector`] writes it or as a JSON object (GitHub's
/// `toJSON(matrix)`); JSON numbers and booleans are read as their text.
pub(crate) fn parse_selector(text: &str) -> Result<Combination, String> {
    if !text.trim_start().starts_with('{') {
        return text
            .split(", ")
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                    .ok_or_else(|| format!("`PORTCULLIS_MATRIX`: `{pair}` is not `KEY=VALUE`"))
            })
            .collect();
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("`PORTCULLIS_MATRIX` is not a JSON object: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("`PORTCULLIS_MATRIX` is not a JSON object".into());
    };
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "`PORTCULLIS_MATRIX`: `{k}` is {other}, not a value"
                    ));
                }
            };
            Ok((k, text))
        })
        .collect()
}

/// `test (python=3.11, os=debian)`.
pub(crate) fn instance_name(base: &str, combo: &Combination) -> String {
    let values: Vec<String> = combo.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{base} ({})", values.join(", "))
}

/// `MATRIX_PYTHON` for `python`.
pub(crate) fn env_name(key: &str) -> String {
    let mut name = String::from("MATRIX_");
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    name
}

/// What an expanded stage knows of its matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatrixOf {
    /// The stage's key in the file, shared by every combination.
    pub(crate) group: String,
    pub(crate) values: Combination,
    pub(crate) spec: Arc<MatrixSpec>,
}

/// The stages with every matrix stage replaced by one stage per combination, in place, and each
/// `needs` rewritten to the new positions (a need of a matrix stage becomes all of its
/// combinations). `specs[i]` is the matrix of `stages[i]`, if it has one.
pub(crate) fn expand(stages: Vec<Stage>, specs: Vec<Option<MatrixSpec>>) -> Vec<Stage> {
    // New positions of each old stage.
    let mut positions: Vec<Vec<usize>> = Vec::with_capacity(stages.len());
    let mut next = 0;
    let mut combos: Vec<Option<(Arc<MatrixSpec>, Vec<Combination>)>> = Vec::new();
    for spec in specs {
        match spec {
            Some(spec) => {
                let all = spec.combinations();
                positions.push((next..next + all.len()).collect());
                next += all.len();
                combos.push(Some((Arc::new(spec), all)));
            }
            None => {
                positions.push(vec![next]);
                next += 1;
                combos.push(None);
            }
        }
    }
    let mut out = Vec::with_capacity(next);
    for (stage, combo) in stages.into_iter().zip(combos) {
        let needs: Vec<StageIdx> = stage
            .needs
            .iter()
            .flat_map(|n| positions[n.0].iter().map(|p| StageIdx(*p)))
            .collect();
        match combo {
            None => out.push(Stage { needs, ..stage }),
            Some((spec, all)) => {
                for values in all {
                    out.push(instance(&stage, needs.clone(), &spec, values));
                }
            }
        }
    }
    out
}

fn instance(
    stage: &Stage,
    needs: Vec<StageIdx>,
    spec: &Arc<MatrixSpec>,
    values: Combination,
) -> Stage {
    let value_of = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let template = |t: &Template| substitute(t, &value_of);
    let action = |a: &Action| match a {
        Action::Run { script, shell } => Action::Run {
            script: template(script),
            shell: shell.clone(),
        },
        Action::Command { argv } => Action::Command {
            argv: argv.iter().map(template).collect(),
        },
        Action::Uses(uses) => Action::Uses(Uses {
            with: substitute_node(&uses.with, &value_of),
            ..uses.clone()
        }),
    };
    let mut env: indexmap::IndexMap<String, Template> = spec
        .keys()
        .iter()
        .map(|k| {
            (
                env_name(k),
                Template {
                    parts: vec![TemplatePart::Literal(value_of(k))],
                },
            )
        })
        .collect();
    for (k, t) in &stage.env {
        env.insert(k.clone(), template(t));
    }
    let mut condition = stage.condition.clone();
    if let Some(expr) = &condition.expr {
        condition.expr = Some(substitute_expr(expr, &value_of));
    }
    let id = instance_name(&stage.id, &values);
    let display_name = instance_name(&stage.display_name, &values);
    Stage {
        id,
        display_name,
        needs,
        condition,
        action: action(&stage.action),
        rollback: stage.rollback.as_ref().map(action),
        env,
        workdir: stage.workdir.as_ref().map(template),
        matrix: Some(MatrixOf {
            group: stage.id.clone(),
            values,
            spec: spec.clone(),
        }),
        ..stage.clone()
    }
}

fn substitute(t: &Template, value_of: &dyn Fn(&str) -> String) -> Template {
    Template {
        parts: t
            .parts
            .iter()
            .map(|p| match p {
                TemplatePart::Output { stage, key } if stage == MATRIX => {
                    TemplatePart::Literal(value_of(key))
                }
                other => other.clone(),
            })
            .collect(),
    }
}

/// Replaces `${{ matrix.KEY }}` in every string of a `with:` tree; a value holding `${{` is
/// escaped so it stays literal when the tree is expanded.
fn substitute_node(node: &Node, value_of: &dyn Fn(&str) -> String) -> Node {
    let kind = match &node.kind {
        NodeKind::Scalar { value, plain } => {
            let text = match super::template::parse(value) {
                Ok((template, _)) => substitute(&template, value_of)
                    .parts
                    .iter()
                    .map(TemplatePart::source)
                    .collect(),
                Err(_) => value.clone(),
            };
            NodeKind::Scalar {
                value: text,
                plain: *plain,
            }
        }
        NodeKind::Seq(items) => {
            NodeKind::Seq(items.iter().map(|n| substitute_node(n, value_of)).collect())
        }
        NodeKind::Map(pairs) => NodeKind::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), substitute_node(v, value_of)))
                .collect(),
        ),
    };
    Node {
        span: node.span.clone(),
        kind,
    }
}

fn substitute_expr(expr: &Expr, value_of: &dyn Fn(&str) -> String) -> Expr {
    let sub = |e: &Expr| Box::new(substitute_expr(e, value_of));
    match expr {
        Expr::Output { stage, key } if stage == MATRIX => Expr::Str(value_of(key)),
        Expr::Not(e) => Expr::Not(sub(e)),
        Expr::And(a, b) => Expr::And(sub(a), sub(b)),
        Expr::Or(a, b) => Expr::Or(sub(a), sub(b)),
        Expr::Compare(op, a, b) => Expr::Compare(*op, sub(a), sub(b)),
        Expr::Match {
            value,
            glob,
            negated,
        } => Expr::Match {
            value: sub(value),
            glob: glob.clone(),
            negated: *negated,
        },
        Expr::Call(f, args) => Expr::Call(
            *f,
            args.iter().map(|a| substitute_expr(a, value_of)).collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combo(pairs: &[(&str, &str)]) -> Combination {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spec(
        axes: &[(&str, &[&str])],
        include: &[Combination],
        exclude: &[Combination],
    ) -> MatrixSpec {
        MatrixSpec {
            axes: axes
                .iter()
                .map(|(k, vs)| {
                    (
                        (*k).to_owned(),
                        vs.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
            include: include.to_vec(),
            exclude: exclude.to_vec(),
            fail_fast: true,
        }
    }

    #[test]
    fn product_in_axis_order() {
        let s = spec(
            &[("os", &["linux", "mac"]), ("py", &["3.11", "3.12"])],
            &[],
            &[],
        );
        let names: Vec<String> = s
            .combinations()
            .iter()
            .map(|c| instance_name("test", c))
            .collect();
        assert_eq!(
            names,
            [
                "test (os=linux, py=3.11)",
                "test (os=linux, py=3.12)",
                "test (os=mac, py=3.11)",
                "test (os=mac, py=3.12)"
            ]
        );
    }

    #[test]
    fn exclude_then_include_as_github_does() {
        // GitHub's documented example: `fruit: [apple, pear]`, `animal: [cat, dog]`, include
        // entries extending and adding combinations.
        let s = spec(
            &[("fruit", &["apple", "pear"]), ("animal", &["cat", "dog"])],
            &[
                combo(&[("color", "green")]),
                combo(&[("color", "pink"), ("animal", "cat")]),
                combo(&[("fruit", "apple"), ("shape", "circle")]),
                combo(&[("fruit", "banana")]),
                combo(&[("fruit", "banana"), ("animal", "cat")]),
            ],
            &[],
        );
        let got = s.combinations();
        assert_eq!(
            got,
            vec![
                combo(&[
                    ("fruit", "apple"),
                    ("animal", "cat"),
                    ("color", "pink"),
                    ("shape", "circle")
                ]),
                combo(&[
                    ("fruit", "apple"),
                    ("animal", "dog"),
                    ("color", "green"),
                    ("shape", "circle")
                ]),
                combo(&[("fruit", "pear"), ("animal", "cat"), ("color", "pink")]),
                combo(&[("fruit", "pear"), ("animal", "dog"), ("color", "green")]),
                combo(&[("fruit", "banana")]),
                combo(&[("fruit", "banana"), ("animal", "cat")]),
            ]
        );
        let s = spec(
            &[("os", &["linux", "mac"]), ("py", &["3.11", "3.12"])],
            &[],
            &[combo(&[("os", "mac"), ("py", "3.11")])],
        );
        assert_eq!(s.combinations().len(), 3);
        let s = spec(
            &[("os", &["linux", "mac"])],
            &[],
            &[combo(&[("os", "mac")]), combo(&[("os", "linux")])],
        );
        assert!(s.combinations().is_empty());
    }

    #[test]
    fn selectors_round_trip() {
        for c in [
            combo(&[("python", "3.11"), ("os", "debian")]),
            combo(&[("msg", "a, b"), ("x", "{y}")]),
            combo(&[("v", " padded ")]),
        ] {
            assert!(
                same_values(&parse_selector(&selector(&c)).unwrap(), &c),
                "{c:?}"
            );
        }
        assert_eq!(selector(&combo(&[("python", "3.11")])), "python=3.11");
        let github = "{\n  \"python\": \"3.12\",\n  \"n\": 2\n}";
        assert!(same_values(
            &parse_selector(github).unwrap(),
            &combo(&[("python", "3.12"), ("n", "2")])
        ));
        assert!(parse_selector("python").is_err());
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("python"), "MATRIX_PYTHON");
        assert_eq!(env_name("node-version"), "MATRIX_NODE_VERSION");
    }

    #[test]
    fn with_trees_get_values_and_keep_escapes() {
        let node = Node {
            span: 0..0,
            kind: NodeKind::Scalar {
                value: "img:${{ matrix.tag }} $${{ matrix.tag }} ${{ OTHER }} ${SHELL}".into(),
                plain: true,
            },
        };
        let out = substitute_node(&node, &|k| {
            if k == "tag" {
                "v${{1}}".into()
            } else {
                String::new()
            }
        });
        let NodeKind::Scalar { value, .. } = out.kind else {
            panic!("a scalar stays a scalar")
        };
        assert_eq!(
            value,
            "img:v$${{1}} $${{ matrix.tag }} ${{ OTHER }} ${SHELL}"
        );
    }
}
