//! Upload sessions (spec §5), `DELETE /videos/:id/source.json` (§3.2 V6)
//! and HTTPS (§1.1), against a real `openpanda serve`. Each test drives the
//! server with the request shapes of one client: [upl2] (PUT chunks, status
//! queries, the `Location` of every 204), [py] and [gem] (POST chunks, an
//! overstated last range, a one-byte overlap on resume), the unreleased gem
//! branch (one whole-file PUT), the multipart fallback, and browsers (CORS).

#[path = "uploads/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Opts, Server, chunk, make_clip, pattern, send, status_query};
use reqwest::Method;

const KIB: usize = 1024;

/// [upl2]: a status query first (no Range yet), PUT chunks each sent to the
/// `Location` of the previous 204, a lost chunk (a gap) answered with the
/// current Range, a resume from a status query, the final 200 with the Video
/// JSON, and idempotent answers afterwards. The video is then ingested like
/// any upload and the stored original is the file, byte for byte.
#[tokio::test]
async fn upl2_put_chunks_with_status_queries_resume_and_locations() {
    let server = Server::start(Opts {
        workers: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = make_clip(dir.path(), 4);
    let size = file.len();
    assert!(size > 5 * 16 * KIB, "the clip should span several chunks");
    let (id, location) = server
        .open_session(size, &[("profiles", "none"), ("payload", "upl2")])
        .await;
    assert_eq!(location, format!("http://{}/upload/{id}", server.addr));
    let http = &server.http;

    // The first request goes to upload_url: nothing has arrived yet.
    let first = status_query(http, Method::PUT, &location, size).await;
    first.expect_more(0, &location);

    let step = 16 * KIB;
    let mut next = first.location.clone().unwrap();
    let mut at = 0;
    let mut lost_one = false;
    let video = loop {
        let end = (at + step).min(size);
        let range = format!("bytes {at}-{}/{size}", end - 1);
        if at == 2 * step && !lost_one {
            // This chunk is lost on the way; the next one arrives with a gap.
            lost_one = true;
            let gap_start = at + step;
            let gap = format!("bytes {gap_start}-{}/{size}", gap_start + step - 1);
            let a = chunk(
                http,
                Method::PUT,
                &next,
                &gap,
                &file[gap_start..gap_start + step],
            )
            .await;
            a.expect_more(at, &location);
            // [upl2] pauses, then asks the ORIGINAL upload_url where it stands.
            let q = status_query(http, Method::PUT, &location, size).await;
            q.expect_more(at, &location);
            next = q.location.clone().unwrap();
            continue;
        }
        let a = chunk(http, Method::PUT, &next, &range, &file[at..end]).await;
        if end == size {
            break a.expect_video(size);
        }
        a.expect_more(end, &location);
        next = a.location.clone().unwrap();
        at = end;
    };
    assert_eq!(video["status"], "processing");
    assert_eq!(video["original_filename"], "clip.mp4");
    assert_eq!(video["payload"], "upl2");
    let video_id = video["id"].as_str().unwrap();

    // Idempotent: a status query and a re-sent last byte get the same video.
    let again = status_query(http, Method::PUT, &location, size).await;
    assert_eq!(again.expect_video(size)["id"], video_id);
    let last = format!("bytes {}-{}/{size}", size - 1, size - 1);
    let resent = chunk(http, Method::PUT, &location, &last, &file[size - 1..]).await;
    assert_eq!(resent.expect_video(size)["id"], video_id);

    // No encodings unless asked (spec §3.2 V4), and the original is the file.
    let done = server.wait_video(video_id).await;
    assert_eq!(done["status"], "success", "{done}");
    let (_, encodings) = server
        .api(
            Method::GET,
            &format!("/videos/{video_id}/encodings.json"),
            &[],
        )
        .await;
    assert_eq!(encodings, serde_json::json!([]));
    let key = format!("{video_id}.mp4");
    assert_eq!(std::fs::read(server.object(&key)).unwrap(), file);
    assert!(
        server.partial_files().is_empty(),
        "{:?}",
        server.partial_files()
    );
}

/// [py] and [gem]: POST chunks whose last range is overstated (E = S+CHUNK-1
/// past the end), an interruption, and a resume that re-sends one byte: the
/// client reads Range from a status query and restarts at its last byte.
#[tokio::test]
async fn py_and_gem_post_chunks_with_overstated_last_range_and_one_byte_overlap() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(100 * KIB + 123);
    let size = file.len();
    let (_, location) = server.open_session(size, &[]).await;
    let http = &server.http;
    let step = 30 * KIB;
    let (file, location) = (&file, &location);
    let post = |pos: usize| {
        // What [py] sends: always CHUNK-1 past S, even for the last chunk.
        let range = format!("bytes {pos}-{}/{size}", pos + step - 1);
        let end = (pos + step).min(size);
        let body = file[pos..end].to_vec();
        async move { chunk(http, Method::POST, location, &range, &body).await }
    };
    post(0).await.expect_more(step, location);
    post(step).await.expect_more(2 * step, location);
    // A timeout: the client does not know whether its chunk arrived, so it
    // asks, and resumes at the last byte stored (pos = E), re-sending it.
    let q = status_query(http, Method::POST, location, size).await;
    q.expect_more(2 * step, location);
    let e: usize = q.range.unwrap().split('-').nth(1).unwrap().parse().unwrap();
    let mut pos = e;
    loop {
        let a = post(pos).await;
        if pos + step >= size {
            let v = a.expect_video(size);
            assert_eq!(v["original_filename"], "clip.mp4");
            break;
        }
        a.expect_more(pos + step, location);
        pos += step;
    }
}

/// The unreleased gem branch: the whole file in one PUT without
/// Content-Range; a body of the wrong size is refused and stores nothing.
#[tokio::test]
async fn whole_file_in_one_put() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(50 * KIB);
    let (_, location) = server.open_session(file.len(), &[]).await;
    let http = &server.http;
    let octet = [("content-type", "application/octet-stream")];
    let short = send(http, Method::PUT, &location, &octet, file[..100].to_vec()).await;
    short.expect_error(400, "file_size is 51200");
    status_query(http, Method::PUT, &location, file.len())
        .await
        .expect_more(0, &location);
    let a = send(http, Method::PUT, &location, &octet, file.clone()).await;
    a.expect_video(file.len());
}

