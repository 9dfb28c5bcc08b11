//! Request parameters: collecting them from every place a Panda client may put
//! them, and merging them into one view (spec §1.2).
//!
//! Clients disagree on where parameters go: [py], [node] and [go] put every
//! parameter of a POST or PUT in the query string, [php] sends multipart even
//! on PUT, others send form bodies. So the server collects from all sources
//! for every method and merges them, the query string winning (§1.2 rule 3).
//! Values are kept exactly as decoded, because the signature covers them
//! (§2.2 step 6).

use std::collections::HashSet;

use percent_encoding::percent_decode;
use serde_json::{Map, Value};

/// Ordered (key, value) pairs from one source, in arrival order.
pub type Pairs = Vec<(String, String)>;

/// A parameter that is present but cannot be read as the type a handler needs.
///
/// The messages name the key and quote the value, so a 400 BadRequest tells
/// the client exactly what to fix.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    #[error("{key} must be a boolean (true or false), got {value:?}")]
    NotBool { key: String, value: String },
    #[error("{key} must be an integer, got {value:?}")]
    NotInt { key: String, value: String },
    #[error("{key} must be a number, got {value:?}")]
    NotNumber { key: String, value: String },
}

/// Parses a query string or an `application/x-www-form-urlencoded` body.
///
/// `+` means a space and `%XX` escapes are UTF-8 (§1.2 rule 2). Decoding is
/// lenient because the signature is computed over what the client meant, not
/// over what a strict parser would accept: a malformed escape such as `%zz`
/// is kept literally, a segment without `=` is a key with an empty value, and
/// bytes that are not UTF-8 after decoding are replaced (lossy). Brackets in
/// keys are ordinary characters here; see [`Params::nested`].
pub fn parse_urlencoded(input: &[u8]) -> Pairs {
    input
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (
                decode_component(&segment[..eq]),
                decode_component(&segment[eq + 1..]),
            ),
            None => (decode_component(segment), String::new()),
        })
        .collect()
}

/// Decodes one form-encoded key or value: `+` to space first, so that an
/// escaped `%2B` survives as a literal `+`.
fn decode_component(raw: &[u8]) -> String {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).decode_utf8_lossy().into_owned()
}

/// Parses a JSON object body (or the legacy uploader's `X-Query-Params`
/// header) into pairs, or `None` when it is not a JSON object.
///
/// No v2 client sends JSON, but scripts do, so §1.2 asks to accept it with
/// the same meaning as a form: nested objects become `key[sub]` pairs (one
/// level, like `events[video_created]`), `true`/`false` and numbers become
/// their text, and `null` is skipped (absent). Not specified by §1.2 and
/// chosen here: an array of scalars becomes a comma-separated list (the form
/// of `profiles=h264,webm`), and anything deeper is kept as compact JSON text.
pub fn parse_json_object(body: &[u8]) -> Option<Pairs> {
    let Value::Object(object) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let mut pairs = Pairs::new();
    for (key, value) in object {
        match value {
            Value::Object(inner) => flatten_one_level(&key, inner, &mut pairs),
            other => pairs.extend(json_text(&other).map(|text| (key, text))),
        }
    }
    Some(pairs)
}

fn flatten_one_level(base: &str, inner: Map<String, Value>, pairs: &mut Pairs) {
    for (sub, value) in inner {
        if let Some(text) = json_text(&value) {
            pairs.push((format!("{base}[{sub}]"), text));
        }
    }
}

/// The form-style text of a JSON value; `None` for `null`.
fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(is_scalar) => Some(
            items
                .iter()
                .filter_map(json_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// Extracts the `boundary` parameter of a Content-Type header, without
/// validating it.
///
/// Deliberately lenient: the [go] client uses the boundary `^{---panda---}v`,
/// which RFC 2046 forbids, so a strict parser (such as `multer::parse_boundary`)
/// would reject a real client (§1.2, §10 #35). Quoted and unquoted values are
/// accepted, the parameter name is case-insensitive, and the media type is not
/// checked: §1.2 rule 4 says to parse a multipart body whatever the
/// Content-Type claims, so that decision is the caller's.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let (_media_type, mut rest) = content_type.split_once(';')?;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return None;
        }
        let name_end = rest.find(['=', ';'])?;
        if rest.as_bytes()[name_end] == b';' {
            // A parameter without a value: skip it.
            rest = &rest[name_end..];
            continue;
        }
        let name = rest[..name_end].trim();
        let (value, remaining) = split_param_value(rest[name_end + 1..].trim_start());
        if name.eq_ignore_ascii_case("boundary") {
            return Some(value).filter(|v| !v.is_empty());
        }
        rest = remaining;
    }
}

