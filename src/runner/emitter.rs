//! The sending half of the event channel: the one place where event texts are masked.
//!
//! The main type is [`Emitter`]. Every event passes through [`Emitter::emit`], which stamps it
//! with the time since the start and replaces secret values in every text it carries (reasons,
//! test cases, outputs, warnings) with `***`, so no call site has to remember to. The one text
//! masked before it gets here is a stage's streamed output (its lines and tails): the stream
//! masker of `runner::output` must mask bytes across chunk boundaries before they reach the log
//! file, and the event carries exactly what the log holds.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::redact::Redactor;
use crate::runner::events::{RunEvent, RunEventKind};

#[derive(Clone)]
pub(crate) struct Emitter {
    tx: mpsc::Sender<RunEvent>,
    start: Instant,
    redactor: Arc<Redactor>,
}

impl Emitter {
    pub(crate) fn new(
        tx: mpsc::Sender<RunEvent>,
        start: Instant,
        redactor: Arc<Redactor>,
    ) -> Emitter {
        Emitter {
            tx,
            start,
            redactor,
        }
    }

    /// Masks and sends an event; waits when the reporters are behind, which slows a chatty
    /// stage down rather than buffering its output without bound. A closed channel drops the
    /// event.
    pub(crate) async fn emit(&self, kind: RunEventKind) {
        let _ = self
            .tx
            .send(RunEvent {
                elapsed: self.start.elapsed(),
                kind: kind.masked(&self.redactor),
            })
            .await;
    }
}
