//! Diagnostics for what the user wrote in a pipeline file.
//!
//! The main type is [`ConfigError`]: one problem, with a primary label on the exact bytes at
//! fault, optional secondary labels (the other half of a duplicate, each edge of a cycle) and a
//! help line saying what to do. The validator collects every error of a file before reporting,
//! and [`FileDiagnostic`] pairs an error with its file so miette can render `file:line:col`.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    pub(crate) message: String,
    pub(crate) span: Range<usize>,
    pub(crate) label: String,
    pub(crate) related: Vec<(Range<usize>, String)>,
    pub(crate) help: Option<String>,
}

impl ConfigError {
    pub(crate) fn new(
        message: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> Self {
        ConfigError {
            message: message.into(),
            span,
            label: label.into(),
            related: Vec::new(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn related(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }
}

/// A pipeline file's name and text, shared by all of its diagnostics.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) text: Arc<str>,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a byte offset, for annotations.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

/// Line starts of a text, to place many offsets in time linear in the text and the offsets.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// The 1-based line and column (in characters) of a byte offset, and the line's length in
    /// bytes.
    pub(crate) fn locate(&self, text: &str, offset: usize) -> (usize, usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let end = self.starts.get(line).map_or(text.len(), |&s| s - 1);
        let col = text[start..offset].chars().count() + 1;
        (line, col, end.saturating_sub(start))
    }
}

/// A [`ConfigError`] together with its file, ready for miette to render.
#[derive(Debug, thiserror::Error)]
#[error("{}", error.message)]
pub(crate) struct FileDiagnostic {
    pub(crate) error: ConfigError,
    named: NamedSource<Arc<str>>,
    len: usize,
}

impl FileDiagnostic {
    pub(crate) fn new(error: ConfigError, file: &SourceFile) -> Self {
        let name = file.path.display().to_string();
        FileDiagnostic {
            error,
            named: NamedSource::new(name, file.text.clone()),
            len: file.text.len(),
        }
    }

    fn span(&self, range: &Range<usize>) -> miette::SourceSpan {
        let start = range.start.min(self.len);
        let end = range.end.clamp(start, self.len);
        (start, end - start).into()
    }
}

impl Diagnostic for FileDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.error
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.error.label.clone()),
            self.span(&self.error.span),
        );
        let others = self.error.related.iter().map(|(range, label)| {
            LabeledSpan::new_with_span(Some(label.clone()), self.span(range))
        });
        Some(Box::new(std::iter::once(primary).chain(others)))
    }
}

/// Every error of one file; validation fails with this.
#[derive(Debug)]
pub(crate) struct ConfigErrors {
    pub(crate) file: SourceFile,
    pub(crate) errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn diagnostics(&self) -> impl Iterator<Item = FileDiagnostic> + '_ {
        self.errors
            .iter()
            .map(|e| FileDiagnostic::new(e.clone(), &self.file))
    }
}

/// "did you mean" for a misspelt name: the closest candidate within edit distance 2.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2 && *d < c.len().max(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The `help:` for a misspelt name when a candidate is close: "did you mean `x`?".
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(name, candidates).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let file = SourceFile {
            path: "x.yml".into(),
            text: Arc::from("ab\nçd: x\n"),
        };
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.line_col(4), (2, 1));
        assert_eq!(file.line_col(7), (2, 4));
        assert_eq!(file.line_col(999), (3, 1));
    }

    #[test]
    fn suggestions() {
        let names = ["build", "test", "deploy"];
        assert_eq!(suggest("tset", names), Some("test"));
        assert_eq!(suggest("deplyo", names), Some("deploy"));
        assert_eq!(suggest("zzz", names), None);
        assert_eq!(suggest("a", ["b"]), None);
    }
}