/// Splits a Content-Type parameter value from what follows it. A quoted value
/// ends at its closing quote (backslash escapes honoured, a missing closing
/// quote tolerated); an unquoted one ends at `;`.
fn split_param_value(input: &str) -> (String, &str) {
    let Some(quoted) = input.strip_prefix('"') else {
        let end = input.find(';').unwrap_or(input.len());
        return (input[..end].trim_end().to_owned(), &input[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[i + 1..]),
            '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
            _ => value.push(c),
        }
    }
    (value, "")
}

/// The merged parameters of one request.
///
/// Query-string values win over body values for the same key (§1.2 rule 3):
/// [go] puts double-escaped values in the query and raw values in the body,
/// and it signs the query form. Within one source the first occurrence of a
/// key wins.
#[derive(Clone, Debug, Default)]
pub struct Params {
    query: Pairs,
    body: Pairs,
}

impl Params {
    /// Merges the query-string pairs with the pairs of the body (form,
    /// multipart text fields or JSON, already decoded).
    pub fn new(query: Pairs, body: Pairs) -> Self {
        Self { query, body }
    }

    /// The raw value of `key`, exactly as received (the query's when both
    /// sources have it).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(&self.body)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Like [`get`](Self::get), but the empty string, `None` ([py] prints
    /// Python's `None`) and `null` ([node] prints JS `null`) mean "no value"
    /// (§1.2 rule 6, §10 #36).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !is_null_word(v))
    }

    /// Reads a boolean. `true`/`false` in any letter case and `1`/`0` are
    /// accepted because [py] sends `True`, [xabbuh] sends `1`/`0` and JSON
    /// bodies send `true` (§1.2 rule 6).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        self.typed(key, parse_bool, |key, value| ParamError::NotBool {
            key,
            value,
        })
    }

    /// Reads an integer. An integral decimal such as `800.0` (what a JSON
    /// float prints as) is accepted too.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ParamError> {
        self.typed(key, parse_int, |key, value| ParamError::NotInt {
            key,
            value,
        })
    }

    /// Reads a finite floating-point number.
    pub fn float(&self, key: &str) -> Result<Option<f64>, ParamError> {
        self.typed(key, parse_float, |key, value| ParamError::NotNumber {
            key,
            value,
        })
    }

    /// The sub-keys of a one-level nested parameter such as `events`, as
    /// `(sub, value)` pairs, one per sub-key.
    ///
    /// `events[...]` arrives in three forms (§3.6, §10 #4), all handled here:
    /// bracket keys `events[video_created]=…`; keys whose brackets are still
    /// percent-encoded (`events%5Bvideo_created%5D`, as the [php] client
    /// writes them, in case they reach us undecoded, e.g. as multipart field
    /// names); and [py]'s single `events` parameter holding a JSON object
    /// string. Bracket forms win over the JSON form for the same sub-key.
    pub fn nested(&self, base: &str) -> Vec<(String, String)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let bracketed = self
            .iter()
            .filter_map(|(key, value)| Some((nested_sub_key(key, base)?, value.to_owned())));
        let from_json = self
            .value(base)
            .and_then(|json| parse_json_object(json.as_bytes()))
            .unwrap_or_default();
        for (sub, value) in bracketed.chain(from_json) {
            if seen.insert(sub.clone()) {
                out.push((sub, value));
            }
        }
        out
    }

    /// The pairs the client signed: every parameter except `signature` and
    /// the top-level `file` key (§2.2 step 1; file parts never reach
    /// `Params`), one value per key (the query's when both sources have it),
    /// exactly as received.
    pub fn signing_pairs(&self) -> Pairs {
        self.iter()
            .filter(|(key, _)| *key != "signature" && *key != "file")
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// Adds body pairs found after construction: multipart text fields are
    /// discovered while the body streams, before or after the file part.
    pub fn insert_body(&mut self, pairs: Pairs) {
        self.body.extend(pairs);
    }

    /// The merged view: one `(key, value)` per key, query pairs first in
    /// arrival order, then body pairs whose key the query does not have.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut seen = HashSet::new();
        self.query
            .iter()
            .chain(&self.body)
            .filter(move |(key, _)| seen.insert(key.as_str()))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    fn typed<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        error: fn(String, String) -> ParamError,
    ) -> Result<Option<T>, ParamError> {
        match self.value(key) {
            None => Ok(None),
            Some(raw) => parse(raw)
                .map(Some)
                .ok_or_else(|| error(key.to_owned(), raw.to_owned())),
        }
    }
}

