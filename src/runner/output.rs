//! Where a stage's output goes: masked, to its log file, to the reporters, and into a tail.
//!
//! The main type is [`OutputSink`]. Output is handled in chunks as it arrives and never held
//! whole: the redactor keeps at most one secret's length back, the log file is written chunk by
//! chunk, the reporters get complete lines, and only the last [`TAIL_LINES`] lines are kept for
//! the failure summary and the JUnit report. A line longer than [`MAX_LINE`] is cut into pieces,
//! so a stage printing a gigabyte without a newline still runs in bounded memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::redact::{RedactStream, Redactor};
use crate::runner::emitter::Emitter;
use crate::runner::events::{RunEventKind, TAIL_LINES};

/// Longest piece of one line handed to reporters at once.
const MAX_LINE: usize = 64 * 1024;
/// Longest line kept in the tail; the rest of it stays in the log file.
const MAX_TAIL_LINE: usize = 2000;

/// The log file is created with the first byte of output: most gate stages print little or
/// nothing, and creating a file per stage was a measurable share of a large pipeline's run time.
enum LogFile {
    NotYet,
    Open(File),
    /// Could not be created or written; output still reaches the reporters.
    Failed,
}

pub(crate) struct OutputSink {
    stage: String,
    /// The sink of a rollback: its events say so.
    rollback: bool,
    path: PathBuf,
    file: LogFile,
    redact: RedactStream,
    emitter: Emitter,
    /// Masked bytes of the line being assembled.
    partial: Vec<u8>,
    masked: Vec<u8>,
    tail: VecDeque<String>,
}

impl OutputSink {
    /// Appends to `path` (created when output first arrives); a log that cannot be written is
    /// not fatal, the output still reaches the reporters.
    pub(crate) fn open(
        stage: &str,
        path: PathBuf,
        redactor: &Arc<Redactor>,
        emitter: Emitter,
    ) -> OutputSink {
        OutputSink {
            stage: stage.to_owned(),
            rollback: false,
            path,
            file: LogFile::NotYet,
            redact: redactor.stream(),
            emitter,
            partial: Vec::new(),
            masked: Vec::new(),
            tail: VecDeque::new(),
        }
    }

    /// The same sink, for a stage's rollback.
    pub(crate) fn for_rollback(mut self) -> OutputSink {
        self.rollback = true;
        self
    }

    pub(crate) fn path(&self) -> &PathBuf {
        &self.path
    }

    /// The log file, if anything was written to it.
    pub(crate) fn log_file(&self) -> Option<PathBuf> {
        matches!(self.file, LogFile::Open(_)).then(|| self.path.clone())
    }

    /// Takes raw output bytes, as a stage printed them.
    pub(crate) async fn write(&mut self, bytes: &[u8]) {
        let mut masked = std::mem::take(&mut self.masked);
        masked.clear();
        self.redact.push(bytes, &mut masked);
        self.take_masked(&masked).await;
        self.masked = masked;
    }

    /// A line of portcullis's own, for built-in kinds (`ports: 3 findings`).
    pub(crate) async fn line(&mut self, text: &str) {
        self.write(text.as_bytes()).await;
        if !text.ends_with('\n') {
            self.write(b"\n").await;
        }
    }

    /// Asks the person at the terminal: the reporters show `text` (masked on the way) and hold
    /// other output until [`OutputSink::prompt_closed`]. The answer is read by the kind itself.
    pub(crate) async fn prompt(&self, text: String) {
        self.emitter
            .emit(RunEventKind::Prompt {
                stage: self.stage.clone(),
                text,
            })
            .await;
    }

    /// Ends what [`OutputSink::prompt`] began; `answered` when the person typed a line.
    pub(crate) async fn prompt_closed(&self, answered: bool) {
        self.emitter
            .emit(RunEventKind::PromptClosed {
                stage: self.stage.clone(),
                answered,
            })
            .await;
    }

    async fn take_masked(&mut self, masked: &[u8]) {
        if masked.is_empty() {
            return;
        }
        if let LogFile::NotYet = self.file {
            let opened = std::fs::OpenOptions::new()
                .mode(0o600)
                .create(true)
                .append(true)
                .open(&self.path);
            self.file = opened.map_or(LogFile::Failed, LogFile::Open);
        }
        if let LogFile::Open(file) = &mut self.file
            && file.write_all(masked).is_err()
        {
            self.file = LogFile::Failed;
        }
        let mut lines = String::new();
        let mut rest = masked;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&rest[..pos]);
            self.finish_line(&mut lines);
            rest = &rest[pos + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            let tail = self.partial.split_off(MAX_LINE);
            self.finish_line(&mut lines);
            self.partial = tail;
        }
        if !lines.is_empty() {
            self.emitter
                .emit(RunEventKind::StageOutput {
                    stage: self.stage.clone(),
                    rollback: self.rollback,
                    lines,
                })
                .await;
        }
    }

    fn finish_line(&mut self, lines: &mut String) {
        let line = String::from_utf8_lossy(&self.partial);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        lines.push_str(line);
        lines.push('\n');
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        let kept: String = line.chars().take(MAX_TAIL_LINE).collect();
        self.tail.push_back(kept);
        self.partial.clear();
    }

    /// Flushes what the redactor held back and the last unterminated line; returns the tail.
    pub(crate) async fn finish(&mut self) -> Vec<String> {
        let mut masked = Vec::new();
        self.redact.finish(&mut masked);
        self.take_masked(&masked).await;
        if !self.partial.is_empty() {
            let mut lines = String::new();
            self.finish_line(&mut lines);
            self.emitter
                .emit(RunEventKind::StageOutput {
                    stage: self.stage.clone(),
                    rollback: self.rollback,
                    lines,
                })
                .await;
        }
        if let LogFile::Open(file) = &mut self.file {
            let _ = file.flush();
        }
        self.tail.iter().cloned().collect()
    }
}