/// The multipart fallback (spec §5.5): the first file part whatever its
/// field name, other fields ignored, the part's filename wins.
#[tokio::test]
async fn multipart_post_to_the_location() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(20 * KIB);
    let (_, location) = server.open_session(file.len(), &[]).await;
    let boundary = "----upl2-flash-boundary";
    let mut body = Vec::new();
    for (name, value) in [("Filename", "Movie.MOV"), ("Upload", "Submit Query")] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"upload_var\"; \
             filename=\"Movie.MOV\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let a = send(
        &server.http,
        Method::POST,
        &location,
        &[("content-type", &ct)],
        body,
    )
    .await;
    let v = a.expect_video(file.len());
    assert_eq!(v["original_filename"], "Movie.MOV");
    assert_eq!(v["extname"], ".mov");
}

/// `DELETE <location>` (spec §5.4): 200 with an empty body, the partial data
/// is gone, and later requests get a JSON 404.
#[tokio::test]
async fn delete_aborts_the_session() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(10 * KIB);
    let (id, location) = server.open_session(file.len(), &[]).await;
    let http = &server.http;
    chunk(
        http,
        Method::PUT,
        &location,
        "bytes 0-999/10240",
        &file[..1000],
    )
    .await
    .expect_more(1000, &location);
    assert_eq!(server.partial_files(), vec![format!("{id}.part")]);
    let a = send(http, Method::DELETE, &location, &[], Vec::new()).await;
    assert_eq!((a.status, a.body.as_str()), (200, ""), "{a:?}");
    assert!(server.partial_files().is_empty());
    let later = status_query(http, Method::PUT, &location, file.len()).await;
    later.expect_error(404, "UploadSession");
    let again = send(http, Method::DELETE, &location, &[], Vec::new()).await;
    again.expect_error(404, "UploadSession");
}

/// CORS (spec §5.2): preflights and every answer, errors included, on the
/// location and on /v2, with Range and Location exposed.
#[tokio::test]
async fn cors_preflight_and_exposed_headers() {
    let server = Server::start(Opts::default()).await;
    let (_, location) = server.open_session(100, &[]).await;
    let http = &server.http;
    let preflight = [
        ("origin", "https://customer.example"),
        ("access-control-request-method", "PUT"),
        (
            "access-control-request-headers",
            "content-type,content-range",
        ),
    ];
    let v2 = format!("http://{}/v2/videos.json", server.addr);
    for url in [location.as_str(), v2.as_str()] {
        let a = send(http, Method::OPTIONS, url, &preflight, Vec::new()).await;
        assert!(a.status == 200 || a.status == 204, "{url}: {a:?}");
        check_cors(&a, url);
    }
    let chunk_answer = chunk(http, Method::PUT, &location, "bytes 0-9/100", &[7; 10]).await;
    chunk_answer.expect_more(10, &location);
    check_cors(&chunk_answer, "a 204");
    let error = chunk(http, Method::PUT, &location, "bytes nonsense", &[7; 10]).await;
    error.expect_error(400, "could not be parsed");
    check_cors(&error, "a 400");
    let (status, _) = server.api(Method::GET, "/videos.json", &[]).await;
    assert_eq!(status, 200);
}

