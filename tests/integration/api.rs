//! The resources: profiles and presets, the aspect-mode geometry, encodings,
//! clouds, lists and the JSON shapes clients rely on (spec §3, §4, §8).

use serde_json::{Value, json};

use crate::common::*;

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// `YYYY/MM/DD HH:MM:SS +0000` (spec §4.1).
fn is_panda_time(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    chrono::NaiveDateTime::parse_from_str(s.trim_end_matches(" +0000"), "%Y/%m/%d %H:%M:%S").is_ok()
        && s.ends_with(" +0000")
        && s.len() == 25
}

#[tokio::test]
async fn a_new_cloud_has_one_h264_profile() {
    let s = Server::start().await;
    let c = s.client();
    let list = c.get("/profiles.json", &[]).await.ok();
    let list = list
        .as_array()
        .unwrap_or_else(|| panic!("GET /profiles.json: expected an array, got {list}"));
    assert_eq!(
        list.len(),
        1,
        "a new cloud has exactly one profile: {list:?}"
    );
    let p = &list[0];
    for (k, want) in [
        ("name", json!("h264")),
        ("preset_name", json!("h264")),
        ("extname", json!(".mp4")),
        ("width", json!(640)),
        ("height", json!(480)),
        ("aspect_mode", json!("letterbox")),
        ("upscale", json!(true)),
        ("frame_count", json!(7)),
    ] {
        assert_eq!(
            p[k], want,
            "h264 profile: {k} should be {want}, got {}",
            p[k]
        );
    }
    assert!(
        is_panda_time(&p["created_at"]),
        "created_at should look like 2009/10/13 19:11:26 +0000: {p}"
    );
}

#[tokio::test]
async fn profiles_can_be_created_read_updated_and_deleted() {
    let s = Server::start().await;
    let c = s.client();
    for (preset, ext) in [
        ("h264", ".mp4"),
        ("h264.hi", ".mp4"),
        ("webm", ".webm"),
        ("webm.hi", ".webm"),
        ("ogg", ".ogg"),
        ("ogg.hi", ".ogg"),
        ("mp3", ".mp3"),
        ("aac", ".m4a"),
        ("vorbis", ".oga"),
    ] {
        let name = format!("p-{preset}");
        let p = c
            .post(
                "/profiles.json",
                &[("preset_name", preset), ("name", &name)],
            )
            .await
            .ok();
        assert_eq!(
            (
                p["preset_name"].as_str(),
                p["extname"].as_str(),
                p["name"].as_str()
            ),
            (Some(preset), Some(ext), Some(name.as_str())),
            "POST /profiles.json preset_name={preset}: {p}"
        );
    }
    let hi = c.get("/profiles/p-h264.hi.json", &[]).await.ok();
    assert_eq!(
        (hi["width"].clone(), hi["height"].clone()),
        (json!(1280), json!(720)),
        "h264.hi is 1280x720: {hi}"
    );

    // the default name is the preset name
    let p = c
        .post("/profiles.json", &[("preset_name", "webm")])
        .await
        .ok();
    assert_eq!(p["name"], "webm", "{p}");
    assert_eq!(
        (p["width"].clone(), p["height"].clone()),
        (json!(640), json!(480)),
        "{p}"
    );
    let msg = c
        .post("/profiles.json", &[("preset_name", "webm")])
        .await
        .err(400, "BadRequest");
    assert!(!msg.is_empty(), "a duplicate name");

    // read by id and by name
    let pid = id(&p);
    assert_eq!(
        c.get(&format!("/profiles/{pid}.json"), &[]).await.ok()["name"],
        "webm"
    );
    assert_eq!(
        c.get("/profiles/webm.json", &[]).await.ok()["id"],
        pid.as_str()
    );

    // partial update; read-only fields ignored; unchanged preset_name accepted
    let p = c
        .put(
            "/profiles/webm.json",
            &[
                ("width", "320"),
                ("aspect_mode", "crop"),
                ("id", "ffffffffffffffffffffffffffffffff"),
                ("created_at", "2001/01/01 00:00:00 +0000"),
                ("preset_name", "webm"),
                // [py] sends back nulls as "None", [node] as "null", [php] as ""
                ("fps", "None"),
                ("h264_crf", "null"),
                ("clip_length", ""),
            ],
        )
        .await
        .ok();
    assert_eq!(
        (
            p["width"].clone(),
            p["height"].clone(),
            p["aspect_mode"].clone(),
            p["id"].clone()
        ),
        (json!(320), json!(480), json!("crop"), json!(pid)),
        "PUT /profiles/webm.json: {p}"
    );
    for k in ["fps", "h264_crf", "clip_length"] {
        assert_eq!(
            p[k],
            Value::Null,
            "{k} sent as None/null/empty stays null: {p}"
        );
    }
    c.put("/profiles/webm.json", &[("preset_name", "ogg")])
        .await
        .err(400, "BadRequest");
    c.put("/profiles/webm.json", &[("aspect_mode", "stretch")])
        .await
        .err(400, "BadRequest");
    c.put("/profiles/webm.json", &[("width", "abc")])
        .await
        .err(400, "BadRequest");
    c.post(
        "/profiles.json",
        &[
            ("preset_name", "h264"),
            ("name", "bad"),
            ("aspect_mode", "zoom"),
        ],
    )
    .await
    .err(400, "BadRequest");

    let r = c.delete(&format!("/profiles/{pid}.json")).await.ok();
    assert_eq!(r, json!({"deleted": true}));
    c.get("/profiles/webm.json", &[])
        .await
        .err(404, "RecordNotFound");
}

