//! Panda request signatures (spec §2): the canonical query string, the string
//! to sign, the HMAC, and the server-side check that tolerates the ways real
//! clients deviate from the documented algorithm (§2.4). Also timestamp
//! parsing and the expiry windows (§2.5), and the path forms used for signing
//! and for routing (§1.1).
//!
//! Everything here is pure: no I/O, no clock (the caller passes `now`), no
//! panics on input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// How a client percent-encodes the canonical query string. The server tries
/// every variant, because each one is what some real client signs (§2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// (e1) Strict §2.2: RFC 3986 unreserved bytes kept, everything else
    /// `%XX` uppercase; nested keys written `base[sub]` with literal
    /// brackets. The gem, [py], [node], [go] and [cfc].
    Strict,
    /// (e2) The official [php] client: whole keys are encoded, so a flat key
    /// `events[video_encoded]` is signed as `events%5Bvideo_encoded%5D`, and
    /// pairs are sorted by the raw key (PHP `ksort`).
    PhpFlatKeys,
    /// (e3) The [.net] client (`HttpUtility.UrlEncode`, upper-cased): a space
    /// is `+`, `! * ( )` stay bare, `~` is `%7E`, keys are not encoded.
    DotNet,
    /// (e4) [xabbuh] (PHP `http_build_query`): strict, except `~` is `%7E`.
    Xabbuh,
}

impl Encoding {
    /// Every variant, in the order the server tries them.
    pub const ALL: [Self; 4] = [Self::Strict, Self::PhpFlatKeys, Self::DotNet, Self::Xabbuh];

    fn keeps_tilde(self) -> bool {
        matches!(self, Self::Strict | Self::PhpFlatKeys)
    }
}

/// Builds the canonical query string of §2.2 from the signing pairs
/// (`Params::signing_pairs`) as one client variant would.
///
/// Pairs are sorted byte-wise by key; a nested key `base[sub]` sorts at the
/// position of `base`, then by `sub` (the gem's recursion; [py] agrees), except
/// for [`Encoding::PhpFlatKeys`], which sorts the raw flat keys as PHP's
/// `ksort` does. Duplicate keys keep their relative order.
pub fn canonical_query(pairs: &[(String, String)], enc: Encoding) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| sort_key(a, enc).cmp(&sort_key(b, enc)));

    let mut out = String::new();
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_key(&mut out, key, enc);
        out.push('=');
        push_encoded(&mut out, value, enc);
    }
    out
}

/// `(base, Some(sub))` for a nested key, `(key, None)` for a flat one;
/// `None < Some`, so a bare `base` sorts before its nested keys.
fn sort_key(key: &str, enc: Encoding) -> (&[u8], Option<&[u8]>) {
    match split_nested(key) {
        Some((base, sub)) if enc != Encoding::PhpFlatKeys => {
            (base.as_bytes(), Some(sub.as_bytes()))
        }
        _ => (key.as_bytes(), None),
    }
}

/// Splits `base[sub]` into `("base", "sub")`. Only one level exists in Panda
/// (§2.2 step 4); anything between the first `[` and the final `]` is `sub`.
fn split_nested(key: &str) -> Option<(&str, &str)> {
    let inner = key.strip_suffix(']')?;
    let (base, sub) = inner.split_once('[')?;
    (!base.is_empty()).then_some((base, sub))
}

fn push_key(out: &mut String, key: &str, enc: Encoding) {
    match (enc, split_nested(key)) {
        (Encoding::DotNet, _) => out.push_str(key),
        (Encoding::PhpFlatKeys, _) | (_, None) => push_encoded(out, key, enc),
        (Encoding::Strict | Encoding::Xabbuh, Some((base, sub))) => {
            out.push_str(base);
            out.push('[');
            push_encoded(out, sub, enc);
            out.push(']');
        }
    }
}

/// Percent-encodes the UTF-8 bytes of `input` the way `enc` does, with
/// uppercase hex digits.
fn push_encoded(out: &mut String, input: &str, enc: Encoding) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in input.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                out.push(char::from(byte));
            }
            b'~' if enc.keeps_tilde() => out.push('~'),
            b' ' if enc == Encoding::DotNet => out.push('+'),
            b'!' | b'*' | b'(' | b')' if enc == Encoding::DotNet => out.push(char::from(byte)),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0F)]));
            }
        }
    }
}

/// The string to sign of §2.3: `METHOD\nhost\npath\ncanonical_query`.
///
/// `path` is the path without `/v2`, as the client signed it (see
/// [`normalize_path`]); the method is upper-cased because every client does.
pub fn string_to_sign(method: &str, host: &str, path: &str, canonical: &str) -> String {
    format!(
        "{}\n{host}\n{path}\n{canonical}",
        method.to_ascii_uppercase()
    )
}

/// The Panda signature: standard, padded Base64 of the binary HMAC-SHA256 of
/// `string_to_sign` keyed with the secret (§2.3). Not the hex digest the docs'
/// wording suggests (§10 #1).
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC accepts keys of any length, so this cannot happen; an empty
        // string never equals a real signature (`verify` rejects empty ones).
        return String::new();
    };
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// The host names a client may have signed, most likely first, without
/// duplicates (§2.4 step 3):
/// (h1) the `Host` (or trusted `X-Forwarded-Host`) value lower-cased without
/// its port, as the gem, [py], [php], [.net] and [go] sign it;
/// (h2) the same with its port, for clients that can only put a custom port
/// into the host string ([go], [xabbuh], [cfc]);
/// then, because [node], [xabbuh] and [cfc] sign the host as configured
/// without lower-casing it, the same two as received when they differ;
/// (h3) the configured public API host names.
///
/// IPv6 literals keep their brackets: `[::1]:8080` gives `[::1]` and
/// `[::1]:8080`.
pub fn host_candidates(host_header: Option<&str>, configured: &[String]) -> Vec<String> {
    let mut candidates = Vec::new();
    if let Some(raw) = host_header.map(str::trim).filter(|h| !h.is_empty()) {
        let (name, port) = split_host_port(raw);
        let lower = name.to_ascii_lowercase();
        let with_port = |host: &str| port.map(|p| format!("{host}:{p}"));
        let lower_with_port = with_port(&lower);
        candidates.push(lower);
        candidates.extend(lower_with_port);
        candidates.push(name.to_owned());
        candidates.extend(with_port(name));
    }
    candidates.extend(
        configured
            .iter()
            .map(|host| host.trim())
            .filter(|host| !host.is_empty())
            .map(str::to_owned),
    );
    dedup_in_order(candidates)
}

