//! Time as the database keeps it (milliseconds since the Unix epoch) and as
//! Panda's JSON shows it (`YYYY/MM/DD HH:MM:SS +0000`, spec §4.1).

use chrono::{DateTime, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// Formats a stored time the way Panda's clients parse it.
pub fn panda_format(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y/%m/%d %H:%M:%S +0000")
        .to_string()
}

/// `YYYY-MM-DD`, for the `:date` path token.
pub fn date_only(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_ruby_time_to_s_with_slashes() {
        // 2009-10-13 19:11:26 UTC
        assert_eq!(panda_format(1_255_461_086_000), "2009/10/13 19:11:26 +0000");
        assert_eq!(date_only(1_255_461_086_000), "2009-10-13");
    }
}
