//! The `Content-Range` of a request to an upload location (spec §5.3), and
//! the `Range` of the answer.

/// What a request's `Content-Range` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes */L`, or the bare `bytes *` of the docs' prose (spec §10 #16):
    /// how much has arrived?
    Query { total: Option<u64> },
    /// `bytes S-E/L`: a chunk starting at S. E is only the client's claim;
    /// the body length is the truth ([gem] and [py] overstate the last E).
    Chunk { start: u64, total: Option<u64> },
}

impl ContentRange {
    /// Parses the header value; the error says what was expected.
    pub fn parse(value: &str) -> Result<Self, String> {
        parse(value.trim()).ok_or_else(|| {
            format!(
                "Content-Range {value:?} could not be parsed: expected \"bytes S-E/L\" for a \
                 chunk or \"bytes */L\" for a status query"
            )
        })
    }

    /// The total size L the client states, when it states one.
    pub fn total(&self) -> Option<u64> {
        match *self {
            Self::Query { total } | Self::Chunk { total, .. } => total,
        }
    }
}

fn parse(value: &str) -> Option<ContentRange> {
    let unit = value.get(..5)?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let spec = value[5..].trim_start_matches([' ', '=']);
    let (range, total) = match spec.split_once('/') {
        Some((range, total)) => (range.trim(), parse_total(total.trim())?),
        None => (spec.trim(), None),
    };
    if range == "*" {
        return Some(ContentRange::Query { total });
    }
    let (start, end) = range.split_once('-')?;
    let start = parse_number(start)?;
    let end = parse_number(end)?;
    (end >= start).then_some(ContentRange::Chunk { start, total })
}

/// `L`, or `*` for "unknown" (RFC 9110 allows it on a chunk).
fn parse_total(s: &str) -> Option<Option<u64>> {
    if s == "*" {
        Some(None)
    } else {
        parse_number(s).map(Some)
    }
}

fn parse_number(s: &str) -> Option<u64> {
    let ok = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

/// The `Range` header of an answer: `0-N` with no `bytes ` prefix, and no
/// header at all while nothing has arrived (spec §5.3 a: [upl2] would skip
/// byte 0 on `0-0`).
pub fn range_header(received: u64) -> Option<String> {
    (received > 0).then(|| format!("0-{}", received - 1))
}

#[cfg(test)]
mod tests {
    use super::ContentRange::{Chunk, Query};
    use super::*;

    #[test]
    fn parses_what_the_clients_send() {
        assert_eq!(
            ContentRange::parse("bytes 0-5242879/12000000"),
            Ok(Chunk {
                start: 0,
                total: Some(12_000_000)
            })
        );
        // [py]: the last chunk's end is overstated; only S matters.
        assert_eq!(
            ContentRange::parse("bytes 10485760-15728639/12000000"),
            Ok(Chunk {
                start: 10_485_760,
                total: Some(12_000_000)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes */12000000"),
            Ok(Query {
                total: Some(12_000_000)
            })
        );
        assert_eq!(ContentRange::parse("bytes *"), Ok(Query { total: None }));
        assert_eq!(
            ContentRange::parse("Bytes=5-9/*"),
            Ok(Chunk {
                start: 5,
                total: None
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "bytes",
            "bytes 5/10",
            "bytes 9-5/10",
            "bytes a-5/10",
            "bytes -5/10",
            "bytes 0-5/ten",
            "items 0-5/10",
            "bytes 0-99999999999999999999/10",
        ] {
            let err = ContentRange::parse(bad).expect_err(bad);
            assert!(err.contains("bytes S-E/L"), "{err}");
        }
    }

    #[test]
    fn range_is_left_out_until_a_byte_arrived() {
        assert_eq!(range_header(0), None);
        assert_eq!(range_header(1).as_deref(), Some("0-0"));
        assert_eq!(range_header(100).as_deref(), Some("0-99"));
    }
}