#[track_caller]
fn check_cors(a: &harness::Answer, what: &str) {
    let h = |n: &str| a.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(h("access-control-allow-origin"), "*", "{what}: {a:?}");
    for m in ["POST", "PUT", "DELETE", "OPTIONS"] {
        assert!(
            h("access-control-allow-methods").contains(m),
            "{what}: {a:?}"
        );
    }
    for header in [
        "Content-Type",
        "Content-Range",
        "Cache-Control",
        "X-Requested-With",
        "X-File-Name",
        "X-Query-Params",
    ] {
        assert!(
            h("access-control-allow-headers").contains(header),
            "{what}: {a:?}"
        );
    }
    assert_eq!(
        h("access-control-expose-headers"),
        "Range, Location",
        "{what}: {a:?}"
    );
}

/// A chunk that starts beyond the file, or whose body runs past it, is
/// refused and stores nothing; the right next chunk is then accepted.
#[tokio::test]
async fn chunk_beyond_file_size_is_refused() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(1000);
    let (_, location) = server.open_session(1000, &[]).await;
    let http = &server.http;
    chunk(
        http,
        Method::PUT,
        &location,
        "bytes 0-499/1000",
        &file[..500],
    )
    .await
    .expect_more(500, &location);
    chunk(
        http,
        Method::PUT,
        &location,
        "bytes 1000-1099/1000",
        &[1; 100],
    )
    .await
    .expect_error(400, "beyond the file's last byte 999");
    let mut long = file[500..].to_vec();
    long.extend_from_slice(&[9; 10]);
    chunk(http, Method::PUT, &location, "bytes 500-1009/1000", &long)
        .await
        .expect_error(400, "beyond the file's last byte 999");
    status_query(http, Method::PUT, &location, 1000)
        .await
        .expect_more(500, &location);
    chunk(
        http,
        Method::PUT,
        &location,
        "bytes 500-999/1000",
        &file[500..],
    )
    .await
    .expect_video(1000);
}

/// The same chunk body streamed without a Content-Length (chunked transfer
/// encoding) is caught while it streams.
#[tokio::test]
async fn streamed_chunk_beyond_file_size_is_refused() {
    let server = Server::start(Opts::default()).await;
    let (_, location) = server.open_session(1000, &[]).await;
    let parts: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![1; 600]), Ok(vec![2; 600])];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(parts));
    let resp = server
        .http
        .put(&location)
        .header("content-range", "bytes 0-1199/1000")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("beyond the file's last byte 999"), "{text}");
    status_query(&server.http, Method::PUT, &location, 1000)
        .await
        .expect_more(0, &location);
}

/// A re-sent overlap must equal what is stored; the session keeps its bytes.
#[tokio::test]
async fn overlapping_chunk_with_different_bytes_is_refused() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(1000);
    let (_, location) = server.open_session(1000, &[]).await;
    let http = &server.http;
    chunk(
        http,
        Method::POST,
        &location,
        "bytes 0-599/1000",
        &file[..600],
    )
    .await
    .expect_more(600, &location);
    let mut changed = file[590..].to_vec();
    changed[5] ^= 0xff;
    chunk(
        http,
        Method::POST,
        &location,
        "bytes 590-999/1000",
        &changed,
    )
    .await
    .expect_error(400, "byte 595 differs");
    status_query(http, Method::POST, &location, 1000)
        .await
        .expect_more(600, &location);
    chunk(
        http,
        Method::POST,
        &location,
        "bytes 590-999/1000",
        &file[590..],
    )
    .await
    .expect_video(1000);
}

/// An unreadable Content-Range is refused, naming the expected forms.
#[tokio::test]
async fn unparsable_content_range_is_refused() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(100);
    let (_, location) = server.open_session(100, &[]).await;
    let http = &server.http;
    for bad in ["bytes 10-5/100", "bytes=abc", "chunks 0-9/100", "bytes 0-9"] {
        let a = chunk(http, Method::PUT, &location, bad, &file[..10]).await;
        if bad == "bytes 0-9" {
            // No total is tolerated (RFC 9110 lets it be unknown).
            a.expect_more(10, &location);
            continue;
        }
        a.expect_error(400, "bytes S-E/L");
    }
    chunk(http, Method::PUT, &location, "bytes 10-99/100", &file[10..])
        .await
        .expect_video(100);
}

