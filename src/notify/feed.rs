//! The in-process side of the outbox: a broadcast of every event as it is
//! committed (the live stream reads it) and a doorbell for the delivery
//! loop. It lives on the `Db` handle because that is where transactions
//! commit; nothing here is needed for correctness — a process that misses a
//! ring still finds the rows when it next polls the outbox.

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::event::Event;

/// Events a slow live-stream reader may fall behind by before it skips some.
const LIVE_BACKLOG: usize = 1024;

/// An event of one cloud, as the live stream sees it.
#[derive(Clone, Debug)]
pub struct LiveEvent {
    pub cloud_id: String,
    pub event: Event,
}

/// What one transaction recorded: every event it caused (for the live
/// stream, whatever the webhook settings) and whether any of them went into
/// the outbox.
#[derive(Debug, Default)]
pub struct Recorded {
    pub cloud_id: String,
    pub events: Vec<Event>,
    pub queued: bool,
}

pub struct Feed {
    live: broadcast::Sender<LiveEvent>,
    outbox: Notify,
    closing: CancellationToken,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            live: broadcast::channel(LIVE_BACKLOG).0,
            outbox: Notify::new(),
            closing: CancellationToken::new(),
        }
    }
}

impl Feed {
    /// A receiver of every event committed from now on, all clouds mixed.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// Shows one event on the live stream (no one listening is fine).
    pub fn publish(&self, cloud_id: &str, event: Event) {
        let _ = self.live.send(LiveEvent {
            cloud_id: cloud_id.to_string(),
            event,
        });
    }

    /// Call after the transaction that produced `recorded` has committed.
    pub fn announce(&self, recorded: Recorded) {
        if recorded.queued {
            self.ring();
        }
        for event in recorded.events {
            self.publish(&recorded.cloud_id, event);
        }
    }

    /// Tells the delivery loop the outbox changed (a new event, a finished
    /// attempt, a redelivery). The signal is kept until the loop waits.
    pub fn ring(&self) {
        self.outbox.notify_one();
    }

    /// Waits for [`Feed::ring`].
    pub async fn rung(&self) {
        self.outbox.notified().await;
    }

    /// Ends every live stream, so a graceful shutdown is not held up by
    /// connections that would otherwise stay open forever.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Resolves once [`Feed::close`] has been called.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }
}
