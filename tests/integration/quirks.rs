//! The quirks of real client libraries (spec §1.2, §2.4–2.6, Appendix A):
//! each request is built the way that client builds it, and must work.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn params_arrive_in_query_form_multipart_or_json() {
    let s = Server::start().await;
    let c = s.client();
    // [py]/[node]: everything in the query string of a POST, empty body
    let p = c
        .request(Method::POST, "/profiles.json")
        .params(&[
            ("preset_name", "webm"),
            ("name", "from-query"),
            ("width", "320"),
        ])
        .query()
        .send()
        .await
        .ok();
    assert_eq!(
        (p["name"].clone(), p["width"].clone()),
        (json!("from-query"), json!(320)),
        "{p}"
    );
    // gem/.NET/xabbuh: a form body
    let p = c
        .request(Method::POST, "/profiles.json")
        .params(&[("preset_name", "webm"), ("name", "from-form")])
        .form()
        .send()
        .await
        .ok();
    assert_eq!(p["name"], "from-form", "{p}");
    // [php]: multipart on POST
    let p = c
        .request(Method::POST, "/profiles.json")
        .params(&[("preset_name", "ogg"), ("name", "from-multipart")])
        .multipart()
        .send()
        .await
        .ok();
    assert_eq!(p["name"], "from-multipart", "{p}");
    // a JSON object body (SHOULD)
    let p = c
        .request(Method::POST, "/profiles.json")
        .params(&[("preset_name", "ogg"), ("name", "from-json")])
        .json()
        .send()
        .await
        .ok();
    assert_eq!(p["name"], "from-json", "{p}");

    // [php]: multipart on PUT
    let p = c
        .request(Method::PUT, "/profiles/from-form.json")
        .param("width", "800")
        .multipart()
        .send()
        .await
        .ok();
    assert_eq!(p["width"], 800, "multipart PUT: {p}");
    // [py]/[node]: PUT with the params in the query
    let p = c
        .request(Method::PUT, "/profiles/from-form.json")
        .param("height", "600")
        .query()
        .send()
        .await
        .ok();
    assert_eq!(
        (p["width"].clone(), p["height"].clone()),
        (json!(800), json!(600)),
        "{p}"
    );
    let p = c.get("/profiles/from-form.json", &[]).await.ok();
    assert_eq!(
        (p["width"].clone(), p["height"].clone()),
        (json!(800), json!(600)),
        "stored: {p}"
    );

    // unknown extra params are ignored (the gem sends id=, video_id=)
    let list = c
        .get("/profiles.json", &[("id", "x"), ("video_id", "y")])
        .await
        .ok();
    assert!(list.is_array(), "{list}");
}

#[tokio::test]
async fn odd_paths_of_real_clients_are_routed() {
    let s = Server::start().await;
    let c = s.client();
    // [cfc]: /v2//videos.json, signed as /videos.json
    let list = c
        .request(Method::GET, "//videos.json")
        .sign_path("/videos.json")
        .send()
        .await
        .ok();
    assert!(list.is_array(), "GET /v2//videos.json: {list}");
    let list = c
        .request(Method::GET, "//profiles.json")
        .sign_path("/profiles.json")
        .send()
        .await
        .ok();
    assert!(list.is_array(), "GET /v2//profiles.json: {list}");
}