/// `host:port` → `("host", Some("port"))`; `[v6]:port` likewise; a bare IPv6
/// address or a non-numeric "port" is left whole.
fn split_host_port(raw: &str) -> (&str, Option<&str>) {
    let split = if raw.starts_with('[') {
        raw.find(']').and_then(|close| {
            let (name, rest) = raw.split_at(close + 1);
            Some((name, rest.strip_prefix(':')?))
        })
    } else {
        raw.split_once(':').filter(|(_, port)| !port.contains(':'))
    };
    match split {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Some(port).filter(|p| !p.is_empty()))
        }
        _ => (raw, None),
    }
}

fn dedup_in_order(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// What [`verify`] needs to know about one request.
///
/// No `Debug`: it holds the account's secret.
#[derive(Clone, Copy)]
pub struct VerifyInput<'a> {
    /// The HTTP method; case does not matter.
    pub method: &'a str,
    /// The path without `/v2`, slashes collapsed, as the client signed it:
    /// [`normalize_path`], not [`route_path`] (keep `.json.json`).
    pub path: &'a str,
    /// The host names to try, from [`host_candidates`].
    pub hosts: &'a [String],
    /// The signing pairs, from `Params::signing_pairs`.
    pub pairs: &'a [(String, String)],
    /// The account's secret key.
    pub secret: &'a str,
    /// The `signature` parameter as received (decoded).
    pub signature: &'a str,
}

/// Checks a request signature (§2.4 step 3).
///
/// Accepts when any host candidate × encoding variant (e1–e4) reproduces the
/// signature. Also accepted, as last-resort leniencies:
/// - a signature whose `+` arrived unencoded and was decoded to a space
///   (§2.4): spaces are mapped back to `+`, harmless since Base64 has no
///   spaces;
/// - a timestamp whose unencoded `+` before the zone was decoded to a space
///   (§2.5): the canonical string is also tried with the `+` restored.
///
/// Every candidate is computed and compared in constant time, so timing
/// reveals neither which candidate matched nor how much of it.
pub fn verify(input: &VerifyInput) -> bool {
    let wanted = input.signature.replace(' ', "+");
    if wanted.is_empty() {
        return false;
    }
    let mut matched = Choice::from(0);
    for canonical in canonical_candidates(input.pairs) {
        for host in input.hosts {
            let to_sign = string_to_sign(input.method, host, input.path, &canonical);
            matched |= sign(input.secret, &to_sign)
                .as_bytes()
                .ct_eq(wanted.as_bytes());
        }
    }
    matched.into()
}

/// The distinct canonical strings of every encoding variant, for the pairs as
/// received and, when the timestamp has a space before its zone, for the
/// pairs with that space read as `+`.
fn canonical_candidates(pairs: &[(String, String)]) -> Vec<String> {
    let mut spellings = vec![pairs.to_vec()];
    if let Some(restored) = with_plus_in_timestamp(pairs) {
        spellings.push(restored);
    }
    let all = spellings
        .iter()
        .flat_map(|p| Encoding::ALL.map(|enc| canonical_query(p, enc)))
        .collect();
    dedup_in_order(all)
}

fn with_plus_in_timestamp(pairs: &[(String, String)]) -> Option<Vec<(String, String)>> {
    let (index, (_, ts)) = pairs
        .iter()
        .enumerate()
        .find(|(_, (key, _))| key == "timestamp")?;
    let (head, zone) = ts.rsplit_once(' ')?;
    let restored = format!("{head}+{zone}");
    parse_timestamp(&restored)?;
    let mut out = pairs.to_vec();
    out[index].1 = restored;
    Some(out)
}

/// Parses the timestamps clients really send (§2.5): `YYYY-MM-DDTHH:MM:SS`,
/// an optional fraction of 1–9 digits, and an optional zone `Z`, `±HH:MM` or
/// `±HHMM`; no zone means UTC. A lower-case `t`/`z` is accepted, and so is a
/// space where the zone's `+` was (an unencoded `+` in a query string decodes
/// to a space). Leniency costs nothing here: the HMAC covers the raw string.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let fixed = b.get(..19)?;
    let separators_ok = fixed[4] == b'-'
        && fixed[7] == b'-'
        && matches!(fixed[10], b'T' | b't')
        && fixed[13] == b':'
        && fixed[16] == b':';
    if !separators_ok {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(digits(fixed, 0, 4)?).ok()?,
        digits(fixed, 5, 2)?,
        digits(fixed, 8, 2)?,
    )?;
    let (nanos, zone) = split_fraction(&b[19..])?;
    let time = NaiveTime::from_hms_nano_opt(
        digits(fixed, 11, 2)?,
        digits(fixed, 14, 2)?,
        digits(fixed, 17, 2)?,
        nanos,
    )?;
    let offset = TimeDelta::try_seconds(zone_offset_seconds(zone)?)?;
    Some(
        NaiveDateTime::new(date, time)
            .checked_sub_signed(offset)?
            .and_utc(),
    )
}

/// The decimal number in `b[start..start + len]`, all ASCII digits.
fn digits(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let field = b.get(start..start + len)?;
    field.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// Reads an optional `.fraction` (1–9 digits) as nanoseconds; returns it
/// with the rest of the input.
fn split_fraction(rest: &[u8]) -> Option<(u32, &[u8])> {
    let Some(after_dot) = rest.strip_prefix(b".") else {
        return Some((0, rest));
    };
    let count = after_dot.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&count) {
        return None;
    }
    let value = digits(after_dot, 0, count)?;
    let scale = 10u32.pow(9 - u32::try_from(count).ok()?);
    Some((value * scale, &after_dot[count..]))
}