/// Display size of an encoding's output.
async fn output_size(c: &Client, dir: &std::path::Path, e: &Value) -> (u32, u32) {
    let key = format!(
        "{}{}",
        e["path"].as_str().unwrap(),
        e["extname"].as_str().unwrap()
    );
    let bytes = expect_stored("output", &key, c.download(&key).await);
    let local = dir.join(key.replace('/', "_"));
    std::fs::write(&local, bytes).unwrap();
    ffprobe(&local)
        .unwrap_or_else(|err| panic!("{err}"))
        .display_size()
        .unwrap_or_else(|| panic!("{key} has no video stream"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aspect_modes_give_the_documented_sizes() {
    let s = Server::start().await;
    let c = s.client();
    let modes = [
        ("lb", "letterbox", "640", "480", "true"),
        ("pad", "pad", "640", "480", "true"),
        ("constrain", "constrain", "640", "480", "true"),
        ("crop", "crop", "640", "480", "true"),
        ("preserve", "preserve", "640", "480", "true"),
        ("noup", "constrain", "1920", "1080", "false"),
        ("odd", "constrain", "301", "301", "true"),
    ];
    for (name, mode, w, h, up) in modes {
        c.post(
            "/profiles.json",
            &[
                ("preset_name", "h264"),
                ("name", name),
                ("aspect_mode", mode),
                ("width", w),
                ("height", h),
                ("upscale", up),
            ],
        )
        .await
        .ok();
    }
    let wide = s.dir.join("wide-1280x720.mp4");
    let tall = s.dir.join("tall-480x640.mp4");
    make_clip(&wide, 2, 1280, 720, false);
    make_clip(&tall, 2, 480, 640, false);
    let profiles = "lb,pad,constrain,crop,preserve,noup,odd";
    // (profile, expected size for 1280x720, expected size for 480x640)
    let expected = [
        ("lb", (640, 480), (360, 480)),
        ("pad", (640, 480), (640, 480)),
        ("constrain", (640, 360), (360, 480)),
        ("crop", (640, 480), (640, 480)),
        ("preserve", (1280, 720), (480, 640)),
        ("noup", (1280, 720), (480, 640)),
        ("odd", (300, 170), (226, 300)),
    ];
    let vw = id(&c.upload(&wide, &[("profiles", profiles)]).await);
    let vt = id(&c.upload(&tall, &[("profiles", profiles)]).await);
    let ew = c.wait_encodings(&vw, SECS(600)).await;
    let et = c.wait_encodings(&vt, SECS(600)).await;
    let mut problems = Vec::new();
    for (name, want_wide, want_tall) in expected {
        for (src, encs, want) in [("1280x720", &ew, want_wide), ("480x640", &et, want_tall)] {
            let e = encs
                .iter()
                .find(|e| e["profile_name"] == name)
                .unwrap_or_else(|| panic!("no {name} encoding: {encs:?}"));
            if e["status"] != "success" {
                problems.push(format!("{name} on {src}: expected success, got {e}"));
                continue;
            }
            let got = output_size(&c, &s.dir, e).await;
            // odd sizes round to an even number, either way
            let close = |a: u32, b: u32| a.abs_diff(b) <= 2 && a.is_multiple_of(2);
            if !(close(got.0, want.0) && close(got.1, want.1)) {
                problems.push(format!(
                    "{name} on {src}: expected {}x{}, got {}x{}",
                    want.0, want.1, got.0, got.1
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "aspect modes:\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_presets_and_ogg_produce_their_formats() {
    let s = Server::start().await;
    let c = s.client();
    for preset in ["mp3", "aac", "vorbis", "ogg"] {
        c.post("/profiles.json", &[("preset_name", preset)])
            .await
            .ok();
    }
    let clip = s.dir.join("clip.mp4");
    make_clip(&clip, 3, 320, 240, true);
    let vid = id(&c.upload(&clip, &[("profiles", "mp3,aac,vorbis,ogg")]).await);
    let encs = c.wait_encodings(&vid, SECS(600)).await;
    // (profile, ext, format substring, audio codec, video codec)
    let want = [
        ("mp3", ".mp3", "mp3", "mp3", None),
        ("aac", ".m4a", "mp4", "aac", None),
        ("vorbis", ".oga", "ogg", "vorbis", None),
        ("ogg", ".ogg", "ogg", "vorbis", Some("theora")),
    ];
    for (name, ext, format, acodec, vcodec) in want {
        let e = encs.iter().find(|e| e["profile_name"] == name).unwrap();
        assert_eq!(e["status"], "success", "{name}: {e}");
        assert_eq!(e["extname"], ext, "{name}: {e}");
        let key = format!("{}{ext}", e["path"].as_str().unwrap());
        let local = s.dir.join(format!("out-{name}{ext}"));
        std::fs::write(&local, expect_stored(name, &key, c.download(&key).await)).unwrap();
        let p = ffprobe(&local).unwrap();
        assert!(
            p.format_name.contains(format),
            "{name}: expected a {format} container, got {}",
            p.format_name
        );
        assert_eq!(
            p.audio().map(|a| a.codec_name.as_str()),
            Some(acodec),
            "{name}: audio codec"
        );
        assert_eq!(
            p.video().map(|v| v.codec_name.as_str()),
            vcodec,
            "{name}: video stream"
        );
        assert!(
            (p.duration.unwrap_or(0.0) - 3.0).abs() <= 0.25,
            "{name}: duration {:?}",
            p.duration
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_and_encodings_have_every_key_and_can_be_listed() {
    let s = Server::start().await;
    let c = s.client();
    c.post("/profiles.json", &[("preset_name", "webm")])
        .await
        .ok();
    let v = c
        .upload(
            &media("bbb-51.mp4"),
            &[("profiles", "h264, webm"), ("payload", "post-1234")],
        )
        .await;
    assert_eq!(v["status"], "processing", "right after the upload: {v}");
    let vid = id(&v);
    let audio = id(&c
        .upload(&media("vorbis.ogg"), &[("profiles", "h264")])
        .await);
    let bad = id(&c
        .upload(&media("stub-real.rm"), &[("profiles", "none")])
        .await);
    let v = c.wait_video(&vid, SECS(180)).await;
    c.wait_video(&bad, SECS(180)).await;
    let encs = c.wait_encodings(&vid, SECS(600)).await;
    c.wait_encodings(&audio, SECS(600)).await;

    for k in [
        "id",
        "original_filename",
        "extname",
        "path",
        "source_url",
        "status",
        "error_class",
        "error_message",
        "payload",
        "mime_type",
        "video_codec",
        "audio_codec",
        "width",
        "height",
        "fps",
        "duration",
        "file_size",
        "created_at",
        "updated_at",
    ] {
        assert!(
            v.get(k).is_some(),
            "video JSON should always have {k:?}: {v}"
        );
    }
    assert_eq!(
        (
            v["width"].clone(),
            v["height"].clone(),
            v["video_codec"].clone(),
            v["audio_codec"].clone()
        ),
        (json!(1280), json!(720), json!("h264"), json!("aac")),
        "{v}"
    );
    let ms = v["duration"].as_i64().unwrap_or(0);
    assert!(
        (5200..=5400).contains(&ms),
        "duration is in milliseconds (5.31 s): {v}"
    );
    assert_eq!(
        v["file_size"],
        std::fs::metadata(media("bbb-51.mp4")).unwrap().len(),
        "{v}"
    );
    assert_eq!(v["payload"], "post-1234");
    assert!(
        is_panda_time(&v["created_at"]) && is_panda_time(&v["updated_at"]),
        "{v}"
    );

    assert_eq!(
        encs.len(),
        2,
        "profiles \"h264, webm\" (with a space): {encs:?}"
    );
    for e in &encs {
        for k in [
            "id",
            "video_id",
            "profile_id",
            "profile_name",
            "status",
            "encoding_progress",
            "started_encoding_at",
            "encoding_time",
            "extname",
            "path",
            "files",
            "width",
            "height",
            "file_size",
            "error_class",
            "error_message",
            "created_at",
            "updated_at",
        ] {
            assert!(
                e.get(k).is_some(),
                "encoding JSON should always have {k:?}: {e}"
            );
        }
        assert_eq!(e["status"], "success", "{e}");
        assert!(
            is_panda_time(&e["started_encoding_at"]),
            "started_encoding_at once started: {e}"
        );
        assert!(
            e["encoding_time"].is_u64(),
            "encoding_time is whole seconds: {e}"
        );
    }
    // the audio-only output reports 0x0 (never null)
    let ae = &c.encodings_of(&audio).await[0];
    assert_eq!(
        (ae["width"].clone(), ae["height"].clone()),
        (json!(0), json!(0)),
        "{ae}"
    );

    let meta = c
        .get(&format!("/videos/{vid}/metadata.json"), &[])
        .await
        .ok();
    assert!(meta.is_object(), "metadata is a JSON object: {meta}");

    // filters
    let only = |list: Value| -> Vec<String> {
        let mut ids: Vec<String> = list.as_array().unwrap().iter().map(id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        only(c.get("/videos.json", &[("status", "fail")]).await.ok()),
        vec![bad.clone()]
    );
    assert_eq!(
        c.get("/videos.json", &[("status", "bogus")]).await.ok(),
        json!([])
    );
    let mut all = vec![vid.clone(), audio.clone(), bad.clone()];
    all.sort();
    assert_eq!(only(c.get("/videos.json", &[]).await.ok()), all);
    let mut paged = Vec::new();
    for n in ["1", "2", "3"] {
        let l = c
            .get("/videos.json", &[("per_page", "1"), ("page", n)])
            .await
            .ok();
        assert_eq!(
            l.as_array().map(Vec::len),
            Some(1),
            "page {n} of per_page=1: {l}"
        );
        paged.push(id(&l[0]));
    }
    paged.sort();
    assert_eq!(paged, all, "three pages of one video each cover all videos");
    assert_eq!(
        c.get("/videos.json", &[("per_page", "1"), ("page", "4")])
            .await
            .ok(),
        json!([])
    );
    let wrapped = c
        .get(
            "/videos.json",
            &[("include_root", "true"), ("per_page", "2"), ("page", "2")],
        )
        .await
        .ok();
    assert_eq!(
        (
            wrapped["page"].clone(),
            wrapped["per_page"].clone(),
            wrapped["total"].clone()
        ),
        (json!(2), json!(2), json!(3)),
        "include_root: {wrapped}"
    );
    assert_eq!(
        wrapped["videos"].as_array().map(Vec::len),
        Some(1),
        "{wrapped}"
    );

    let by_video = c.get("/encodings.json", &[("video_id", &vid)]).await.ok();
    assert_eq!(by_video.as_array().map(Vec::len), Some(2), "{by_video}");
    let by_name = c
        .get("/encodings.json", &[("profile_name", "webm")])
        .await
        .ok();
    assert_eq!(by_name.as_array().map(Vec::len), Some(1), "{by_name}");
    let all_encs = c
        .get("/encodings.json", &[("status", "success")])
        .await
        .ok();
    assert_eq!(all_encs.as_array().map(Vec::len), Some(3), "{all_encs}");

    // POST /encodings.json with `profile` (the gem README's spelling)
    let e = c
        .post(
            "/encodings.json",
            &[("video_id", &vid), ("profile", "webm")],
        )
        .await
        .ok();
    assert_eq!(e["profile_name"], "webm", "{e}");
    let e = c.wait_encoding(&id(&e), SECS(600)).await;
    assert_eq!(e["status"], "success", "{e}");
    s.assert_scratch_empty().await;
}

#[tokio::test]
async fn clouds_can_be_read_and_renamed() {
    let s = Server::start().await;
    let c = s.client();
    let cloud = c
        .get(&format!("/clouds/{}.json", s.cloud.id), &[])
        .await
        .ok();
    assert_eq!(
        cloud["url"],
        format!("http://127.0.0.1:{}/storage/{}/", s.port, s.cloud.id),
        "the cloud's url is where its objects are served: {cloud}"
    );
    let cloud = c
        .put(
            &format!("/clouds/{}.json", s.cloud.id),
            &[("name", "renamed"), ("priority", "10")],
        )
        .await
        .ok();
    assert_eq!(cloud["name"], "renamed", "{cloud}");
    assert!(
        !cloud.to_string().contains(&s.cloud.secret_key),
        "the secret key must never appear in responses: {cloud}"
    );
    // S3 credentials: accepted or refused (local storage), never echoed
    let r = c
        .put(
            &format!("/clouds/{}.json", s.cloud.id),
            &[
                ("aws_access_key", "AKIAEXAMPLE"),
                ("aws_secret_key", "s3cr3t-value"),
            ],
        )
        .await;
    assert!(
        !r.json.to_string().contains("s3cr3t-value"),
        "credentials must never appear in responses: {}",
        r.json
    );
    let again = c
        .get(&format!("/clouds/{}.json", s.cloud.id), &[])
        .await
        .ok();
    assert_eq!(again["name"], "renamed", "{again}");
}