#[tokio::test]
async fn every_timestamp_format_of_real_clients_is_accepted() {
    let s = Server::start().await;
    let c = s.client();
    let now = chrono::Utc::now();
    let local = now.with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap());
    let west = now.with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap());
    let formats = [
        (
            "gem >=1.4 (6 digits, Z)",
            now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        ),
        (
            "gem <=1.3 (local offset)",
            local.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
        ),
        (
            "py (µs, +00:00)",
            now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
        ),
        (
            "py/php/.NET (+00:00)",
            now.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        ),
        (
            "node (ms, Z)",
            now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        ),
        (
            "go (4 digits)",
            format!(
                "{}+00:00",
                &now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()[..24]
            ),
        ),
        (
            "cfc (Z, no fraction)",
            now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ),
        (
            "old READMEs (no zone)",
            now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        ),
        (
            "negative offset",
            west.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        ),
        (
            "offset without colon",
            local.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
        ),
        (
            "lowercase t and z",
            now.format("%Y-%m-%dt%H:%M:%Sz").to_string(),
        ),
    ];
    for (client, ts) in formats {
        let r = c
            .request(Method::GET, "/videos.json")
            .timestamp(&ts)
            .send()
            .await;
        assert_eq!(
            r.status, 200,
            "timestamp {ts:?} as sent by {client}: expected 200, got {} {}",
            r.status, r.json
        );
    }
}

#[tokio::test]
async fn host_is_signed_with_or_without_port() {
    let s = Server::start().await;
    let c = s.client();
    c.request(Method::GET, "/videos.json")
        .sign_host("127.0.0.1")
        .send()
        .await
        .ok();
    let with_port = format!("127.0.0.1:{}", s.port);
    c.request(Method::GET, "/videos.json")
        .sign_host(&with_port)
        .send()
        .await
        .ok();
    c.request(Method::GET, "/videos.json")
        .sign_host("example.org")
        .send()
        .await
        .err(401, "NotAuthorized");
}

#[tokio::test]
async fn dotnet_and_xabbuh_encodings_verify() {
    let s = Server::start().await;
    let c = s.client();
    let title = "My Clip (.NET) *draft*!";
    let p = c
        .request(Method::POST, "/profiles.json")
        .params(&[
            ("preset_name", "webm"),
            ("name", "dotnet"),
            ("title", title),
        ])
        .variant(Variant::DotNet)
        .send()
        .await
        .ok();
    assert_eq!(p["title"], title, ".NET form body with '+' for spaces: {p}");

    let title = "tilde~title";
    let p = c
        .request(Method::POST, "/profiles.json")
        .params(&[
            ("preset_name", "webm"),
            ("name", "xabbuh"),
            ("title", title),
        ])
        .variant(Variant::Xabbuh)
        .send()
        .await
        .ok();
    assert_eq!(p["title"], title, "xabbuh '~' signed as %7E: {p}");
}

#[tokio::test]
async fn cloud_id_is_optional_on_clouds_routes() {
    let s = Server::start().await;
    let c = s.client();
    let path = format!("/clouds/{}.json", s.cloud.id);
    // [gem] leaves cloud_id out on /clouds
    let cloud = c
        .request(Method::GET, &path)
        .cloud_id(None)
        .send()
        .await
        .ok();
    assert_eq!(cloud["id"], s.cloud.id.as_str(), "{cloud}");
    // [py] None, [node] null, [php]/[go] empty
    for v in ["None", "null", ""] {
        let cloud = c
            .request(Method::GET, &path)
            .cloud_id(Some(v))
            .send()
            .await
            .ok();
        assert_eq!(cloud["id"], s.cloud.id.as_str(), "cloud_id={v:?}: {cloud}");
    }
    let list = c
        .request(Method::GET, "/clouds.json")
        .cloud_id(None)
        .send()
        .await
        .ok();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap_or_else(|| panic!("GET /clouds.json: expected an array, got {list}"))
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        ids.contains(&s.cloud.id.as_str()),
        "GET /clouds.json should list our cloud: {list}"
    );
}

fn events(v: &Value) -> Value {
    v["events"].clone()
}