/// Seconds east of UTC for a zone suffix: empty, `Z`, `±HH:MM` or `±HHMM`
/// (a space reads as `+`).
fn zone_offset_seconds(zone: &[u8]) -> Option<i64> {
    let (sign, hh_mm) = match zone {
        [] | [b'Z' | b'z'] => return Some(0),
        [b'+' | b' ', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let minutes_at = match hh_mm {
        [_, _, b':', _, _] => 3,
        [_, _, _, _] => 2,
        _ => return None,
    };
    let hours = digits(hh_mm, 0, 2)?;
    let minutes = digits(hh_mm, minutes_at, 2)?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * i64::from(hours * 3600 + minutes * 60))
}

/// The outcome of checking a request's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampCheck {
    Ok,
    /// Older than the window. 401 "Signatures expired".
    Expired,
    /// More than the window ahead of our clock. The docs are silent; §2.5
    /// recommends rejecting it the same way (401 "Signatures expired").
    Future,
    /// Not a timestamp [`parse_timestamp`] understands.
    Unparseable,
}

/// Compares a timestamp with `now`: more than `window` old is
/// [`TimestampCheck::Expired`], more than `window` ahead is
/// [`TimestampCheck::Future`] (clock skew tolerance is the same window).
/// Exactly `window` away is still accepted.
pub fn check_timestamp(ts: &str, now: DateTime<Utc>, window: TimeDelta) -> TimestampCheck {
    let Some(sent) = parse_timestamp(ts) else {
        return TimestampCheck::Unparseable;
    };
    let age = now.signed_duration_since(sent);
    if age > window {
        TimestampCheck::Expired
    } else if -age > window {
        TimestampCheck::Future
    } else {
        TimestampCheck::Ok
    }
}

/// The signature lifetime for a request (§2.5): 30 minutes for
/// `POST /videos.json`, because the legacy uploader signed that request when
/// the page was rendered and sends it later from the browser; 5 minutes for
/// everything else (the docs name no window for other POSTs; §10 #7).
/// `path` may be the signed or the routing form; `/videos` without a suffix
/// counts too (§1.1: no suffix means JSON).
pub fn expiry_window(method: &str, path: &str) -> TimeDelta {
    const DEFAULT: TimeDelta = TimeDelta::minutes(5);
    const VIDEO_CREATE: TimeDelta = TimeDelta::minutes(30);
    let route = route_path(&normalize_path(path));
    if method.eq_ignore_ascii_case("POST") && matches!(route.as_str(), "/videos.json" | "/videos") {
        VIDEO_CREATE
    } else {
        DEFAULT
    }
}

