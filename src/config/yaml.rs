//! A YAML document as a tree of [`Node`]s that remember where they came from.
//!
//! serde-style deserialisation stops at the first error and forgets where values were; the
//! validator needs neither. So the file is parsed once with `saphyr-parser`'s event stream into
//! this small tree: every node keeps its byte span, mappings keep every pair in file order
//! (duplicate keys included, so the validator can point at both), and scalars keep whether they
//! were quoted, which decides whether `123` is a number or a string.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Anchors can make a small file expand into a huge tree ("billion laughs"); past this many
/// nodes the file is refused.
const MAX_NODES: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Byte range of the node in the source text.
    pub(crate) span: Range<usize>,
    pub(crate) kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Scalar { value: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A plain `~`, `null` or empty scalar.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Calls `f` with every scalar value of the tree (not mapping keys), with its node.
    pub(crate) fn visit_scalars<'n>(&'n self, f: &mut dyn FnMut(&'n Node, &'n str)) {
        match &self.kind {
            NodeKind::Scalar { value, .. } => f(self, value),
            NodeKind::Seq(items) => items.iter().for_each(|n| n.visit_scalars(f)),
            NodeKind::Map(pairs) => pairs.iter().for_each(|(_, v)| v.visit_scalars(f)),
        }
    }

    /// Calls `f` with every mapping key of the tree.
    pub(crate) fn visit_keys<'n>(&'n self, f: &mut dyn FnMut(&'n Node)) {
        match &self.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Seq(items) => items.iter().for_each(|n| n.visit_keys(f)),
            NodeKind::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                f(k);
                v.visit_keys(f);
            }),
        }
    }

    /// What the node is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing",
            NodeKind::Scalar { value, plain: true } => {
                if value.parse::<i64>().is_ok() || value.parse::<f64>().is_ok() {
                    "a number"
                } else if matches!(value.as_str(), "true" | "false" | "True" | "False") {
                    "a boolean"
                } else {
                    "a string"
                }
            }
            NodeKind::Scalar { .. } => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// A syntax error, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

/// Parses the first document of `text`. An empty file gives a null scalar.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder {
        offsets: &offsets,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            offset: offsets.byte(e.marker().index()),
            message: e.info().to_owned(),
        })?;
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        offset: offsets.byte(span.start.index()),
                        message: "a pipeline file holds one YAML document; remove this `---` and what follows".into(),
                    });
                }
            }
            other => builder.event(other, span)?,
        }
    }
    Ok(builder.root.unwrap_or(Node {
        span: 0..0,
        kind: NodeKind::Scalar {
            value: String::new(),
            plain: true,
        },
    }))
}

/// Maps the parser's character indices to byte offsets.
struct CharOffsets {
    bytes: Vec<usize>,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let mut bytes: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        bytes.push(text.len());
        CharOffsets { bytes }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.bytes
            .get(char_index)
            .copied()
            .unwrap_or_else(|| self.bytes.last().copied().unwrap_or(0))
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        pairs: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    offsets: &'a CharOffsets,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let start = self.offsets.byte(span.start.index());
        let end = self.offsets.byte(span.end.index()).max(start);
        match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let node = Node {
                    span: start..end,
                    kind: NodeKind::Scalar {
                        value: Cow::into_owned(value),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                self.finish(node, anchor, start)
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq {
                    start,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map {
                    start,
                    anchor,
                    pairs: Vec::new(),
                    key: None,
                });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    start: s,
                    anchor,
                    items,
                }) => {
                    let node = Node {
                        span: s..end.max(s),
                        kind: NodeKind::Seq(items),
                    };
                    self.finish(node, anchor, start)
                }
                _ => Err(self.unbalanced(start)),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    start: s,
                    anchor,
                    pairs,
                    ..
                }) => {
                    let node = Node {
                        span: s..end.max(s),
                        kind: NodeKind::Map(pairs),
                    };
                    self.finish(node, anchor, start)
                }
                _ => Err(self.unbalanced(start)),
            },
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(SyntaxError {
                        offset: start,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                self.nodes += count(&node);
                let node = Node {
                    span: start..end,
                    kind: node.kind,
                };
                self.finish(node, 0, start)
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn unbalanced(&self, offset: usize) -> SyntaxError {
        SyntaxError {
            offset,
            message: "unbalanced YAML structure".into(),
        }
    }

    fn finish(&mut self, node: Node, anchor: usize, offset: usize) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                offset,
                message: format!(
                    "the document expands to more than {MAX_NODES} values (anchors and aliases included)"
                ),
            });
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { pairs, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
        Ok(())
    }
}

fn count(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        NodeKind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_keys(node: &Node) -> Vec<&str> {
        match &node.kind {
            NodeKind::Map(pairs) => pairs.iter().filter_map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn keeps_order_duplicates_and_spans() {
        let text = "b: 1\na: \"2\"\nb: [x, y]\n";
        let root = parse(text).expect("parses");
        assert_eq!(map_keys(&root), ["b", "a", "b"]);
        let NodeKind::Map(pairs) = &root.kind else {
            panic!()
        };
        assert_eq!(&text[pairs[0].1.span.clone()], "1");
        assert_eq!(
            pairs[1].1.kind,
            NodeKind::Scalar {
                value: "2".into(),
                plain: false
            }
        );
        assert!(matches!(&pairs[2].1.kind, NodeKind::Seq(items) if items.len() == 2));
    }

    #[test]
    fn spans_are_bytes_with_multibyte_text() {
        let text = "ünï: cödé\nnext: value\n";
        let root = parse(text).expect("parses");
        let NodeKind::Map(pairs) = &root.kind else {
            panic!()
        };
        assert_eq!(&text[pairs[1].1.span.clone()], "value");
        assert_eq!(&text[pairs[0].1.span.clone()], "cödé");
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let root = parse("a: &x [1, 2]\nb: *x\n").expect("parses");
        let NodeKind::Map(pairs) = &root.kind else {
            panic!()
        };
        assert!(matches!(&pairs[1].1.kind, NodeKind::Seq(items) if items.len() == 2));

        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = parse(&bomb).expect_err("refused");
        assert!(err.message.contains("more than"), "{err:?}");
    }

    #[test]
    fn syntax_errors_and_extra_documents_have_offsets() {
        let err = parse("a: [x\n").expect_err("syntax error");
        assert!(err.offset <= 6);
        let err = parse("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert_eq!(err.offset, 5);
        assert!(parse("").expect("empty").is_null());
    }
}