#[tokio::test]
async fn nested_notification_events_in_all_three_forms() {
    let s = Server::start().await;
    let c = s.client();
    let n = c.get("/notifications.json", &[]).await.ok();
    for k in [
        "video_created",
        "video_encoded",
        "encoding_progress",
        "encoding_completed",
    ] {
        assert!(
            n["events"][k].is_boolean(),
            "events.{k} should be a JSON boolean: {n}"
        );
    }
    assert!(
        n.get("url").is_some(),
        "url should be present (null when unset): {n}"
    );

    // 1. bracket keys, signed with literal brackets (gem, node, xabbuh)
    let n = c
        .request(Method::PUT, "/notifications.json")
        .params(&[
            ("url", "http://127.0.0.1:9/notify"),
            ("events[video_created]", "true"),
            ("events[video_encoded]", "false"),
            ("events[encoding_progress]", "false"),
            ("events[encoding_completed]", "false"),
        ])
        .send()
        .await
        .ok();
    assert_eq!(
        events(&n),
        json!({"video_created": true, "video_encoded": false, "encoding_progress": false, "encoding_completed": false}),
        "bracket keys: {n}"
    );
    assert_eq!(n["url"], "http://127.0.0.1:9/notify", "{n}");

    // 2. [php]-official: flat keys signed as events%5B...%5D, multipart PUT
    let n = c
        .request(Method::PUT, "/notifications.json")
        .param("events[encoding_progress]", "true")
        .variant(Variant::PhpFlat)
        .multipart()
        .send()
        .await
        .ok();
    assert_eq!(
        events(&n),
        json!({"video_created": true, "video_encoded": false, "encoding_progress": true, "encoding_completed": false}),
        "php flat keys (omitted events keep their setting): {n}"
    );

    // 3. [py]: events as one JSON string, everything in the query string
    let n = c
        .request(Method::PUT, "/notifications.json")
        .param(
            "events",
            r#"{"encoding_completed": "true", "video_created": "false"}"#,
        )
        .query()
        .send()
        .await
        .ok();
    assert_eq!(
        events(&n),
        json!({"video_created": false, "video_encoded": false, "encoding_progress": true, "encoding_completed": true}),
        "py JSON string: {n}"
    );

    // the stored settings match; url "None" clears it
    let stored = c.get("/notifications.json", &[]).await.ok();
    assert_eq!(events(&stored), events(&n), "GET after PUT: {stored}");
    let n = c.put("/notifications.json", &[("url", "None")]).await.ok();
    assert_eq!(n["url"], Value::Null, "url=None should clear it: {n}");
}

#[tokio::test]
async fn file_uploads_as_each_client_sends_them() {
    let s = Server::start().await;
    let c = s.client();
    let bytes = media_bytes("rf64.wav");
    let mut ids = Vec::new();

    // gem/.NET: every signed param as a text field plus the file part
    let v = c
        .upload_bytes("gem.wav", bytes.clone(), &[("profiles", "none")])
        .await
        .ok();
    ids.push((v["id"].as_str().unwrap().to_string(), "gem.wav"));

    // [py]: the params in the query, a multipart body with only the file
    let v = c
        .request(Method::POST, "/videos.json")
        .param("profiles", "none")
        .query()
        .file("file", "py.wav", bytes.clone())
        .send()
        .await
        .ok();
    ids.push((v["id"].as_str().unwrap().to_string(), "py.wav"));

    // [go]: a text field file=<path>, and the file part named after the path
    let v = c
        .request(Method::POST, "/videos.json")
        .params(&[("profiles", "none"), ("file", "/home/me/go.wav")])
        .file("/home/me/go.wav", "go.wav", bytes.clone())
        .send()
        .await
        .ok();
    ids.push((v["id"].as_str().unwrap().to_string(), "go.wav"));

    for (id, name) in ids {
        let v = c.wait_video(&id, SECS(180)).await;
        assert_eq!(v["status"], "success", "upload as {name}: {v}");
        assert_eq!(v["original_filename"], name, "{v}");
        let key = format!(
            "{}{}",
            v["path"].as_str().unwrap(),
            v["extname"].as_str().unwrap()
        );
        let stored = expect_stored(name, &key, c.download(&key).await);
        assert!(
            stored == bytes,
            "{name}: the stored original should equal the upload"
        );
    }
}
