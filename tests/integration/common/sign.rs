//! Our own implementation of Panda's request signature (spec §2.2–2.4),
//! written from the spec alone so that it can catch mistakes in the server's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

/// RFC 3986 unreserved characters stay; everything else is `%XX` (uppercase).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The [.net] client: like strict, but `! * ( )` stay and `~` is escaped
/// (spaces are turned into `+` separately).
const DOTNET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'*')
    .remove(b'(')
    .remove(b')');

/// The ways real clients build the canonical query string (spec §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// e1: strict §2.2, what every well-behaved client does.
    Strict,
    /// e2: [php]-official with flat `events[x]` keys: whole keys are encoded,
    /// so the brackets become `%5B`/`%5D`.
    PhpFlat,
    /// e3: [.net]: spaces as `+`, `!*()` bare, `~` as `%7E`, keys not encoded.
    DotNet,
    /// e4: [xabbuh]: strict, except `~` is `%7E`.
    Xabbuh,
}

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

fn encode_value(s: &str, variant: Variant) -> String {
    match variant {
        Variant::Strict | Variant::PhpFlat => encode(s),
        Variant::Xabbuh => encode(s).replace('~', "%7E"),
        Variant::DotNet => s
            .split(' ')
            .map(|part| utf8_percent_encode(part, DOTNET).to_string())
            .collect::<Vec<_>>()
            .join("+"),
    }
}

/// Splits `base[sub]` into its parts; plain keys have no `sub`.
fn split_key(key: &str) -> (&str, Option<&str>) {
    if let Some(open) = key.find('[')
        && key.ends_with(']')
        && open > 0
    {
        return (&key[..open], Some(&key[open + 1..key.len() - 1]));
    }
    (key, None)
}

fn encode_key(key: &str, variant: Variant) -> String {
    match variant {
        Variant::DotNet => key.to_string(),
        Variant::PhpFlat => encode(key),
        Variant::Strict | Variant::Xabbuh => match split_key(key) {
            (base, Some(sub)) => format!("{base}[{}]", encode_value(sub, variant)),
            (base, None) => encode_value(base, variant),
        },
    }
}

/// The canonical query string of §2.2: every parameter except `signature` and
/// `file`, sorted by key (nested keys at their base's position, then by sub
/// key), each key and value encoded per `variant`, joined with `&`.
pub fn canonical_query(params: &[(String, String)], variant: Variant) -> String {
    let mut pairs: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "signature" && k != "file")
        .collect();
    pairs.sort_by(|(a, _), (b, _)| {
        let (ab, asub) = split_key(a);
        let (bb, bsub) = split_key(b);
        ab.as_bytes()
            .cmp(bb.as_bytes())
            .then_with(|| asub.map(str::as_bytes).cmp(&bsub.map(str::as_bytes)))
    });
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_key(k, variant), encode_value(v, variant)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn string_to_sign(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    variant: Variant,
) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        method.to_uppercase(),
        host,
        path,
        canonical_query(params, variant)
    )
}

