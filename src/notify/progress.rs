//! Progress of a running encoding: every change goes to the live stream,
//! and about every `notify.progress_every_secs` an `encoding-progress`
//! webhook is queued (spec §6.1: "about every 10 s").

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event::Event;
use crate::app::App;
use crate::domain::model::Encoding;

pub struct ProgressReporter {
    app: Arc<App>,
    cloud_id: String,
    video_id: String,
    encoding_id: String,
    every: Duration,
    /// When the last webhook was queued (or the encoding started).
    last_queued: Instant,
}

impl ProgressReporter {
    pub fn new(app: Arc<App>, encoding: &Encoding) -> Self {
        let every = Duration::from_secs_f64(app.config.notify.progress_every_secs.max(0.1));
        Self {
            cloud_id: encoding.cloud_id.clone(),
            video_id: encoding.video_id.clone(),
            encoding_id: encoding.id.clone(),
            every,
            last_queued: Instant::now(),
            app,
        }
    }

    /// Reports a new progress value (0–100).
    pub async fn report(&mut self, progress: u8) {
        let event = Event::EncodingProgress {
            video_id: self.video_id.clone(),
            encoding_id: self.encoding_id.clone(),
            progress,
        };
        self.app.db.feed.publish(&self.cloud_id, event);
        if self.last_queued.elapsed() < self.every {
            return;
        }
        self.last_queued = Instant::now();
        let queued = self
            .app
            .db
            .record_progress(&self.video_id, &self.encoding_id, progress)
            .await;
        if let Err(e) = queued {
            tracing::warn!(error = %e, "could not queue a progress notification");
        }
    }
}
