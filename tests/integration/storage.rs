//! Where objects are stored (spec §7), what deleting removes, failed
//! encodings and their logs, cancel/retry, and that scratch space is cleaned.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

fn key_of(v: &Value) -> String {
    format!(
        "{}{}",
        v["path"].as_str().unwrap_or(""),
        v["extname"].as_str().unwrap_or("")
    )
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_follow_path_format() {
    let s = Server::start().await;
    let c = s.client();
    let bytes = media_bytes("video-only.mp4");

    // my-path/:video_id/:profile/:id — for the original, :profile is "original"
    let v = c
        .upload_bytes(
            "video-only.mp4",
            bytes.clone(),
            &[
                ("profiles", "h264"),
                ("path_format", "my-path/:video_id/:profile/:id"),
            ],
        )
        .await
        .ok();
    let vid = id(&v);
    let v = c.wait_video(&vid, SECS(180)).await;
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(
        v["path"],
        format!("my-path/{vid}/original/{vid}"),
        "video path: {v}"
    );
    let original = format!("my-path/{vid}/original/{vid}.mp4");
    assert!(
        s.storage_dir().join(&original).is_file(),
        "the original should be stored at DIR/storage/<cloud>/{original}; stored: {:?}",
        s.stored_keys()
    );
    let stored = expect_stored("original", &original, c.download(&original).await);
    assert!(
        stored == bytes,
        "the stored original should equal the upload"
    );
    let preview = format!("my-path/{vid}/original/{vid}_1.jpg");
    expect_stored(
        "preview of the original",
        &preview,
        download_soon(&c, &preview).await,
    );

    let encs = c.wait_encodings(&vid, SECS(600)).await;
    assert_eq!(encs.len(), 1, "{encs:?}");
    let e = &encs[0];
    assert_eq!(e["status"], "success", "{e}");
    let eid = id(e);
    let epath = format!("my-path/{vid}/h264/{eid}");
    assert_eq!(e["path"], epath.as_str(), "encoding path: {e}");
    assert_eq!(e["files"], json!([format!("{epath}.mp4")]), "files: {e}");
    let mut want = vec![format!("{epath}.mp4")];
    want.extend((1..=7).map(|n| format!("{epath}_{n}.jpg")));
    for k in &want {
        assert!(
            s.storage_dir().join(k).is_file(),
            "expected {k} in storage; stored: {:?}",
            s.stored_keys()
        );
        expect_stored("encoding object", k, c.download(k).await);
    }

    // :type, :date and :original
    let v = c
        .upload_bytes(
            "video-only.mp4",
            bytes.clone(),
            &[
                ("profiles", "h264"),
                ("path_format", ":type/:date/:original/:id"),
            ],
        )
        .await
        .ok();
    let vid = id(&v);
    let v = c.wait_video(&vid, SECS(180)).await;
    let path = v["path"].as_str().unwrap_or("");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1))
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        path == format!("original/{today}/video-only/{vid}")
            || path == format!("original/{yesterday}/video-only/{vid}"),
        "path_format :type/:date/:original/:id for the original: expected original/{today}/video-only/{vid}, got {path:?}"
    );
    let encs = c.wait_encodings(&vid, SECS(600)).await;
    let epath = encs[0]["path"].as_str().unwrap_or("");
    assert!(
        epath.starts_with("encodings/")
            && epath.ends_with(&format!("/video-only/{}", id(&encs[0]))),
        "path_format :type/:date/:original/:id for an encoding: expected encodings/<date>/video-only/<id>, got {epath:?}"
    );

    // default path_format is :id
    let v = c
        .upload_bytes("rf64.wav", media_bytes("rf64.wav"), &[("profiles", "none")])
        .await
        .ok();
    let vid = id(&v);
    let v = c.wait_video(&vid, SECS(180)).await;
    assert_eq!(v["path"], vid.as_str(), "default path is the id: {v}");
    assert!(
        s.storage_dir().join(format!("{vid}.wav")).is_file(),
        "stored: {:?}",
        s.stored_keys()
    );
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_every_object_of_the_video() {
    let s = Server::start().await;
    let c = s.client();
    let a = id(&c
        .upload(&media("video-only.mp4"), &[("profiles", "h264")])
        .await);
    let b = id(&c
        .upload(&media("shorter-audio.mp4"), &[("profiles", "h264")])
        .await);
    let a_encs = c.wait_encodings(&a, SECS(600)).await;
    let b_encs = c.wait_encodings(&b, SECS(600)).await;
    for e in a_encs.iter().chain(&b_encs) {
        assert_eq!(e["status"], "success", "{e}");
    }
    // the stills of the originals are written just after the videos succeed
    for v in [&a, &b] {
        let preview = format!("{}_1.jpg", c.video(v).await["path"].as_str().unwrap());
        expect_stored("preview", &preview, download_soon(&c, &preview).await);
    }
    let a_ids: Vec<String> = std::iter::once(a.clone())
        .chain(a_encs.iter().map(id))
        .collect();
    let of_a = |keys: &[String]| -> Vec<String> {
        keys.iter()
            .filter(|k| a_ids.iter().any(|i| k.contains(i.as_str())))
            .cloned()
            .collect()
    };
    let before = s.stored_keys();
    let a_keys = of_a(&before);
    // original, its preview, the output and 7 screenshots
    assert!(
        a_keys.len() >= 10,
        "expected at least 10 objects for video A, found {a_keys:?}"
    );
    let b_keys: Vec<String> = before
        .iter()
        .filter(|k| !a_keys.contains(k))
        .cloned()
        .collect();

    let r = c.delete(&format!("/videos/{a}.json")).await.ok();
    assert_eq!(r, json!({"deleted": true}), "DELETE /videos/:id.json");

    let start = Instant::now();
    loop {
        let left = of_a(&s.stored_keys());
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "objects of the deleted video are still stored: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.stored_keys(),
        b_keys,
        "the other video's objects must be untouched"
    );
    for k in &a_keys {
        let (st, _) = c.download(k).await;
        assert_eq!(
            st, 404,
            "GET <url>{k} after deleting its video: expected 404, got {st}"
        );
    }
    c.get(&format!("/videos/{a}.json"), &[])
        .await
        .err(404, "RecordNotFound");
    c.get(&format!("/encodings/{}.json", id(&a_encs[0])), &[])
        .await
        .err(404, "RecordNotFound");
    let list = c.get("/videos.json", &[]).await.ok();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![b.as_str()],
        "GET /videos.json after the delete: {list}"
    );
    let list = c.get("/encodings.json", &[]).await.ok();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|e| e["video_id"] == b.as_str()),
        "encodings of a deleted video must be gone: {list}"
    );

    // deleting one encoding removes its objects and keeps the video's
    let eb = id(&b_encs[0]);
    let r = c.delete(&format!("/encodings/{eb}.json")).await.ok();
    assert_eq!(r, json!({"deleted": true}), "DELETE /encodings/:id.json");
    let start = Instant::now();
    while s.stored_keys().iter().any(|k| k.contains(&eb)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "objects of the deleted encoding are still stored: {:?}",
            s.stored_keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let vb = c.video(&b).await;
    expect_stored(
        "video B's original",
        &key_of(&vb),
        c.download(&key_of(&vb)).await,
    );
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_encoding_leaves_a_log_with_the_ffmpeg_command() {
    let s = Server::start().await;
    let c = s.client();
    let vid = id(&c
        .upload(&media("video-only.mp4"), &[("profiles", "none")])
        .await);
    let v = c.wait_video(&vid, SECS(180)).await;
    assert_eq!(v["status"], "success", "{v}");

    // The stored original gets damaged behind the server's back.
    let original = s.storage_dir().join(key_of(&v));
    let len = std::fs::metadata(&original).unwrap().len() as usize;
    std::fs::write(&original, vec![0u8; len]).unwrap();

    let e = c
        .post(
            "/encodings.json",
            &[("video_id", &vid), ("profile_name", "h264")],
        )
        .await
        .ok();
    assert_eq!(e["status"], "processing", "a new encoding: {e}");
    assert_eq!(e["encoding_progress"], 0, "{e}");
    assert_eq!(e["files"], json!([]), "{e}");
    assert_eq!(e["started_encoding_at"], "", "{e}");
    assert_eq!(e["profile_name"], "h264", "{e}");
    let e = c.wait_encoding(&id(&e), SECS(120)).await;
    assert_eq!(e["status"], "fail", "encoding a zeroed original: {e}");
    let class = e["error_class"].as_str().unwrap_or("");
    assert!(
        ["EncodingError", "FormatNotRecognised"].contains(&class),
        "expected EncodingError (or FormatNotRecognised), got {class:?}: {e}"
    );
    assert!(
        !e["error_message"].as_str().unwrap_or("").is_empty(),
        "a failed encoding should say why: {e}"
    );
    let log_key = format!("{}.log", e["path"].as_str().unwrap());
    let log = expect_stored("failure log", &log_key, c.download(&log_key).await);
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains("ffmpeg") || log.contains("ffprobe"),
        "the failure log should show the command that failed; it says:\n{log}"
    );

    // The original disappears from storage: FileNotFound.
    std::fs::remove_file(&original).unwrap();
    let e = c
        .post(
            "/encodings.json",
            &[("video_id", &vid), ("profile_name", "h264")],
        )
        .await
        .ok();
    let e = c.wait_encoding(&id(&e), SECS(120)).await;
    assert_eq!(
        (e["status"].as_str(), e["error_class"].as_str()),
        (Some("fail"), Some("FileNotFound")),
        "encoding a video whose original is gone: {e}"
    );

    // An encoding for a failed video: 400, or created failed (VideoStatusInvalid).
    let bad = id(&c
        .upload(&media("stub-asf.wmv"), &[("profiles", "none")])
        .await);
    let bv = c.wait_video(&bad, SECS(180)).await;
    assert_eq!(bv["status"], "fail", "{bv}");
    let r = c
        .post(
            "/encodings.json",
            &[("video_id", &bad), ("profile_name", "h264")],
        )
        .await;
    if r.status != 400 {
        let e = c.wait_encoding(&id(&r.ok()), SECS(180)).await;
        assert_eq!(
            (e["status"].as_str(), e["error_class"].as_str()),
            (Some("fail"), Some("VideoStatusInvalid")),
            "an encoding added to a failed video: {e}"
        );
    }
    s.assert_scratch_empty().await;
    assert_eq!(s.healthz().await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_do_not_block_a_good_upload_after_them() {
    let mut s = Server::start().await;
    let c = s.client();
    c.post("/profiles.json", &[("preset_name", "webm")])
        .await
        .ok();
    let mut bad = Vec::new();
    for f in [
        "stub-asf.wmv",
        "empty.mp3",
        "vp9-corrupt.webm",
        "no-streams.mp4",
        "truncated-64bit.mp4",
        "tiny.avi",
    ] {
        bad.push((
            f,
            id(&c.upload(&media(f), &[("profiles", "h264,webm")]).await),
        ));
    }
    let good = id(&c
        .upload(&media("bbb-51.mp4"), &[("profiles", "h264,webm")])
        .await);
    let v = c.wait_video(&good, SECS(120)).await;
    assert_eq!(v["status"], "success", "{v}");
    for e in c.wait_encodings(&good, SECS(600)).await {
        assert_eq!(e["status"], "success", "the good upload's encoding: {e}");
    }
    for (f, vid) in bad {
        let v = c.wait_video(&vid, SECS(180)).await;
        assert_eq!(
            (v["status"].as_str(), v["error_class"].as_str()),
            (Some("fail"), Some("FormatNotRecognised")),
            "{f}: {v}"
        );
        for e in c.wait_encodings(&vid, SECS(180)).await {
            assert_eq!(e["status"], "fail", "{f}: {e}");
        }
    }
    s.assert_alive();
    assert_eq!(
        s.healthz().await,
        200,
        "the server should still answer /healthz"
    );
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_retry_an_encoding() {
    let s = Server::start().await;
    let c = s.client();
    let clip = s.dir.join("clip-30s.mp4");
    make_clip(&clip, 30, 640, 360, true);
    c.post("/profiles.json", &[("preset_name", "webm")])
        .await
        .ok();
    let vid = id(&c.upload(&clip, &[("profiles", "h264")]).await);
    // once the video is ready its encoding is queued or running
    let v = c.wait_video(&vid, SECS(180)).await;
    assert_eq!(v["status"], "success", "{v}");
    let encs = c.encodings_of(&vid).await;
    assert_eq!(encs.len(), 1, "{encs:?}");
    let eid = id(&encs[0]);

    // [py] 0.3.1 posts to cancel.json.json and signs that path
    let path = format!("/encodings/{eid}/cancel.json.json");
    let r = c.request(Method::POST, &path).send().await.ok();
    let canceled = r["canceled"]
        .as_bool()
        .unwrap_or_else(|| panic!("POST {path}: expected {{\"canceled\": bool}}, got {r}"));
    if canceled {
        let e = c.wait_encoding(&eid, SECS(120)).await;
        assert_eq!(e["status"], "cancelled", "after cancel: {e}");
        assert_eq!(e["error_class"], Value::Null, "{e}");
        assert_eq!(e["files"], json!([]), "{e}");

        let r = c
            .post(&format!("/encodings/{eid}/retry.json"), &[])
            .await
            .ok();
        assert_eq!(r, json!({"retried": true}), "retry of a cancelled encoding");
        let e = c.encoding(&eid).await;
        assert_eq!(
            (e["status"].as_str(), e["error_class"].as_str()),
            (Some("processing"), None),
            "right after the retry: {e}"
        );
    } else {
        // it had already finished when the cancel arrived
        let e = c.encoding(&eid).await;
        assert_eq!(
            e["status"], "success",
            "cancel said false, so it should be done: {e}"
        );
    }
    let e = c.wait_encoding(&eid, SECS(600)).await;
    assert_eq!(e["status"], "success", "after retry: {e}");
    assert_eq!(e["encoding_progress"], 100, "{e}");
    let out = format!("{}.mp4", e["path"].as_str().unwrap());
    expect_stored("retried output", &out, c.download(&out).await);

    let r = c
        .post(&format!("/encodings/{eid}/cancel.json"), &[])
        .await
        .ok();
    assert_eq!(
        r,
        json!({"canceled": false}),
        "cancel of a finished encoding"
    );
    let path = format!("/encodings/{eid}/retry.json.json");
    let r = c.request(Method::POST, &path).send().await.ok();
    assert_eq!(
        r,
        json!({"retried": false}),
        "retry of a successful encoding via {path}"
    );

    // cancelling while ffmpeg runs stops it and leaves nothing behind
    let e = c
        .post(
            "/encodings.json",
            &[("video_id", &vid), ("profile_name", "webm")],
        )
        .await
        .ok();
    let eid = id(&e);
    let start = Instant::now();
    loop {
        let e = c.encoding(&eid).await;
        if e["started_encoding_at"] != "" || e["status"] != "processing" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "encoding never started: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = c
        .post(&format!("/encodings/{eid}/cancel.json"), &[])
        .await
        .ok();
    if r["canceled"] == true {
        let e = c.wait_encoding(&eid, SECS(120)).await;
        assert_eq!(
            e["status"], "cancelled",
            "after cancelling a running encoding: {e}"
        );
        assert!(
            !s.stored_keys().iter().any(|k| k.contains(&eid)),
            "a cancelled encoding should store no output: {:?}",
            s.stored_keys()
        );
    }
    s.assert_scratch_empty().await;
}