/// Base64 of HMAC-SHA256(secret, string_to_sign) (§2.3).
pub fn sign(
    secret: &str,
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    variant: Variant,
) -> String {
    let text = string_to_sign(method, host, path, params, variant);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(text.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod vectors {
    //! The test vectors of spec §2.9.
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn usual(ts: &str) -> Vec<(String, String)> {
        p(&[
            ("access_key", "abcdefgh"),
            ("cloud_id", "123456789"),
            ("timestamp", ts),
        ])
    }

    fn check(got: String, want: &str, what: &str) {
        assert_eq!(
            got, want,
            "signature for {what}: expected {want}, computed {got}"
        );
    }

    #[test]
    fn signer_matches_docs_worked_example() {
        let params = usual("2011-03-01T15:39:10.260762Z");
        assert_eq!(
            string_to_sign(
                "GET",
                "api.pandastream.com",
                "/videos.json",
                &params,
                Variant::Strict
            ),
            "GET\napi.pandastream.com\n/videos.json\naccess_key=abcdefgh&cloud_id=123456789&timestamp=2011-03-01T15%3A39%3A10.260762Z"
        );
        check(
            sign(
                "ijklmnop",
                "GET",
                "api.pandastream.com",
                "/videos.json",
                &params,
                Variant::Strict,
            ),
            "kVnZs/NX13ldKPdhFYoVnoclr8075DwiZF0TGgIbMsc=",
            "the docs' worked example",
        );
    }

    #[test]
    fn signer_matches_tv2_post_with_extra_params() {
        let mut params = usual("2015-03-16T12:00:00.123456Z");
        params.extend(p(&[
            ("source_url", "http://example.com/my video.mp4"),
            ("profiles", "h264,webm"),
            ("path_format", "my-path/:video_id/:id"),
            ("payload", "user=42&x=~ok"),
        ]));
        assert_eq!(
            canonical_query(&params, Variant::Strict),
            "access_key=abcdefgh&cloud_id=123456789&path_format=my-path%2F%3Avideo_id%2F%3Aid&payload=user%3D42%26x%3D~ok&profiles=h264%2Cwebm&source_url=http%3A%2F%2Fexample.com%2Fmy%20video.mp4&timestamp=2015-03-16T12%3A00%3A00.123456Z"
        );
        check(
            sign(
                "ijklmnop",
                "POST",
                "api.pandastream.com",
                "/videos.json",
                &params,
                Variant::Strict,
            ),
            "kxhmu3wR9eiI22yTeYvbkdSppFlB/VlcMncGlJ17DmA=",
            "TV-2",
        );
    }

    #[test]
    fn signer_matches_tv3_nested_params_and_variants() {
        let mut params = usual("2015-03-16T12:00:00+00:00");
        params.extend(p(&[
            ("url", "http://example.com/panda_notification"),
            ("events[video_created]", "false"),
            ("events[video_encoded]", "true"),
            ("events[encoding_progress]", "false"),
            ("events[encoding_completed]", "false"),
        ]));
        assert_eq!(
            canonical_query(&params, Variant::Strict),
            "access_key=abcdefgh&cloud_id=123456789&events[encoding_completed]=false&events[encoding_progress]=false&events[video_created]=false&events[video_encoded]=true&timestamp=2015-03-16T12%3A00%3A00%2B00%3A00&url=http%3A%2F%2Fexample.com%2Fpanda_notification"
        );
        let host = "api.pandastream.com";
        check(
            sign(
                "ijklmnop",
                "PUT",
                host,
                "/notifications.json",
                &params,
                Variant::Strict,
            ),
            "USTvHRW/hPBjtSxhPOTwzWvVQDOvIzjTL1mse3840P4=",
            "TV-3",
        );

        let mut minimal = usual("2015-03-16T12:00:00+00:00");
        minimal.push(("events[video_encoded]".into(), "true".into()));
        check(
            sign(
                "ijklmnop",
                "PUT",
                host,
                "/notifications.json",
                &minimal,
                Variant::Strict,
            ),
            "C7O0DCnSdoqiimBD8zFmuyCM53p5ceJsnr/a2s0qOJk=",
            "TV-3 minimal strict",
        );
        assert_eq!(
            canonical_query(&minimal, Variant::PhpFlat),
            "access_key=abcdefgh&cloud_id=123456789&events%5Bvideo_encoded%5D=true&timestamp=2015-03-16T12%3A00%3A00%2B00%3A00"
        );
        check(
            sign(
                "ijklmnop",
                "PUT",
                host,
                "/notifications.json",
                &minimal,
                Variant::PhpFlat,
            ),
            "SayAMzssN+ZKjEmLq/63imj5wLrWl81rLqSzzh6qnBw=",
            "TV-3 php flat key (e2)",
        );

        let mut py = usual("2015-03-16T12:00:00.123456+00:00");
        py.push(("events".into(), r#"{"video_encoded": "true"}"#.into()));
        check(
            sign(
                "ijklmnop",
                "PUT",
                host,
                "/notifications.json",
                &py,
                Variant::Strict,
            ),
            "zude9SaQVXf0xWT2j+VGXpzaVRUq9QykNVKpVaum6EY=",
            "TV-3 py JSON events",
        );
    }

    #[test]
    fn signer_matches_tv4_to_tv7() {
        let gem = p(&[
            ("access_key", "abcdefgh"),
            ("timestamp", "2015-03-16T12:00:00.123456Z"),
        ]);
        check(
            sign(
                "ijklmnop",
                "GET",
                "api.pandastream.com",
                "/clouds/123456789.json",
                &gem,
                Variant::Strict,
            ),
            "ZDYLWnIWFMX7HaxwT4PuFVGl2BNY0u8X9NdDapuM8/s=",
            "TV-4 (no cloud_id)",
        );

        let mut upload = usual("2015-03-16T12:00:00.000Z");
        upload.extend(p(&[
            ("file_name", "panda.mp4"),
            ("file_size", "805301"),
            ("profiles", "h264"),
            ("use_all_profiles", "false"),
        ]));
        check(
            sign(
                "ijklmnop",
                "POST",
                "api-eu.pandastream.com",
                "/videos/upload.json",
                &upload,
                Variant::Strict,
            ),
            "PSupRJs2qdIvwVk0gAnJkVeIV3pi++6uhXlSDiFD9wY=",
            "TV-5",
        );

        let tv6 = usual("2015-03-16T12:00:00.123456Z");
        check(
            sign(
                "ijklmnop",
                "GET",
                "localhost:8080",
                "/videos.json",
                &tv6,
                Variant::Strict,
            ),
            "vW5NPdNsXlaLSdM3wG9ROXJtOt4U6+I9q0fKkL0otT4=",
            "TV-6 with port",
        );
        check(
            sign(
                "ijklmnop",
                "GET",
                "localhost",
                "/videos.json",
                &tv6,
                Variant::Strict,
            ),
            "95zkvyL9NLcoWx7tP39C5PsoyJfbR8A1AZnM1Pxj03s=",
            "TV-6 without port",
        );

        let mut tv7 = usual("2015-03-16T12:00:00+00:00");
        tv7.push((
            "source_url".into(),
            "http://example.com/my video.mp4".into(),
        ));
        check(
            sign(
                "ijklmnop",
                "POST",
                "api.pandastream.com",
                "/videos.json",
                &tv7,
                Variant::Strict,
            ),
            "8kgTkdVh//hw9oT0ZqwRJ3cgIIOHQ5boo8pQuoEJk98=",
            "TV-7 strict",
        );
        check(
            sign(
                "ijklmnop",
                "POST",
                "api.pandastream.com",
                "/videos.json",
                &tv7,
                Variant::DotNet,
            ),
            "zFO3XjDNuOsja3Gi0Fl4xFweKVnv9g5H99K/Iy5vbqE=",
            "TV-7 .NET",
        );
    }

    #[test]
    fn signer_matches_client_test_suites() {
        let gem = |extra: &[(&str, &str)]| {
            let mut v = p(&[
                ("access_key", "my_access_key"),
                ("cloud_id", "my_cloud_id"),
                ("timestamp", "2010-01-12T01:00:00.000000Z"),
            ]);
            v.extend(p(extra));
            v
        };
        let s = |method: &str, path: &str, params: &[(String, String)]| {
            sign(
                "my_secret_key",
                method,
                "myapihost",
                path,
                params,
                Variant::Strict,
            )
        };
        check(
            s("GET", "/videos", &gem(&[])),
            "kAiCpkP52a2XKISJjRCBWzWCN5CaeLK3Nj1AT25S/Go=",
            "gem GET",
        );
        check(
            s(
                "POST",
                "/videos.json",
                &gem(&[("param1", "one"), ("param2", "two")]),
            ),
            "/Yu4CqImbYNXWwpNSIfHzdWeMsR5J7O6tfbSHXQO0aA=",
            "gem POST with params",
        );
        check(
            s("POST", "/videos.json", &gem(&[])),
            "QpQQm0guSLSEXmQ+EP2qnKT0av5llLWBUylEk9NEStU=",
            "gem POST",
        );
        check(
            s("POST", "/videos.json", &gem(&[("file", "@/tmp/x.mp4")])),
            "QpQQm0guSLSEXmQ+EP2qnKT0av5llLWBUylEk9NEStU=",
            "gem POST with a file param (excluded)",
        );
        check(
            s(
                "POST",
                "/videos.json",
                &gem(&[("tilde", "~"), ("space", " ")]),
            ),
            "v7++pgmzztwOWzZ+MoflgD1TT8Jxnqzl1v8gNnEbhX8=",
            "gem tilde and space",
        );

        let py = |extra: &[(&str, &str)]| {
            let mut v = p(&[
                ("access_key", "my_access_key"),
                ("cloud_id", "my_cloud_id"),
                ("timestamp", "2009-11-04T17:54:11+00:00"),
            ]);
            v.extend(p(extra));
            v
        };
        check(
            s("POST", "/videos.json", &py(&[])),
            "TI2n/dsSllxFhxcEShRGKWtDSqxu+kuJUPs335NavMo=",
            "py POST",
        );
        check(
            s(
                "POST",
                "/videos.json",
                &py(&[("param1", "one"), ("param2", "two")]),
            ),
            "w66goW6Ve5CT9Ibbx3ryvq4XM8OfIfSZe5oapgZBaUs=",
            "py POST with params",
        );
        check(
            s(
                "POST",
                "/videos.json",
                &py(&[("1", "one"), ("param2", "2")]),
            ),
            "n/tGZ9Pt70k+pprejGf8Khzxw9R1cAfrklh8lcjn+W0=",
            "py numeric key",
        );
        check(
            s(
                "POST",
                "/videos.json",
                &py(&[("tilde", "~"), ("space", " "), ("slash", "/")]),
            ),
            "DHf9ERJmKQbcu8MCLP1Evv3BV2yIQo15MoTe9YV/rs8=",
            "py tilde, space, slash",
        );
        let mut utf8 = py(&[("file_name", "original♥.mp4")]);
        utf8.retain(|(k, _)| k != "timestamp");
        utf8.push(("timestamp".into(), "2014-12-22T17:54:11+00:00".into()));
        check(
            s("POST", "/videos/upload.json", &utf8),
            "NBK3+4HtaolBLi0I1Ai9MEXQvCG+T96E7PEIKf4CMwM=",
            "py UTF-8 file name",
        );

        check(
            sign(
                "s3cr3t",
                "GET",
                "api.pandastream.com",
                "/videos.json",
                &[],
                Variant::Strict,
            ),
            "RZml1S8BcxSTCaTSQVnXj/7QA0vM4M6FqRIUuntTYjk=",
            "php empty query",
        );
        let php = p(&[
            (
                "upload_redirect_url",
                "http://localhost:44444/panda/simplest/player.php?panda_video_id=$id",
            ),
            ("cloud_id", "5385adf38f3e39de1ddcf4c1b81ad056"),
            ("access_key", "9c264aba-8d97-df11-b01b-12313c0091c1"),
            ("timestamp", "2010-07-16T06:27:54+00:00"),
        ]);
        check(
            sign(
                "s3cre3t",
                "POST",
                "api-eu.pandastream.com",
                "/videos.json",
                &php,
                Variant::Strict,
            ),
            "cjwZnRNeKzTS3yS3z4OSWXOW7PovPEk75ZYFmVzd4N8=",
            "php upload_redirect_url",
        );

        let node = usual("2011-09-26T13:35:57.000Z");
        let n = |host: &str, method: &str, path: &str, params: &[(String, String)]| {
            sign("ijklmnop", method, host, path, params, Variant::Strict)
        };
        check(
            n("api.pandastream.com", "GET", "/profiles.json", &node),
            "sKnL9pjj5YB/MM+5Oh0cQIV+/yuNWJJirVYd9D7yssk=",
            "node GET",
        );
        check(
            n("api-eu.pandastream.com", "GET", "/profiles.json", &node),
            "dO5aLQTo4uHjOF70CymKia25Cc8/z/yF910BloMdlaY=",
            "node eu host",
        );
        let mut node_post = node.clone();
        node_post.push(("preset_name".into(), "h264".into()));
        check(
            n("api.pandastream.com", "POST", "/profiles.json", &node_post),
            "V44Eet5227ISDFw1cVjULlFA09MO0MQErLqvG7B2K6g=",
            "node POST preset",
        );
        let mut node_put = node.clone();
        node_put.push(("width".into(), "800".into()));
        check(
            n("api.pandastream.com", "PUT", "/profiles.json", &node_put),
            "1v4g1UOkOtAD3sFiLClym3rI1LpZ80Xh50X3C4FXiKM=",
            "node PUT width",
        );

        let dotnet = p(&[
            ("some_parameter", "some_value"),
            ("another_parameter", "another_value"),
        ]);
        check(
            sign(
                "some_secret_key",
                "GET",
                "api.pandastream.com",
                "videos.json",
                &dotnet,
                Variant::DotNet,
            ),
            "z4gJjCHfeJtPjhFKcepIvmfYSyRQPTPbkTGpRoo0UWU=",
            ".NET unit test",
        );
    }
}