fn is_null_word(value: &str) -> bool {
    matches!(value, "" | "None" | "null")
}

fn parse_bool(raw: &str) -> Option<bool> {
    let raw = raw.trim();
    if raw == "1" || raw.eq_ignore_ascii_case("true") {
        Some(true)
    } else if raw == "0" || raw.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_int(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    raw.parse().ok().or_else(|| integral_float(raw))
}

/// `800.0` → 800; `800.5`, `1e300` and non-finite values → `None`.
fn integral_float(raw: &str) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53: exact in f64 and i64
    let value = parse_float(raw)?;
    let integral = value.fract() == 0.0 && value.abs() <= LIMIT;
    // The cast is exact: `value` is integral and within ±2^53.
    integral.then_some(value as i64)
}

fn parse_float(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `events[video_created]` → `video_created`, and the same for
/// `events%5Bvideo_created%5D` (hex digits in either case).
fn nested_sub_key(key: &str, base: &str) -> Option<String> {
    let rest = key.strip_prefix(base)?;
    if let Some(sub) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Some(sub.to_owned());
    }
    let (open, tail) = rest.split_at_checked(3)?;
    let (inner, close) = tail.split_at_checked(tail.len().checked_sub(3)?)?;
    (open.eq_ignore_ascii_case("%5B") && close.eq_ignore_ascii_case("%5D")).then(|| {
        percent_decode(inner.as_bytes())
            .decode_utf8_lossy()
            .into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn params(query: &[(&str, &str)], body: &[(&str, &str)]) -> Params {
        Params::new(pairs(query), pairs(body))
    }

    #[test]
    fn urlencoded_decodes_plus_escapes_and_utf8() {
        let parsed = parse_urlencoded(
            b"source_url=http%3A%2F%2Fexample.com%2Fmy+video.mp4&sig=a%2Bb%3D\
              &name=original%E2%99%A5.mp4",
        );
        assert_eq!(
            parsed,
            pairs(&[
                ("source_url", "http://example.com/my video.mp4"),
                ("sig", "a+b="),
                ("name", "original♥.mp4"),
            ])
        );
    }

    #[test]
    fn urlencoded_is_lenient() {
        let parsed =
            parse_urlencoded(b"a=100%&b=%zz%4&&flag&events[video_created]=true&c=x=y&d=%FF");
        assert_eq!(
            parsed,
            pairs(&[
                ("a", "100%"),
                ("b", "%zz%4"),
                ("flag", ""),
                ("events[video_created]", "true"),
                ("c", "x=y"),
                ("d", "\u{FFFD}"),
            ])
        );
        assert!(parse_urlencoded(b"").is_empty());
    }

    #[test]
    fn urlencoded_decodes_encoded_brackets_in_keys() {
        let parsed = parse_urlencoded(b"events%5Bvideo_encoded%5D=true");
        assert_eq!(parsed, pairs(&[("events[video_encoded]", "true")]));
    }

    #[test]
    fn json_body_is_flattened_one_level() {
        let body = br#"{"source_url":"http://x/y.mp4","width":800,"ratio":1.5,
            "upscale":true,"path_format":null,
            "events":{"video_created":false,"video_encoded":"true","gone":null},
            "profiles":["h264","webm"],"deep":{"a":{"b":1}}}"#;
        let mut parsed = parse_json_object(body).expect("an object");
        parsed.sort();
        assert_eq!(
            parsed,
            pairs(&[
                ("deep[a]", r#"{"b":1}"#),
                ("events[video_created]", "false"),
                ("events[video_encoded]", "true"),
                ("profiles", "h264,webm"),
                ("ratio", "1.5"),
                ("source_url", "http://x/y.mp4"),
                ("upscale", "true"),
                ("width", "800"),
            ])
        );
    }

    #[test]
    fn json_body_must_be_an_object() {
        assert_eq!(parse_json_object(b"[1,2]"), None);
        assert_eq!(parse_json_object(b"\"x\""), None);
        assert_eq!(parse_json_object(b"{not json"), None);
        assert_eq!(parse_json_object(b"{}"), Some(Vec::new()));
    }

    #[test]
    fn boundary_of_the_go_client_is_accepted() {
        let ct = "multipart/form-data; boundary=^{---panda---}v";
        assert_eq!(multipart_boundary(ct).as_deref(), Some("^{---panda---}v"));
    }

    #[test]
    fn boundary_quoted_unquoted_and_among_other_params() {
        let cases = [
            (
                "multipart/form-data; boundary=\"^{---panda---}v\"",
                "^{---panda---}v",
            ),
            (
                "multipart/form-data; boundary=\"a b;c\"; charset=utf-8",
                "a b;c",
            ),
            ("multipart/form-data; boundary=\"esc\\\"aped\"", "esc\"aped"),
            (
                "multipart/form-data; boundary=\"unterminated",
                "unterminated",
            ),
            (
                "multipart/form-data;charset=\"x;boundary=no\";BOUNDARY=yes",
                "yes",
            ),
            ("multipart/form-data; flag; boundary = abc ; x=y", "abc"),
            (
                "multipart/form-data; boundary=---------------------------8d1a",
                "---------------------------8d1a",
            ),
        ];
        for (ct, want) in cases {
            assert_eq!(multipart_boundary(ct).as_deref(), Some(want), "{ct}");
        }
    }

    #[test]
    fn boundary_missing_or_empty() {
        for ct in [
            "multipart/form-data",
            "multipart/form-data; charset=utf-8",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary",
            "",
        ] {
            assert_eq!(multipart_boundary(ct), None, "{ct}");
        }
    }

    #[test]
    fn odd_input_does_not_panic() {
        for ct in ["♥;♥=♥", "a;boundary=\"♥", "a;=;=", "a; boundary=\"\\"] {
            let _ = multipart_boundary(ct);
        }
        assert_eq!(multipart_boundary("a; boundary=♥♥").as_deref(), Some("♥♥"));
        let p = params(
            &[("events♥", "1"), ("events%5", "1"), ("events%5B♥", "1")],
            &[],
        );
        assert!(p.nested("events").is_empty());
        assert_eq!(
            parse_urlencoded("♥=%E2%99".as_bytes()),
            pairs(&[("♥", "\u{FFFD}")])
        );
    }

    #[test]
    fn query_wins_over_body() {
        let p = params(
            &[("source_url", "http%3A%2F%2Fx"), ("a", "q")],
            &[("source_url", "http://x"), ("b", "body"), ("a", "b")],
        );
        assert_eq!(p.get("source_url"), Some("http%3A%2F%2Fx"));
        assert_eq!(p.get("a"), Some("q"));
        assert_eq!(p.get("b"), Some("body"));
        assert_eq!(p.get("missing"), None);
        let merged: Vec<_> = p.iter().collect();
        assert_eq!(
            merged,
            [("source_url", "http%3A%2F%2Fx"), ("a", "q"), ("b", "body")]
        );
    }

    #[test]
    fn first_occurrence_wins_within_a_source() {
        let p = params(&[("a", "1"), ("a", "2")], &[]);
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.iter().count(), 1);
    }

    #[test]
    fn null_words_mean_no_value() {
        let p = params(
            &[
                ("py", "None"),
                ("node", "null"),
                ("php", ""),
                ("real", "NULL"),
            ],
            &[],
        );
        for key in ["py", "node", "php", "absent"] {
            assert_eq!(p.value(key), None, "{key}");
        }
        assert_eq!(p.get("py"), Some("None"));
        assert_eq!(p.value("real"), Some("NULL"));
    }

    #[test]
    fn booleans_in_every_client_spelling() {
        let p = params(
            &[
                ("a", "true"),
                ("b", "True"),
                ("c", "TRUE"),
                ("d", "1"),
                ("e", "false"),
                ("f", "False"),
                ("g", "0"),
                ("h", "None"),
                ("i", "null"),
                ("j", ""),
            ],
            &[],
        );
        for key in ["a", "b", "c", "d"] {
            assert_eq!(p.bool(key), Ok(Some(true)), "{key}");
        }
        for key in ["e", "f", "g"] {
            assert_eq!(p.bool(key), Ok(Some(false)), "{key}");
        }
        for key in ["h", "i", "j", "absent"] {
            assert_eq!(p.bool(key), Ok(None), "{key}");
        }
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let p = params(
            &[("upscale", "yes"), ("width", "abc"), ("fps", "fast")],
            &[],
        );
        let err = p.bool("upscale").unwrap_err();
        assert_eq!(
            err.to_string(),
            "upscale must be a boolean (true or false), got \"yes\""
        );
        let err = p.int("width").unwrap_err();
        assert_eq!(err.to_string(), "width must be an integer, got \"abc\"");
        let err = p.float("fps").unwrap_err();
        assert_eq!(err.to_string(), "fps must be a number, got \"fast\"");
    }

    #[test]
    fn integers_and_floats() {
        let p = params(
            &[
                ("w", "800"),
                ("neg", "-3"),
                ("json", "800.0"),
                ("half", "800.5"),
                ("huge", "1e300"),
                ("fps", "29.97"),
                ("inf", "inf"),
                ("none", "None"),
            ],
            &[],
        );
        assert_eq!(p.int("w"), Ok(Some(800)));
        assert_eq!(p.int("neg"), Ok(Some(-3)));
        assert_eq!(p.int("json"), Ok(Some(800)));
        assert!(p.int("half").is_err());
        assert!(p.int("huge").is_err());
        assert_eq!(p.int("none"), Ok(None));
        assert_eq!(p.float("fps"), Ok(Some(29.97)));
        assert_eq!(p.float("w"), Ok(Some(800.0)));
        assert!(p.float("inf").is_err());
    }

    #[test]
    fn nested_from_bracket_keys() {
        let p = params(
            &[("events[video_created]", "false"), ("eventsx", "no")],
            &[
                ("events[video_encoded]", "true"),
                ("events[video_created]", "true"),
            ],
        );
        assert_eq!(
            p.nested("events"),
            pairs(&[("video_created", "false"), ("video_encoded", "true")])
        );
    }

    #[test]
    fn nested_from_percent_encoded_keys() {
        let p = params(
            &[],
            &[
                ("events%5Bvideo_encoded%5D", "true"),
                ("events%5bencoding_progress%5d", "false"),
            ],
        );
        assert_eq!(
            p.nested("events"),
            pairs(&[("video_encoded", "true"), ("encoding_progress", "false")])
        );
    }

    #[test]
    fn nested_from_python_json_string() {
        let p = params(
            &[
                (
                    "events",
                    r#"{"video_created": "false", "video_encoded": "true"}"#,
                ),
                ("events[video_encoded]", "false"),
            ],
            &[],
        );
        assert_eq!(
            p.nested("events"),
            pairs(&[("video_encoded", "false"), ("video_created", "false")])
        );
        assert!(
            params(&[("events", "None")], &[])
                .nested("events")
                .is_empty()
        );
        assert!(
            params(&[("events", "junk")], &[])
                .nested("events")
                .is_empty()
        );
    }

    #[test]
    fn signing_pairs_exclude_signature_and_file() {
        let p = params(
            &[("access_key", "k"), ("signature", "s"), ("cloud_id", "q")],
            &[("file", "/tmp/x.mp4"), ("cloud_id", "b"), ("title", "t")],
        );
        assert_eq!(
            p.signing_pairs(),
            pairs(&[("access_key", "k"), ("cloud_id", "q"), ("title", "t")])
        );
    }

    #[test]
    fn insert_body_adds_streamed_fields_without_overriding_the_query() {
        let mut p = params(&[("a", "q")], &[]);
        p.insert_body(pairs(&[("a", "b"), ("profiles", "h264")]));
        assert_eq!(p.get("a"), Some("q"));
        assert_eq!(p.get("profiles"), Some("h264"));
    }
}