/// The path a client signed, from the raw path after `/v2`: repeated slashes
/// collapsed (ColdFusion requests `/v2//videos.json` but signs
/// `/videos.json`, §1.1) and a leading `/` ensured. Everything else is kept
/// as received, including [py]'s doubled `.json.json`, because that is what
/// it signed.
pub fn normalize_path(raw_path_after_v2: &str) -> String {
    let mut out = String::with_capacity(raw_path_after_v2.len() + 1);
    out.push('/');
    for c in raw_path_after_v2.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// The path to route on: the signed path with [py]'s doubled `.json.json`
/// suffix (`/encodings/<id>/cancel.json.json`) reduced to `.json` (§1.1).
pub fn route_path(signed_path: &str) -> String {
    let mut path = signed_path;
    while let Some(shorter) = path.strip_suffix(".json")
        && shorter.ends_with(".json")
    {
        path = shorter;
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// One published vector: the inputs, the encoding variant the client
    /// uses, and the signature it publishes.
    struct Vector<'a> {
        secret: &'a str,
        host: &'a str,
        method: &'a str,
        path: &'a str,
        params: &'a [(&'a str, &'a str)],
        enc: Encoding,
        signature: &'a str,
    }

    impl Vector<'_> {
        fn canonical(&self) -> String {
            canonical_query(&pairs(self.params), self.enc)
        }

        fn computed(&self) -> String {
            let to_sign = string_to_sign(self.method, self.host, self.path, &self.canonical());
            sign(self.secret, &to_sign)
        }

        fn verifies(&self, pairs: &[(String, String)], signature: &str) -> bool {
            verify(&VerifyInput {
                method: self.method,
                path: self.path,
                hosts: &[self.host.to_owned()],
                pairs,
                secret: self.secret,
                signature,
            })
        }

        /// Computes the published signature, verifies it, and checks that a
        /// one-character change in the signature, in each parameter value and
        /// in the secret is rejected.
        fn check(&self) {
            assert_eq!(
                self.computed(),
                self.signature,
                "signature of {}",
                self.canonical()
            );
            let good = pairs(self.params);
            assert!(
                self.verifies(&good, self.signature),
                "verify {}",
                self.canonical()
            );

            assert!(!self.verifies(&good, &change_one_char(self.signature)));
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i].1 = change_one_char(&bad[i].1);
                assert!(!self.verifies(&bad, self.signature), "changed {}", bad[i].0);
            }
            let wrong_secret = change_one_char(self.secret);
            let tampered = Vector {
                secret: &wrong_secret,
                ..*self
            };
            assert!(!tampered.verifies(&good, self.signature));
        }
    }

    fn change_one_char(s: &str) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        match chars.first_mut() {
            Some(c) => *c = if *c == 'A' { 'B' } else { 'A' },
            None => chars.push('A'),
        }
        chars.into_iter().collect()
    }

    const DOCS_KEYS: [(&str, &str); 2] = [("access_key", "abcdefgh"), ("cloud_id", "123456789")];

    fn docs_vector<'a>(
        method: &'a str,
        path: &'a str,
        params: &'a [(&'a str, &'a str)],
        signature: &'a str,
    ) -> Vector<'a> {
        Vector {
            secret: "ijklmnop",
            host: "api.pandastream.com",
            method,
            path,
            params,
            enc: Encoding::Strict,
            signature,
        }
    }

    // ---- §2.9 test vectors ----

    #[test]
    fn docs_worked_example() {
        let params = [
            DOCS_KEYS[0],
            DOCS_KEYS[1],
            ("timestamp", "2011-03-01T15:39:10.260762Z"),
        ];
        let v = docs_vector(
            "GET",
            "/videos.json",
            &params,
            "kVnZs/NX13ldKPdhFYoVnoclr8075DwiZF0TGgIbMsc=",
        );
        assert_eq!(
            string_to_sign(v.method, v.host, v.path, &v.canonical()),
            "GET\napi.pandastream.com\n/videos.json\n\
             access_key=abcdefgh&cloud_id=123456789&timestamp=2011-03-01T15%3A39%3A10.260762Z"
        );
        v.check();
    }

    #[test]
    fn tv2_post_with_extra_params() {
        let params = [
            DOCS_KEYS[0],
            DOCS_KEYS[1],
            ("timestamp", "2015-03-16T12:00:00.123456Z"),
            ("source_url", "http://example.com/my video.mp4"),
            ("profiles", "h264,webm"),
            ("path_format", "my-path/:video_id/:id"),
            ("payload", "user=42&x=~ok"),
        ];
        let v = docs_vector(
            "POST",
            "/videos.json",
            &params,
            "kxhmu3wR9eiI22yTeYvbkdSppFlB/VlcMncGlJ17DmA=",
        );
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&cloud_id=123456789&path_format=my-path%2F%3Avideo_id%2F%3Aid\
             &payload=user%3D42%26x%3D~ok&profiles=h264%2Cwebm\
             &source_url=http%3A%2F%2Fexample.com%2Fmy%20video.mp4\
             &timestamp=2015-03-16T12%3A00%3A00.123456Z"
        );
        v.check();
    }

    #[test]
    fn tv3_put_with_nested_params() {
        let params = [
            ("timestamp", "2015-03-16T12:00:00+00:00"),
            ("url", "http://example.com/panda_notification"),
            ("events[video_created]", "false"),
            ("events[video_encoded]", "true"),
            ("events[encoding_progress]", "false"),
            ("events[encoding_completed]", "false"),
            DOCS_KEYS[0],
            DOCS_KEYS[1],
        ];
        let v = docs_vector(
            "PUT",
            "/notifications.json",
            &params,
            "USTvHRW/hPBjtSxhPOTwzWvVQDOvIzjTL1mse3840P4=",
        );
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&cloud_id=123456789&events[encoding_completed]=false\
             &events[encoding_progress]=false&events[video_created]=false\
             &events[video_encoded]=true&timestamp=2015-03-16T12%3A00%3A00%2B00%3A00\
             &url=http%3A%2F%2Fexample.com%2Fpanda_notification"
        );
        v.check();
    }

    const TV3_MINIMAL: [(&str, &str); 4] = [
        DOCS_KEYS[0],
        DOCS_KEYS[1],
        ("events[video_encoded]", "true"),
        ("timestamp", "2015-03-16T12:00:00+00:00"),
    ];

    #[test]
    fn tv3_minimal_strict() {
        let v = docs_vector(
            "PUT",
            "/notifications.json",
            &TV3_MINIMAL,
            "C7O0DCnSdoqiimBD8zFmuyCM53p5ceJsnr/a2s0qOJk=",
        );
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&cloud_id=123456789&events[video_encoded]=true\
             &timestamp=2015-03-16T12%3A00%3A00%2B00%3A00"
        );
        v.check();
    }

    #[test]
    fn tv3_php_flat_keys() {
        let v = Vector {
            enc: Encoding::PhpFlatKeys,
            ..docs_vector(
                "PUT",
                "/notifications.json",
                &TV3_MINIMAL,
                "SayAMzssN+ZKjEmLq/63imj5wLrWl81rLqSzzh6qnBw=",
            )
        };
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&cloud_id=123456789&events%5Bvideo_encoded%5D=true\
             &timestamp=2015-03-16T12%3A00%3A00%2B00%3A00"
        );
        v.check();
    }

    #[test]
    fn tv3_python_json_events() {
        let params = [
            DOCS_KEYS[0],
            DOCS_KEYS[1],
            ("events", r#"{"video_encoded": "true"}"#),
            ("timestamp", "2015-03-16T12:00:00.123456+00:00"),
        ];
        let v = docs_vector(
            "PUT",
            "/notifications.json",
            &params,
            "zude9SaQVXf0xWT2j+VGXpzaVRUq9QykNVKpVaum6EY=",
        );
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&cloud_id=123456789\
             &events=%7B%22video_encoded%22%3A%20%22true%22%7D\
             &timestamp=2015-03-16T12%3A00%3A00.123456%2B00%3A00"
        );
        v.check();
    }

    #[test]
    fn tv4_gem_without_cloud_id() {
        let params = [DOCS_KEYS[0], ("timestamp", "2015-03-16T12:00:00.123456Z")];
        let v = docs_vector(
            "GET",
            "/clouds/123456789.json",
            &params,
            "ZDYLWnIWFMX7HaxwT4PuFVGl2BNY0u8X9NdDapuM8/s=",
        );
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&timestamp=2015-03-16T12%3A00%3A00.123456Z"
        );
        v.check();
    }

    #[test]
    fn tv5_upload_session() {
        let params = [
            ("file_name", "panda.mp4"),
            ("file_size", "805301"),
            ("profiles", "h264"),
            ("use_all_profiles", "false"),
            ("timestamp", "2015-03-16T12:00:00.000Z"),
            DOCS_KEYS[0],
            DOCS_KEYS[1],
        ];
        let v = Vector {
            host: "api-eu.pandastream.com",
            ..docs_vector(
                "POST",
                "/videos/upload.json",
                &params,
                "PSupRJs2qdIvwVk0gAnJkVeIV3pi++6uhXlSDiFD9wY=",
            )
        };
        assert_eq!(
            v.canonical(),
            "access_key=abcdefgh&cloud_id=123456789&file_name=panda.mp4&file_size=805301\
             &profiles=h264&timestamp=2015-03-16T12%3A00%3A00.000Z&use_all_profiles=false"
        );
        v.check();
    }

    const TV6_PARAMS: [(&str, &str); 3] = [
        DOCS_KEYS[0],
        DOCS_KEYS[1],
        ("timestamp", "2015-03-16T12:00:00.123456Z"),
    ];
    const TV6_WITH_PORT: &str = "vW5NPdNsXlaLSdM3wG9ROXJtOt4U6+I9q0fKkL0otT4=";
    const TV6_WITHOUT_PORT: &str = "95zkvyL9NLcoWx7tP39C5PsoyJfbR8A1AZnM1Pxj03s=";

    #[test]
    fn tv6_host_with_and_without_port() {
        let base = docs_vector("GET", "/videos.json", &TV6_PARAMS, "");
        Vector {
            host: "localhost:8080",
            signature: TV6_WITH_PORT,
            ..base
        }
        .check();
        Vector {
            host: "localhost",
            signature: TV6_WITHOUT_PORT,
            ..base
        }
        .check();
    }

    #[test]
    fn tv6_both_signatures_verify_from_one_host_header() {
        let hosts = host_candidates(Some("LocalHost:8080"), &[]);
        let signing = pairs(&TV6_PARAMS);
        for signature in [TV6_WITH_PORT, TV6_WITHOUT_PORT] {
            assert!(verify(&VerifyInput {
                method: "GET",
                path: "/videos.json",
                hosts: &hosts,
                pairs: &signing,
                secret: "ijklmnop",
                signature,
            }));
        }
    }

    const TV7_PARAMS: [(&str, &str); 4] = [
        DOCS_KEYS[0],
        DOCS_KEYS[1],
        ("source_url", "http://example.com/my video.mp4"),
        ("timestamp", "2015-03-16T12:00:00+00:00"),
    ];

    #[test]
    fn tv7_space_strict() {
        let v = docs_vector(
            "POST",
            "/videos.json",
            &TV7_PARAMS,
            "8kgTkdVh//hw9oT0ZqwRJ3cgIIOHQ5boo8pQuoEJk98=",
        );
        assert!(v.canonical().contains("my%20video.mp4"));
        v.check();
    }

    #[test]
    fn tv7_space_dotnet() {
        let v = Vector {
            enc: Encoding::DotNet,
            ..docs_vector(
                "POST",
                "/videos.json",
                &TV7_PARAMS,
                "zFO3XjDNuOsja3Gi0Fl4xFweKVnv9g5H99K/Iy5vbqE=",
            )
        };
        assert!(
            v.canonical()
                .contains("source_url=http%3A%2F%2Fexample.com%2Fmy+video.mp4")
        );
        v.check();
    }

    // ---- the clients' own test suites (§2.9 table) ----

    const GEM_KEYS: [(&str, &str); 3] = [
        ("access_key", "my_access_key"),
        ("cloud_id", "my_cloud_id"),
        ("timestamp", "2010-01-12T01:00:00.000000Z"),
    ];

    const PY_KEYS: [(&str, &str); 3] = [
        ("access_key", "my_access_key"),
        ("cloud_id", "my_cloud_id"),
        ("timestamp", "2009-11-04T17:54:11+00:00"),
    ];

    fn my_vector<'a>(
        method: &'a str,
        path: &'a str,
        params: &'a [(&'a str, &'a str)],
        signature: &'a str,
    ) -> Vector<'a> {
        Vector {
            secret: "my_secret_key",
            host: "myapihost",
            method,
            path,
            params,
            enc: Encoding::Strict,
            signature,
        }
    }

    #[test]
    fn gem_spec_vectors() {
        let with_params = [
            GEM_KEYS[0],
            GEM_KEYS[1],
            GEM_KEYS[2],
            ("param1", "one"),
            ("param2", "two"),
        ];
        let special = [
            GEM_KEYS[0],
            GEM_KEYS[1],
            GEM_KEYS[2],
            ("tilde", "~"),
            ("space", " "),
        ];
        for v in [
            my_vector(
                "GET",
                "/videos",
                &GEM_KEYS,
                "kAiCpkP52a2XKISJjRCBWzWCN5CaeLK3Nj1AT25S/Go=",
            ),
            my_vector(
                "POST",
                "/videos.json",
                &with_params,
                "/Yu4CqImbYNXWwpNSIfHzdWeMsR5J7O6tfbSHXQO0aA=",
            ),
            my_vector(
                "POST",
                "/videos.json",
                &GEM_KEYS,
                "QpQQm0guSLSEXmQ+EP2qnKT0av5llLWBUylEk9NEStU=",
            ),
            my_vector(
                "POST",
                "/videos.json",
                &special,
                "v7++pgmzztwOWzZ+MoflgD1TT8Jxnqzl1v8gNnEbhX8=",
            ),
        ] {
            v.check();
        }
    }

    #[test]
    fn gem_spec_file_param_is_not_signed() {
        use crate::api::params::Params;
        let mut query = pairs(&GEM_KEYS);
        query.push(("file".to_owned(), "/tmp/panda.mp4".to_owned()));
        query.push(("signature".to_owned(), "ignored".to_owned()));
        let signing = Params::new(query, Vec::new()).signing_pairs();
        assert!(verify(&VerifyInput {
            method: "POST",
            path: "/videos.json",
            hosts: &["myapihost".to_owned()],
            pairs: &signing,
            secret: "my_secret_key",
            signature: "QpQQm0guSLSEXmQ+EP2qnKT0av5llLWBUylEk9NEStU=",
        }));
    }

    #[test]
    fn python_test_vectors() {
        let params1 = [
            PY_KEYS[0],
            PY_KEYS[1],
            PY_KEYS[2],
            ("param1", "one"),
            ("param2", "two"),
        ];
        let numeric = [
            PY_KEYS[0],
            PY_KEYS[1],
            PY_KEYS[2],
            ("1", "one"),
            ("param2", "2"),
        ];
        let special = [
            PY_KEYS[0],
            PY_KEYS[1],
            PY_KEYS[2],
            ("tilde", "~"),
            ("space", " "),
            ("slash", "/"),
        ];
        let upload = [
            PY_KEYS[0],
            PY_KEYS[1],
            ("timestamp", "2014-12-22T17:54:11+00:00"),
            ("file_name", "original♥.mp4"),
        ];
        for v in [
            my_vector(
                "POST",
                "/videos.json",
                &PY_KEYS,
                "TI2n/dsSllxFhxcEShRGKWtDSqxu+kuJUPs335NavMo=",
            ),
            my_vector(
                "POST",
                "/videos.json",
                &params1,
                "w66goW6Ve5CT9Ibbx3ryvq4XM8OfIfSZe5oapgZBaUs=",
            ),
            my_vector(
                "POST",
                "/videos.json",
                &numeric,
                "n/tGZ9Pt70k+pprejGf8Khzxw9R1cAfrklh8lcjn+W0=",
            ),
            my_vector(
                "POST",
                "/videos.json",
                &special,
                "DHf9ERJmKQbcu8MCLP1Evv3BV2yIQo15MoTe9YV/rs8=",
            ),
            my_vector(
                "POST",
                "/videos/upload.json",
                &upload,
                "NBK3+4HtaolBLi0I1Ai9MEXQvCG+T96E7PEIKf4CMwM=",
            ),
        ] {
            v.check();
        }
        assert!(
            canonical_query(&pairs(&upload), Encoding::Strict).contains("original%E2%99%A5.mp4")
        );
    }

    #[test]
    fn php_test_vectors() {
        let empty = Vector {
            secret: "s3cr3t",
            host: "api.pandastream.com",
            method: "GET",
            path: "/videos.json",
            params: &[],
            enc: Encoding::Strict,
            signature: "RZml1S8BcxSTCaTSQVnXj/7QA0vM4M6FqRIUuntTYjk=",
        };
        assert_eq!(empty.canonical(), "");
        empty.check();

        let params = [
            (
                "upload_redirect_url",
                "http://localhost:44444/panda/simplest/player.php?panda_video_id=$id",
            ),
            ("cloud_id", "5385adf38f3e39de1ddcf4c1b81ad056"),
            ("access_key", "9c264aba-8d97-df11-b01b-12313c0091c1"),
            ("timestamp", "2010-07-16T06:27:54+00:00"),
        ];
        Vector {
            secret: "s3cre3t",
            host: "api-eu.pandastream.com",
            method: "POST",
            path: "/videos.json",
            params: &params,
            enc: Encoding::PhpFlatKeys,
            signature: "cjwZnRNeKzTS3yS3z4OSWXOW7PovPEk75ZYFmVzd4N8=",
        }
        .check();
    }

    #[test]
    fn node_spec_vectors() {
        let keys = [
            ("cloud_id", "123456789"),
            ("access_key", "abcdefgh"),
            ("timestamp", "2011-09-26T13:35:57.000Z"),
        ];
        let preset = [keys[0], keys[1], keys[2], ("preset_name", "h264")];
        let width = [keys[0], keys[1], keys[2], ("width", "800")];
        let eu = Vector {
            host: "api-eu.pandastream.com",
            ..docs_vector(
                "GET",
                "/profiles.json",
                &keys,
                "dO5aLQTo4uHjOF70CymKia25Cc8/z/yF910BloMdlaY=",
            )
        };
        for v in [
            docs_vector(
                "GET",
                "/profiles.json",
                &keys,
                "sKnL9pjj5YB/MM+5Oh0cQIV+/yuNWJJirVYd9D7yssk=",
            ),
            eu,
            docs_vector(
                "POST",
                "/profiles.json",
                &preset,
                "V44Eet5227ISDFw1cVjULlFA09MO0MQErLqvG7B2K6g=",
            ),
            docs_vector(
                "PUT",
                "/profiles.json",
                &width,
                "1v4g1UOkOtAD3sFiLClym3rI1LpZ80Xh50X3C4FXiKM=",
            ),
        ] {
            v.check();
        }
    }

    #[test]
    fn dotnet_test_vector_without_leading_slash() {
        Vector {
            secret: "some_secret_key",
            host: "api.pandastream.com",
            method: "GET",
            path: "videos.json",
            params: &[
                ("some_parameter", "some_value"),
                ("another_parameter", "another_value"),
            ],
            enc: Encoding::DotNet,
            signature: "z4gJjCHfeJtPjhFKcepIvmfYSyRQPTPbkTGpRoo0UWU=",
        }
        .check();
    }

    #[test]
    fn docs_hex_digest_is_not_the_signature() {
        let hex = "9159d9b3f357d7795d28f761158a159e8725afcd3be43c22645d131a021b32c7";
        let params = pairs(&[
            DOCS_KEYS[0],
            DOCS_KEYS[1],
            ("timestamp", "2011-03-01T15:39:10.260762Z"),
        ]);
        assert!(!verify(&VerifyInput {
            method: "GET",
            path: "/videos.json",
            hosts: &["api.pandastream.com".to_owned()],
            pairs: &params,
            secret: "ijklmnop",
            signature: hex,
        }));
    }

    // ---- encoding variants ----

    #[test]
    fn encodings_differ_only_where_clients_differ() {
        let p = pairs(&[("k", "a b~!*()/+"), ("events[x y]", "1")]);
        assert_eq!(
            canonical_query(&p, Encoding::Strict),
            "events[x%20y]=1&k=a%20b~%21%2A%28%29%2F%2B"
        );
        assert_eq!(
            canonical_query(&p, Encoding::PhpFlatKeys),
            "events%5Bx%20y%5D=1&k=a%20b~%21%2A%28%29%2F%2B"
        );
        assert_eq!(
            canonical_query(&p, Encoding::DotNet),
            "events[x y]=1&k=a+b%7E!*()%2F%2B"
        );
        assert_eq!(
            canonical_query(&p, Encoding::Xabbuh),
            "events[x%20y]=1&k=a%20b%7E%21%2A%28%29%2F%2B"
        );
    }

    #[test]
    fn nested_keys_sort_at_their_base_except_for_php() {
        let p = pairs(&[("a0", "2"), ("a[b]", "1"), ("a", "0")]);
        assert_eq!(canonical_query(&p, Encoding::Strict), "a=0&a[b]=1&a0=2");
        assert_eq!(
            canonical_query(&p, Encoding::PhpFlatKeys),
            "a=0&a0=2&a%5Bb%5D=1"
        );
    }

    #[test]
    fn bracket_only_keys_are_flat() {
        let p = pairs(&[("[x]", "1")]);
        assert_eq!(canonical_query(&p, Encoding::Strict), "%5Bx%5D=1");
    }

    #[test]
    fn xabbuh_tilde_verifies() {
        let params = pairs(&[
            DOCS_KEYS[0],
            DOCS_KEYS[1],
            ("timestamp", "2015-03-16T12:00:00+00:00"),
            ("title", "~x"),
        ]);
        let canonical = canonical_query(&params, Encoding::Xabbuh);
        assert!(canonical.contains("title=%7Ex"));
        let signature = sign(
            "ijklmnop",
            &string_to_sign("POST", "api.pandastream.com", "/videos.json", &canonical),
        );
        assert!(verify(&VerifyInput {
            method: "POST",
            path: "/videos.json",
            hosts: &["api.pandastream.com".to_owned()],
            pairs: &params,
            secret: "ijklmnop",
            signature: &signature,
        }));
    }

    // ---- leniencies of verify ----

    fn tv3_minimal_input<'a>(
        pairs: &'a [(String, String)],
        hosts: &'a [String],
        signature: &'a str,
    ) -> VerifyInput<'a> {
        VerifyInput {
            method: "put",
            path: "/notifications.json",
            hosts,
            pairs,
            secret: "ijklmnop",
            signature,
        }
    }

    #[test]
    fn php_flat_key_signature_verifies_against_bracket_params() {
        let hosts = ["api.pandastream.com".to_owned()];
        let signing = pairs(&TV3_MINIMAL);
        let php = "SayAMzssN+ZKjEmLq/63imj5wLrWl81rLqSzzh6qnBw=";
        assert!(verify(&tv3_minimal_input(&signing, &hosts, php)));
    }

    #[test]
    fn signature_plus_decoded_to_space_is_tolerated() {
        let hosts = ["api.pandastream.com".to_owned()];
        let signing = pairs(&TV3_MINIMAL);
        let mangled = "SayAMzssN ZKjEmLq/63imj5wLrWl81rLqSzzh6qnBw=";
        assert!(verify(&tv3_minimal_input(&signing, &hosts, mangled)));
        assert!(!verify(&tv3_minimal_input(&signing, &hosts, "")));
        assert!(!verify(&tv3_minimal_input(&signing, &hosts, " ")));
    }

    #[test]
    fn timestamp_plus_decoded_to_space_is_tolerated() {
        let hosts = ["api.pandastream.com".to_owned()];
        let mut signing = pairs(&TV3_MINIMAL);
        signing[3].1 = "2015-03-16T12:00:00 00:00".to_owned();
        let strict = "C7O0DCnSdoqiimBD8zFmuyCM53p5ceJsnr/a2s0qOJk=";
        assert!(verify(&tv3_minimal_input(&signing, &hosts, strict)));
        signing[3].1 = "2015-03-16T12:00:00 x0:00".to_owned();
        assert!(!verify(&tv3_minimal_input(&signing, &hosts, strict)));
    }

    #[test]
    fn no_hosts_never_verifies() {
        let signing = pairs(&TV3_MINIMAL);
        let strict = "C7O0DCnSdoqiimBD8zFmuyCM53p5ceJsnr/a2s0qOJk=";
        assert!(!verify(&tv3_minimal_input(&signing, &[], strict)));
    }

    // ---- hosts ----

    #[test]
    fn host_candidates_in_order_without_duplicates() {
        let configured = [
            "videos.example.org".to_owned(),
            "api.example.com".to_owned(),
            " ".to_owned(),
        ];
        assert_eq!(
            host_candidates(Some("API.Example.com:8080"), &configured),
            [
                "api.example.com",
                "api.example.com:8080",
                "API.Example.com",
                "API.Example.com:8080",
                "videos.example.org",
            ]
        );
        assert_eq!(
            host_candidates(Some("localhost"), &["localhost".to_owned()]),
            ["localhost"]
        );
        assert_eq!(
            host_candidates(None, &configured),
            ["videos.example.org", "api.example.com"]
        );
        assert!(host_candidates(Some("  "), &[]).is_empty());
    }

    #[test]
    fn host_candidates_ipv6_and_odd_ports() {
        assert_eq!(
            host_candidates(Some("[::1]:8080"), &[]),
            ["[::1]", "[::1]:8080"]
        );
        assert_eq!(host_candidates(Some("[::1]"), &[]), ["[::1]"]);
        assert_eq!(host_candidates(Some("::1"), &[]), ["::1"]);
        assert_eq!(host_candidates(Some("host:"), &[]), ["host"]);
        assert_eq!(host_candidates(Some("host:http"), &[]), ["host:http"]);
    }

    // ---- timestamps ----

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
            + TimeDelta::microseconds(i64::from(micros))
    }

    #[test]
    fn client_timestamp_formats_parse() {
        let cases = [
            ("2010-01-12T01:00:00.000000Z", utc(2010, 1, 12, 1, 0, 0, 0)), // gem >= 1.4
            (
                "2010-07-16T08:27:54.123456+02:00",
                utc(2010, 7, 16, 6, 27, 54, 123_456),
            ), // gem <= 1.3
            (
                "2015-05-11T14:12:14.123456+00:00",
                utc(2015, 5, 11, 14, 12, 14, 123_456),
            ), // py
            ("2015-05-11T14:12:14+00:00", utc(2015, 5, 11, 14, 12, 14, 0)), // py, php, xabbuh
            ("2011-09-26T13:35:57.000Z", utc(2011, 9, 26, 13, 35, 57, 0)), // node
            ("2011-09-26T13:35:57+00:00", utc(2011, 9, 26, 13, 35, 57, 0)), // .net
            (
                "2015-05-11T14:12:14.1234+00:00",
                utc(2015, 5, 11, 14, 12, 14, 123_400),
            ), // go
            ("2011-09-26T13:35:57Z", utc(2011, 9, 26, 13, 35, 57, 0)),     // cfc
            (
                "2011-03-01T15:39:10.260762Z",
                utc(2011, 3, 1, 15, 39, 10, 260_762),
            ), // docs
            (
                "2010-02-26T15:01:46.221513",
                utc(2010, 2, 26, 15, 1, 46, 221_513),
            ), // no zone
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
    }

    #[test]
    fn lenient_timestamp_spellings_parse() {
        let noon = utc(2015, 3, 16, 12, 0, 0, 0);
        let cases = [
            ("2015-03-16t12:00:00z", noon),
            ("2015-03-16T12:00:00 00:00", noon),
            ("2015-03-16T13:30:00+0130", noon),
            ("2015-03-16T07:00:00-05:00", noon),
            ("2015-03-16T06:30:00-0530", noon),
            (
                "2015-03-16T12:00:00.5Z",
                noon + TimeDelta::milliseconds(500),
            ),
            (
                "2015-03-16T12:00:00.123456789Z",
                noon + TimeDelta::nanoseconds(123_456_789),
            ),
            ("2015-03-16T12:00:00 0000", noon),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for text in [
            "",
            "garbage",
            "2015-03-16",
            "2015-03-16 12:00:00Z",
            "2015-03-16T12:00:00.Z",
            "2015-03-16T12:00:00.1234567890Z",
            "2015-13-16T12:00:00Z",
            "2015-02-30T12:00:00Z",
            "2015-03-16T24:00:00Z",
            "2015-03-16T12:00:60Z",
            "2015-03-16T12:00:00+24:00",
            "2015-03-16T12:00:00+01:60",
            "2015-03-16T12:00:00+01",
            "2015-03-16T12:00:00Zjunk",
            "2015-03-16T12:00:00UTC",
            "+015-03-16T12:00:00Z",
            "2015-03-16T12:00:0♥Z",
            "2015-03-16T12:00:00.12♥",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    fn stamp(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    #[test]
    fn windows() {
        let now = utc(2015, 3, 16, 12, 0, 0, 0);
        let five = expiry_window("GET", "/videos.json");
        let ago = |m: i64, s: i64| stamp(now - TimeDelta::minutes(m) - TimeDelta::seconds(s));
        assert_eq!(check_timestamp(&ago(4, 59), now, five), TimestampCheck::Ok);
        assert_eq!(check_timestamp(&ago(5, 0), now, five), TimestampCheck::Ok);
        assert_eq!(
            check_timestamp(&ago(5, 1), now, five),
            TimestampCheck::Expired
        );

        let upload = expiry_window("POST", "/videos.json");
        assert_eq!(
            check_timestamp(&ago(29, 0), now, upload),
            TimestampCheck::Ok
        );
        assert_eq!(
            check_timestamp(&ago(31, 0), now, upload),
            TimestampCheck::Expired
        );

        let ahead = |m: i64| stamp(now + TimeDelta::minutes(m));
        assert_eq!(check_timestamp(&ahead(4), now, five), TimestampCheck::Ok);
        assert_eq!(
            check_timestamp(&ahead(6), now, five),
            TimestampCheck::Future
        );
        assert_eq!(
            check_timestamp("yesterday", now, five),
            TimestampCheck::Unparseable
        );
    }

    #[test]
    fn window_with_local_offset() {
        let now = utc(2010, 7, 16, 6, 30, 0, 0);
        let window = expiry_window("GET", "/videos.json");
        // 08:27:54+02:00 is 06:27:54 UTC: 2 min 6 s old.
        assert_eq!(
            check_timestamp("2010-07-16T08:27:54+02:00", now, window),
            TimestampCheck::Ok
        );
    }

    #[test]
    fn expiry_window_is_long_only_for_video_creation() {
        let long = TimeDelta::minutes(30);
        let short = TimeDelta::minutes(5);
        assert_eq!(expiry_window("POST", "/videos.json"), long);
        assert_eq!(expiry_window("post", "//videos.json"), long);
        assert_eq!(expiry_window("POST", "/videos"), long);
        assert_eq!(expiry_window("GET", "/videos.json"), short);
        assert_eq!(expiry_window("PUT", "/videos.json"), short);
        assert_eq!(expiry_window("POST", "/videos/upload.json"), short);
        assert_eq!(expiry_window("POST", "/profiles.json"), short);
    }

    // ---- paths ----

    #[test]
    fn normalize_path_collapses_slashes_and_keeps_the_rest() {
        let cases = [
            ("//videos.json", "/videos.json"),
            ("/videos.json", "/videos.json"),
            ("videos.json", "/videos.json"),
            ("", "/"),
            ("/a///b//c.json", "/a/b/c.json"),
            (
                "/encodings/abc/cancel.json.json",
                "/encodings/abc/cancel.json.json",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn route_path_strips_doubled_json() {
        assert_eq!(
            route_path("/encodings/abc/cancel.json.json"),
            "/encodings/abc/cancel.json"
        );
        assert_eq!(
            route_path("/encodings/abc/retry.json.json"),
            "/encodings/abc/retry.json"
        );
        assert_eq!(route_path("/videos.json"), "/videos.json");
        assert_eq!(route_path("/videos"), "/videos");
        assert_eq!(route_path("/.json"), "/.json");
    }
}