/// A total L other than the session's file_size is refused (spec §5.3 b).
#[tokio::test]
async fn wrong_total_is_refused() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(100);
    let (_, location) = server.open_session(100, &[]).await;
    let http = &server.http;
    chunk(http, Method::PUT, &location, "bytes 0-9/101", &file[..10])
        .await
        .expect_error(400, "total of 101 bytes but the session's file_size is 100");
    status_query(http, Method::PUT, &location, 99)
        .await
        .expect_error(400, "file_size is 100");
    chunk(http, Method::PUT, &location, "bytes 0-99/100", &file)
        .await
        .expect_video(100);
}

/// Sessions expire after the configured inactivity; a request to one is
/// told so, and the periodic sweep removes partial data on its own.
#[tokio::test]
async fn expired_sessions_are_refused_and_swept() {
    let server = Server::start(Opts {
        session_ttl_secs: Some(2),
        ..Default::default()
    })
    .await;
    let file = pattern(100);
    let http = &server.http;
    let (_, told) = server.open_session(100, &[]).await;
    let (swept_id, swept) = server.open_session(100, &[]).await;
    for location in [&told, &swept] {
        chunk(http, Method::PUT, location, "bytes 0-9/100", &file[..10])
            .await
            .expect_more(10, location);
    }
    // Activity keeps a session alive.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        status_query(http, Method::PUT, &told, 100)
            .await
            .expect_more(10, &told);
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    chunk(http, Method::PUT, &told, "bytes 10-99/100", &file[10..])
        .await
        .expect_error(404, "expired after 2 s without activity");
    assert!(
        !server.partial_files().contains(&format!("{swept_id}.part")),
        "the sweep should have removed the partial data: {:?}",
        server.partial_files()
    );
    assert!(
        server.partial_files().is_empty(),
        "{:?}",
        server.partial_files()
    );
    status_query(http, Method::PUT, &swept, 100)
        .await
        .expect_error(404, "expired after 2 s without activity");
    // A new session works as usual.
    let (_, fresh) = server.open_session(100, &[]).await;
    chunk(http, Method::PUT, &fresh, "bytes 0-99/100", &file)
        .await
        .expect_video(100);
}

/// Two requests writing the same chunk at once: one stores it, the other
/// finds its bytes already there (an identical overlap); nothing is doubled.
#[tokio::test]
async fn concurrent_writes_to_one_session_are_serialised() {
    let server = Server::start(Opts::default()).await;
    let file = pattern(400 * KIB);
    let size = file.len();
    let (_, location) = server.open_session(size, &[]).await;
    let http = &server.http;
    let range = format!("bytes 0-{}/{size}", 200 * KIB - 1);
    let (a, b) = tokio::join!(
        chunk(http, Method::PUT, &location, &range, &file[..200 * KIB]),
        chunk(http, Method::PUT, &location, &range, &file[..200 * KIB]),
    );
    a.expect_more(200 * KIB, &location);
    b.expect_more(200 * KIB, &location);
    let rest = format!("bytes {}-{}/{size}", 200 * KIB, size - 1);
    chunk(http, Method::PUT, &location, &rest, &file[200 * KIB..])
        .await
        .expect_video(size);
}

/// Opening a session checks what the finished upload will need.
#[tokio::test]
async fn opening_a_session_checks_its_parameters() {
    let server = Server::start(Opts::default()).await;
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 5] = [
        (&[("file_name", "a.mp4")], 400, "file_size"),
        (&[("file_size", "10")], 400, "file_name"),
        (
            &[("file_size", "0"), ("file_name", "a.mp4")],
            400,
            "positive",
        ),
        (
            &[
                ("file_size", "10"),
                ("file_name", "a.mp4"),
                ("profiles", "nope"),
            ],
            404,
            "Profile",
        ),
        (
            &[
                ("file_size", "10"),
                ("file_name", "a.mp4"),
                ("path_format", "no-id"),
            ],
            400,
            ":id",
        ),
    ];
    for (params, status, needle) in cases {
        let (got, body) = server
            .api(Method::POST, "/videos/upload.json", params)
            .await;
        assert_eq!(got, status, "{params:?}: {body}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
    }
    // use_all_profiles (sent as 1 by xabbuh) gives every profile.
    let (_, location) = server
        .open_session(10, &[("use_all_profiles", "1"), ("path_format", "up/:id")])
        .await;
    let a = chunk(
        &server.http,
        Method::PUT,
        &location,
        "bytes 0-9/10",
        &[0; 10],
    )
    .await;
    let v = a.expect_video(10);
    assert!(v["path"].as_str().unwrap().starts_with("up/"), "{v}");
    let id = v["id"].as_str().unwrap();
    let (_, encodings) = server
        .api(Method::GET, &format!("/videos/{id}/encodings.json"), &[])
        .await;
    assert_eq!(encodings[0]["profile_name"], "h264", "{encodings}");
}

