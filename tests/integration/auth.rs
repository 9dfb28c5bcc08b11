//! Authentication and bad input: each wrong request gets the status, error
//! name and message that spec §2 and §9 name.

use reqwest::Method;

use crate::common::*;

fn shifted_timestamp(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[tokio::test]
async fn missing_auth_params_get_400_naming_them() {
    let s = Server::start().await;
    let c = s.client();

    let msg = c
        .request(Method::GET, "/videos.json")
        .omit("access_key")
        .omit("timestamp")
        .omit("signature")
        .send()
        .await
        .err(400, "BadRequest");
    assert_eq!(
        msg, "All required parameters were not supplied: access_key, signature, timestamp",
        "with no auth params at all"
    );

    for missing in ["access_key", "signature", "timestamp"] {
        let msg = c
            .request(Method::GET, "/videos.json")
            .omit(missing)
            .send()
            .await
            .err(400, "BadRequest");
        assert!(
            msg.contains(missing),
            "without {missing}: expected the message to name {missing}, got {msg:?}"
        );
        for present in ["access_key", "signature", "timestamp"] {
            if present != missing {
                assert!(
                    !msg.contains(present),
                    "without {missing}: the message should list only what is missing, but names {present}: {msg:?}"
                );
            }
        }
    }

    // cloud_id is required everywhere but /clouds (spec §2.6)
    let r = c
        .request(Method::GET, "/videos.json")
        .cloud_id(None)
        .send()
        .await;
    r.err(400, "BadRequest");
}

#[tokio::test]
async fn bad_signatures_get_401_not_authorized() {
    let s = Server::start().await;
    let c = s.client();

    let msg = c
        .request(Method::GET, "/videos.json")
        .signature("kVnZs/NX13ldKPdhFYoVnoclr8075DwiZF0TGgIbMsc=")
        .send()
        .await
        .err(401, "NotAuthorized");
    assert_eq!(msg, "Signatures do not match", "a wrong signature");

    let msg = c
        .request(Method::GET, "/videos.json")
        .secret_key("not-the-secret")
        .send()
        .await
        .err(401, "NotAuthorized");
    assert_eq!(
        msg, "Signatures do not match",
        "signed with the wrong secret"
    );

    // signed for other params than those sent: a tampered request
    let prepared = c
        .request(Method::GET, "/videos.json")
        .param("status", "success")
        .prepare();
    let mut tampered = prepared.clone();
    tampered.url = tampered.url.replace("status=success", "status=fail");
    assert_ne!(tampered.url, prepared.url);
    c.send_prepared(&tampered).await.err(401, "NotAuthorized");

    let r = c
        .request(Method::GET, "/videos.json")
        .access_key("no-such-access-key")
        .send()
        .await;
    r.err(401, "NotAuthorized");
}

#[tokio::test]
async fn timestamps_outside_the_window_are_expired() {
    let s = Server::start().await;
    let c = s.client();

    let msg = c
        .request(Method::GET, "/videos.json")
        .timestamp(&shifted_timestamp(-6))
        .send()
        .await
        .err(401, "NotAuthorized");
    assert_eq!(msg, "Signatures expired", "a GET signed 6 minutes ago");

    let msg = c
        .request(Method::GET, "/videos.json")
        .timestamp(&shifted_timestamp(6))
        .send()
        .await
        .err(401, "NotAuthorized");
    assert_eq!(
        msg, "Signatures expired",
        "a GET signed 6 minutes in the future"
    );

    // 4 minutes either way is fine
    c.request(Method::GET, "/videos.json")
        .timestamp(&shifted_timestamp(-4))
        .send()
        .await
        .ok();
    c.request(Method::GET, "/videos.json")
        .timestamp(&shifted_timestamp(4))
        .send()
        .await
        .ok();

    // POST /videos.json has a 30-minute window (the legacy uploader)
    let wav = media_bytes("rf64.wav");
    c.request(Method::POST, "/videos.json")
        .param("profiles", "none")
        .timestamp(&shifted_timestamp(-20))
        .file("file", "rf64.wav", wav.clone())
        .send()
        .await
        .ok();
    let msg = c
        .request(Method::POST, "/videos.json")
        .param("profiles", "none")
        .timestamp(&shifted_timestamp(-31))
        .file("file", "rf64.wav", wav)
        .send()
        .await
        .err(401, "NotAuthorized");
    assert_eq!(
        msg, "Signatures expired",
        "POST /videos.json signed 31 minutes ago"
    );

    // other POSTs keep the 5-minute window
    let msg = c
        .request(Method::POST, "/profiles.json")
        .params(&[("preset_name", "webm"), ("name", "late")])
        .timestamp(&shifted_timestamp(-6))
        .send()
        .await
        .err(401, "NotAuthorized");
    assert_eq!(
        msg, "Signatures expired",
        "POST /profiles.json signed 6 minutes ago"
    );
}

#[tokio::test]
async fn a_post_signature_works_once() {
    let s = Server::start().await;
    let c = s.client();
    let create = c
        .request(Method::POST, "/profiles.json")
        .params(&[("preset_name", "webm"), ("name", "once")])
        .prepare();
    c.send_prepared(&create).await.ok();
    let msg = c.send_prepared(&create).await.err(401, "NotAuthorized");
    assert_eq!(
        msg, "Signature already used",
        "the same signed POST sent twice"
    );

    // PUT, GET and DELETE are not protected against replay (spec §2.7)
    let put = c
        .request(Method::PUT, "/profiles/once.json")
        .param("width", "320")
        .prepare();
    c.send_prepared(&put).await.ok();
    let again = c.send_prepared(&put).await.ok();
    assert_eq!(again["width"], 320, "the replayed PUT: {again}");
    let get = c.request(Method::GET, "/profiles/once.json").prepare();
    c.send_prepared(&get).await.ok();
    c.send_prepared(&get).await.ok();
}

#[tokio::test]
async fn unknown_ids_get_404_record_not_found() {
    let s = Server::start().await;
    let c = s.client();
    let id = "0123456789abcdef0123456789abcdef";
    let cases = [
        (Method::GET, format!("/videos/{id}.json"), "Video"),
        (Method::DELETE, format!("/videos/{id}.json"), "Video"),
        (Method::GET, format!("/videos/{id}/encodings.json"), "Video"),
        (Method::GET, format!("/videos/{id}/metadata.json"), "Video"),
        (Method::GET, format!("/encodings/{id}.json"), "Encoding"),
        (Method::DELETE, format!("/encodings/{id}.json"), "Encoding"),
        (
            Method::POST,
            format!("/encodings/{id}/cancel.json"),
            "Encoding",
        ),
        (
            Method::POST,
            format!("/encodings/{id}/retry.json"),
            "Encoding",
        ),
        (Method::GET, format!("/profiles/{id}.json"), "Profile"),
        (Method::PUT, format!("/profiles/{id}.json"), "Profile"),
        (Method::DELETE, format!("/profiles/{id}.json"), "Profile"),
    ];
    for (method, path, kind) in cases {
        let what = format!("{method} {path}");
        let msg = c
            .request(method, &path)
            .send()
            .await
            .err(404, "RecordNotFound");
        assert_eq!(msg, format!("Couldn't find {kind} with ID={id}"), "{what}");
    }
    let msg = c
        .get("/videos/nope.json", &[])
        .await
        .err(404, "RecordNotFound");
    assert_eq!(msg, "Couldn't find Video with ID=nope");

    // a cloud_id that does not exist
    let msg = c
        .request(Method::GET, "/videos.json")
        .cloud_id(Some(id))
        .send()
        .await
        .err(404, "RecordNotFound");
    assert_eq!(msg, format!("Couldn't find Cloud with ID={id}"));
    let msg = c
        .get(&format!("/clouds/{id}.json"), &[])
        .await
        .err(404, "RecordNotFound");
    assert_eq!(msg, format!("Couldn't find Cloud with ID={id}"));

    // an unknown route is still a JSON answer
    let r = c.get("/no-such-thing.json", &[]).await;
    assert_eq!(r.status, 404, "GET /v2/no-such-thing.json: {}", r.json);
}

#[tokio::test]
async fn only_json_is_supported_as_a_format() {
    let s = Server::start().await;
    let c = s.client();
    for path in ["/videos.xml", "/profiles.xml", "/videos.html"] {
        let msg = c.get(path, &[]).await.err(400, "BadRequest");
        assert_eq!(
            msg, "Currently only .json is supported as a format",
            "GET {path}"
        );
    }
    // no suffix at all is treated as JSON (the gem's own tests do this)
    let list = c.get("/videos", &[]).await.ok();
    assert!(
        list.is_array(),
        "GET /v2/videos: expected an array, got {list}"
    );
}

#[tokio::test]
async fn bad_video_creation_requests_get_400_or_404() {
    let s = Server::start().await;
    let c = s.client();
    let wav = media_bytes("rf64.wav");

    let r = c.post("/videos.json", &[("profiles", "h264")]).await;
    r.err(400, "BadRequest");

    let msg = c
        .upload_bytes(
            "rf64.wav",
            wav.clone(),
            &[("profiles", "h264,no-such-profile")],
        )
        .await
        .err(404, "RecordNotFound");
    assert!(
        msg.contains("no-such-profile"),
        "an unknown profile in profiles=: the message should name it, got {msg:?}"
    );

    let msg = c
        .post("/profiles.json", &[("preset_name", "h265-ultra")])
        .await
        .err(400, "BadRequest");
    assert!(
        msg.contains("h265-ultra"),
        "an unknown preset_name: the message should name it, got {msg:?}"
    );

    let msg = c
        .upload_bytes(
            "rf64.wav",
            wav.clone(),
            &[("profiles", "none"), ("path_format", "videos/:video_id/x")],
        )
        .await
        .err(400, "BadRequest");
    assert!(
        msg.contains(":id") || msg.contains("path_format"),
        "path_format without :id: the message should say what is wrong, got {msg:?}"
    );

    let long = "x".repeat(257);
    let msg = c
        .upload_bytes(
            "rf64.wav",
            wav.clone(),
            &[("profiles", "none"), ("payload", &long)],
        )
        .await
        .err(400, "BadRequest");
    assert!(
        msg.contains("payload") || msg.contains("256"),
        "a 257-character payload: the message should say what is wrong, got {msg:?}"
    );

    // none of the refused requests created a video
    let list = c.get("/videos.json", &[]).await.ok();
    assert_eq!(
        list,
        serde_json::json!([]),
        "refused uploads must not create videos"
    );

    // 256 characters is fine and echoed back
    let ok = "y".repeat(256);
    let v = c
        .upload_bytes("rf64.wav", wav, &[("profiles", "none"), ("payload", &ok)])
        .await
        .ok();
    assert_eq!(
        v["payload"],
        ok.as_str(),
        "a 256-character payload should be echoed"
    );
    // profiles=none creates no encodings
    let vid = v["id"].as_str().unwrap();
    let v = c.wait_video(vid, SECS(180)).await;
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(
        c.encodings_of(vid).await,
        Vec::<serde_json::Value>::new(),
        "profiles=none"
    );
}

#[tokio::test]
async fn uploads_over_the_size_limit_get_413() {
    let s = Server::start_with(ServerOpts {
        max_upload_bytes: Some(100_000),
        ..Default::default()
    })
    .await;
    let c = s.client();
    let big = media_bytes("rotate-reflect.mp4");
    assert!(big.len() > 100_000);
    let msg = c
        .upload_bytes("rotate-reflect.mp4", big, &[("profiles", "none")])
        .await
        .err(413, "FileSizeLimitExceeded");
    assert_eq!(
        msg,
        "File size limit for this account is set to 100000 bytes"
    );
    let small = media_bytes("rf64.wav");
    c.upload_bytes("rf64.wav", small, &[("profiles", "none")])
        .await
        .ok();
}
