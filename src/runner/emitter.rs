//! The sending half of the event channel, stamping each event with the time since the start.

use std::time::Instant;

use tokio::sync::mpsc;

use crate::runner::events::{RunEvent, RunEventKind};

#[derive(Clone)]
pub(crate) struct Emitter {
    tx: mpsc::Sender<RunEvent>,
    start: Instant,
}

impl Emitter {
    pub(crate) fn new(tx: mpsc::Sender<RunEvent>, start: Instant) -> Emitter {
        Emitter { tx, start }
    }

    /// Sends an event; waits when the reporters are behind, which slows a chatty stage down
    /// rather than buffering its output without bound. A closed channel drops the event.
    pub(crate) async fn emit(&self, kind: RunEventKind) {
        let _ = self
            .tx
            .send(RunEvent {
                elapsed: self.start.elapsed(),
                kind,
            })
            .await;
    }
}