/// V6: only the original goes; encodings made afterwards fail with
/// FileNotFound.
#[tokio::test]
async fn delete_source_removes_only_the_original() {
    let server = Server::start(Opts {
        workers: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = make_clip(dir.path(), 1);
    let (_, location) = server.open_session(file.len(), &[]).await;
    let a = send(
        &server.http,
        Method::PUT,
        &location,
        &[("content-type", "application/octet-stream")],
        file.clone(),
    )
    .await;
    let id = a.expect_video(file.len())["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(server.wait_video(&id).await["status"], "success");
    let original = server.object(&format!("{id}.mp4"));
    assert!(original.exists());

    let (status, body) = server
        .api(Method::DELETE, &format!("/videos/{id}/source.json"), &[])
        .await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({ "deleted": true }))
    );
    assert!(!original.exists(), "the original should be gone");
    let (status, video) = server
        .api(Method::GET, &format!("/videos/{id}.json"), &[])
        .await;
    assert_eq!((status, video["status"].as_str()), (200, Some("success")));

    let (status, enc) = server
        .api(
            Method::POST,
            "/encodings.json",
            &[("video_id", &id), ("profile_name", "h264")],
        )
        .await;
    assert_eq!(status, 200, "{enc}");
    let enc = server.wait_encoding(enc["id"].as_str().unwrap()).await;
    assert_eq!(enc["status"], "fail", "{enc}");
    assert_eq!(enc["error_class"], "FileNotFound", "{enc}");

    let (status, _) = server
        .api(
            Method::DELETE,
            "/videos/0123456789abcdef0123456789abcdef/source.json",
            &[],
        )
        .await;
    assert_eq!(status, 404);
}

/// HTTPS beside HTTP (spec §1.1): the location uses the scheme the client
/// came in with, and the upload works over TLS ([gem] forces it).
#[tokio::test]
async fn https_listener_hands_out_https_locations() {
    let server = Server::start(Opts {
        tls: true,
        ..Default::default()
    })
    .await;
    let tls = server.tls_addr.clone().unwrap();
    let file = pattern(3000);
    let params = [("file_size", "3000"), ("file_name", "a.mp4")];
    let (status, body) = server
        .api_at(
            &format!("https://{tls}"),
            Method::POST,
            "/videos/upload.json",
            &params,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let location = body["location"].as_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("https://{tls}/upload/{}", body["id"].as_str().unwrap())
    );
    let http = &server.http;
    chunk(
        http,
        Method::POST,
        &location,
        "bytes 0-999/3000",
        &file[..1000],
    )
    .await
    .expect_more(1000, &location);
    chunk(
        http,
        Method::POST,
        &location,
        "bytes 999-2999/3000",
        &file[999..],
    )
    .await
    .expect_video(3000);
    // The same API over plain HTTP hands out plain locations.
    let (_, plain) = server.open_session(10, &[]).await;
    assert!(
        plain.starts_with(&format!("http://{}/upload/", server.addr)),
        "{plain}"
    );
    // The certificate is kept in the data directory for clients to pin.
    assert!(server.dir.join("tls/self-signed.crt").exists());
}

/// Panda's own Python client library, as published on PyPI (`panda` 0.3.1,
/// Python 2 code run through 2to3 plus the str/bytes patch documented in
/// the script): profiles, a multipart upload, an upload session cut off in
/// the middle of a chunk and resumed, listing, filters, cancel, retry,
/// abort and delete. Needs python3, ffmpeg and pip access to PyPI.
#[tokio::test]
async fn python_panda_library_scenario() {
    let server = Server::start(Opts {
        workers: true,
        ..Default::default()
    })
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/python_panda.py");
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let mut cmd = tokio::process::Command::new("python3");
    // `--key=value`: a secret may start with '-' (URL-safe Base64).
    cmd.arg(script)
        .arg(format!("--port={port}"))
        .arg(format!("--access-key={}", server.access_key))
        .arg(format!("--secret-key={}", server.secret_key))
        .arg(format!("--cloud-id={}", server.cloud_id))
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .expect("the Python scenario took more than 10 minutes")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client scenario failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(report).expect("a JSON report");
    println!("library calls exercised: {report}");
    assert!(report["calls"].as_array().unwrap().len() >= 20, "{report}");
}
