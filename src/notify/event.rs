//! The four webhook events of spec §6.1 and their two renderings: the form
//! body a receiver gets (Panda's wire format, fixed when the event is
//! recorded) and the JSON object the live stream shows.

use serde_json::{Value, json};

use crate::domain::model::NotificationEvents;

/// One thing that happened to a video, as Panda reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The original was stored and checked (the video is `success` or `fail`).
    VideoCreated {
        video_id: String,
        encoding_ids: Vec<String>,
    },
    /// Every encoding of the video has ended (success, fail or cancelled).
    VideoEncoded {
        video_id: String,
        encoding_ids: Vec<String>,
    },
    /// An encoding is running; `progress` is 0–100.
    EncodingProgress {
        video_id: String,
        encoding_id: String,
        progress: u8,
    },
    /// An encoding succeeded or failed.
    EncodingComplete {
        video_id: String,
        encoding_id: String,
    },
}

impl Event {
    /// The `event` field. `encoding-complete`, not the .NET client's
    /// `encoding-completed` (spec §6.1, "Event name conflict").
    pub fn name(&self) -> &'static str {
        match self {
            Self::VideoCreated { .. } => "video-created",
            Self::VideoEncoded { .. } => "video-encoded",
            Self::EncodingProgress { .. } => "encoding-progress",
            Self::EncodingComplete { .. } => "encoding-complete",
        }
    }

    pub fn video_id(&self) -> &str {
        match self {
            Self::VideoCreated { video_id, .. }
            | Self::VideoEncoded { video_id, .. }
            | Self::EncodingProgress { video_id, .. }
            | Self::EncodingComplete { video_id, .. } => video_id,
        }
    }

    /// The encoding an event is about; none for the video-wide events.
    pub fn encoding_id(&self) -> Option<&str> {
        match self {
            Self::EncodingProgress { encoding_id, .. }
            | Self::EncodingComplete { encoding_id, .. } => Some(encoding_id),
            Self::VideoCreated { .. } | Self::VideoEncoded { .. } => None,
        }
    }

    /// Whether a cloud with these settings wants this kind of event.
    pub fn enabled_in(&self, events: &NotificationEvents) -> bool {
        match self {
            Self::VideoCreated { .. } => events.video_created,
            Self::VideoEncoded { .. } => events.video_encoded,
            Self::EncodingProgress { .. } => events.encoding_progress,
            Self::EncodingComplete { .. } => events.encoding_completed,
        }
    }

    /// The form fields in the order of spec §6.1. Arrays use explicit
    /// indexes (`encoding_ids[0]`), the one shape PHP, Rails and .NET all
    /// read; `video_id` rides along on encoding events because [bundle]
    /// requires it.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out = vec![("event".to_string(), self.name().to_string())];
        match self {
            Self::VideoCreated {
                video_id,
                encoding_ids,
            }
            | Self::VideoEncoded {
                video_id,
                encoding_ids,
            } => {
                out.push(("video_id".into(), video_id.clone()));
                for (i, id) in encoding_ids.iter().enumerate() {
                    out.push((format!("encoding_ids[{i}]"), id.clone()));
                }
            }
            Self::EncodingProgress {
                video_id,
                encoding_id,
                progress,
            } => {
                out.push(("encoding_id".into(), encoding_id.clone()));
                out.push(("progress".into(), progress.to_string()));
                out.push(("video_id".into(), video_id.clone()));
            }
            Self::EncodingComplete {
                video_id,
                encoding_id,
            } => {
                out.push(("encoding_id".into(), encoding_id.clone()));
                out.push(("video_id".into(), video_id.clone()));
            }
        }
        out
    }

    /// `application/x-www-form-urlencoded` body of the webhook (not JSON:
    /// the .NET client parses the raw body as a query string).
    pub fn form_body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.fields())
            .finish()
    }

    /// The same facts as a JSON object, for the live stream.
    pub fn to_json(&self) -> Value {
        match self {
            Self::VideoCreated {
                video_id,
                encoding_ids,
            }
            | Self::VideoEncoded {
                video_id,
                encoding_ids,
            } => json!({
                "event": self.name(), "video_id": video_id, "encoding_ids": encoding_ids,
            }),
            Self::EncodingProgress {
                video_id,
                encoding_id,
                progress,
            } => json!({
                "event": self.name(), "encoding_id": encoding_id,
                "progress": progress, "video_id": video_id,
            }),
            Self::EncodingComplete {
                video_id,
                encoding_id,
            } => json!({
                "event": self.name(), "encoding_id": encoding_id, "video_id": video_id,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_follow_the_spec() {
        let created = Event::VideoCreated {
            video_id: "v1".into(),
            encoding_ids: vec!["e1".into(), "e2".into()],
        };
        assert_eq!(
            created.form_body(),
            "event=video-created&video_id=v1&encoding_ids%5B0%5D=e1&encoding_ids%5B1%5D=e2"
        );
        let progress = Event::EncodingProgress {
            video_id: "v1".into(),
            encoding_id: "e1".into(),
            progress: 42,
        };
        assert_eq!(
            progress.form_body(),
            "event=encoding-progress&encoding_id=e1&progress=42&video_id=v1"
        );
        let complete = Event::EncodingComplete {
            video_id: "v1".into(),
            encoding_id: "e1".into(),
        };
        assert_eq!(
            complete.form_body(),
            "event=encoding-complete&encoding_id=e1&video_id=v1"
        );
        assert_eq!(complete.to_json()["event"], "encoding-complete");
        let empty = Event::VideoEncoded {
            video_id: "v1".into(),
            encoding_ids: vec![],
        };
        assert_eq!(empty.form_body(), "event=video-encoded&video_id=v1");
    }

    #[test]
    fn settings_choose_the_events() {
        let settings = NotificationEvents {
            encoding_completed: true,
            ..Default::default()
        };
        let complete = Event::EncodingComplete {
            video_id: "v".into(),
            encoding_id: "e".into(),
        };
        let created = Event::VideoCreated {
            video_id: "v".into(),
            encoding_ids: vec![],
        };
        assert!(complete.enabled_in(&settings));
        assert!(!created.enabled_in(&settings));
    }
}
