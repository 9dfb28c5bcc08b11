//! A small signed client for the v2 API, built on reqwest. It builds every
//! body itself (query, form, multipart, JSON) so tests can imitate the quirks
//! of real client libraries, and it checks that every API answer is JSON.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::sign::{Variant, encode, sign};

/// Where the parameters of a request travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In the URL query string, with an empty body ([py], [node], [go]).
    Query,
    /// An `application/x-www-form-urlencoded` body (gem, .NET, xabbuh).
    Form,
    /// A `multipart/form-data` body ([php], file uploads).
    Multipart,
    /// A JSON object body (modern scripts).
    Json,
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub access_key: String,
    pub secret_key: String,
    pub cloud_id: String,
    /// The cloud's storage base URL, with a trailing slash.
    pub storage_url: String,
}

/// An API answer: its status and JSON body (already checked to be JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub json: Value,
    /// "METHOD /path" for messages.
    pub what: String,
}

impl Resp {
    /// The body of a 200 answer; panics with the body otherwise.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(
            self.status, 200,
            "{}: expected 200, got {} with body {}",
            self.what, self.status, self.json
        );
        self.json
    }

    /// Checks an error answer's status and `error` name; returns its message.
    #[track_caller]
    pub fn err(self, status: u16, error: &str) -> String {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(error)),
            "{}: expected {status} {error}, got {} with body {}",
            self.what,
            self.status,
            self.json
        );
        let message = self.json["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !message.is_empty(),
            "{}: expected a non-empty \"message\" in the error body, got {}",
            self.what,
            self.json
        );
        message
    }
}

/// A request being built. Defaults: signed strictly with the host without
/// port, params in a form body for POST/PUT and in the query otherwise.
pub struct Request<'a> {
    client: &'a Client,
    method: Method,
    path: String,
    sign_path: Option<String>,
    params: Vec<(String, String)>,
    placement: Option<Placement>,
    file: Option<(String, String, Vec<u8>)>,
    timestamp: Option<String>,
    sign_host: Option<String>,
    variant: Variant,
    omit: Vec<String>,
    signature: Option<String>,
    cloud_id: Option<Option<String>>,
    access_key: Option<String>,
    secret_key: Option<String>,
}

/// A fully built request that can be sent (and replayed) as is.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub method: Method,
    pub url: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub what: String,
}

pub fn now_timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn wire_pairs(pairs: &[(String, String)], variant: Variant) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let value = if variant == Variant::DotNet {
                // what a .NET form body looks like: spaces as '+'
                v.split(' ').map(encode).collect::<Vec<_>>().join("+")
            } else {
                encode(v)
            };
            format!("{}={}", encode(k), value)
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl<'a> Request<'a> {
    pub fn param(mut self, key: &str, value: &str) -> Self {
        self.params.push((key.to_string(), value.to_string()));
        self
    }
    pub fn params(mut self, params: &[(&str, &str)]) -> Self {
        self.params.extend(owned(params));
        self
    }
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }
    pub fn query(self) -> Self {
        self.placement(Placement::Query)
    }
    pub fn form(self) -> Self {
        self.placement(Placement::Form)
    }
    pub fn multipart(self) -> Self {
        self.placement(Placement::Multipart)
    }
    pub fn json(self) -> Self {
        self.placement(Placement::Json)
    }
    /// Adds a file part (forces a multipart body).
    pub fn file(mut self, field: &str, filename: &str, bytes: Vec<u8>) -> Self {
        self.file = Some((field.to_string(), filename.to_string(), bytes));
        if self.placement != Some(Placement::Query) {
            self.placement = Some(Placement::Multipart);
        }
        self
    }
    pub fn timestamp(mut self, ts: &str) -> Self {
        self.timestamp = Some(ts.to_string());
        self
    }
    pub fn sign_host(mut self, host: &str) -> Self {
        self.sign_host = Some(host.to_string());
        self
    }
    pub fn sign_path(mut self, path: &str) -> Self {
        self.sign_path = Some(path.to_string());
        self
    }
    pub fn variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }
    /// Leaves an auth parameter out (`access_key`, `timestamp`, `signature`, `cloud_id`).
    pub fn omit(mut self, key: &str) -> Self {
        self.omit.push(key.to_string());
        self
    }
    pub fn signature(mut self, sig: &str) -> Self {
        self.signature = Some(sig.to_string());
        self
    }
    pub fn cloud_id(mut self, value: Option<&str>) -> Self {
        self.cloud_id = Some(value.map(str::to_string));
        self
    }
    pub fn access_key(mut self, key: &str) -> Self {
        self.access_key = Some(key.to_string());
        self
    }
    pub fn secret_key(mut self, key: &str) -> Self {
        self.secret_key = Some(key.to_string());
        self
    }

    pub fn prepare(self) -> Prepared {
        let c = self.client;
        let placement = self.placement.unwrap_or(
            if self.method == Method::POST || self.method == Method::PUT {
                Placement::Form
            } else {
                Placement::Query
            },
        );
        let mut all: Vec<(String, String)> = Vec::new();
        let keep = |k: &str| !self.omit.iter().any(|o| o == k);
        if keep("access_key") {
            let key = self
                .access_key
                .clone()
                .unwrap_or_else(|| c.access_key.clone());
            all.push(("access_key".into(), key));
        }
        match &self.cloud_id {
            None if keep("cloud_id") => all.push(("cloud_id".into(), c.cloud_id.clone())),
            Some(Some(v)) => all.push(("cloud_id".into(), v.clone())),
            _ => {}
        }
        if keep("timestamp") {
            all.push((
                "timestamp".into(),
                self.timestamp.clone().unwrap_or_else(now_timestamp),
            ));
        }
        all.extend(self.params.iter().cloned());
        let sign_path = self.sign_path.clone().unwrap_or_else(|| {
            // what clients sign: the path without /v2, slashes collapsed
            let mut p = self.path.clone();
            while p.contains("//") {
                p = p.replace("//", "/");
            }
            p
        });
        let host = self
            .sign_host
            .clone()
            .unwrap_or_else(|| c.addr.split(':').next().unwrap().to_string());
        let secret = self
            .secret_key
            .clone()
            .unwrap_or_else(|| c.secret_key.clone());
        let signature = self.signature.clone().unwrap_or_else(|| {
            sign(
                &secret,
                self.method.as_str(),
                &host,
                &sign_path,
                &all,
                self.variant,
            )
        });
        if keep("signature") {
            all.push(("signature".into(), signature));
        }

        let mut url = format!("http://{}/v2{}", c.addr, self.path);
        let mut content_type = None;
        let mut body = Vec::new();
        match placement {
            Placement::Query => {
                url.push('?');
                url.push_str(&wire_pairs(&all, self.variant));
            }
            Placement::Form => {
                content_type = Some("application/x-www-form-urlencoded".to_string());
                body = wire_pairs(&all, self.variant).into_bytes();
            }
            Placement::Json => {
                content_type = Some("application/json".to_string());
                let map: serde_json::Map<String, Value> = all
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                body = serde_json::to_vec(&map).unwrap();
            }
            Placement::Multipart => {
                let boundary = "----openpanda-test-boundary-7MA4YWxkTrZu0gW";
                content_type = Some(format!("multipart/form-data; boundary={boundary}"));
                for (k, v) in &all {
                    body.extend_from_slice(
                        format!(
                            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                        )
                        .as_bytes(),
                    );
                }
                if let Some((field, filename, bytes)) = &self.file {
                    body.extend_from_slice(
                        format!(
                            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(bytes);
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            }
        }
        if placement == Placement::Query
            && let Some((field, filename, bytes)) = &self.file
        {
            // [py]: params in the query, a multipart body with only the file
            let boundary = "----openpanda-test-boundary-py";
            content_type = Some(format!("multipart/form-data; boundary={boundary}"));
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        }
        Prepared {
            what: format!("{} /v2{}", self.method, self.path),
            method: self.method,
            url,
            content_type,
            body,
        }
    }

    pub async fn send(self) -> Resp {
        let client = self.client;
        let prepared = self.prepare();
        client.send_prepared(&prepared).await
    }
}

impl Client {
    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        Request {
            client: self,
            method,
            path: path.to_string(),
            sign_path: None,
            params: Vec::new(),
            placement: None,
            file: None,
            timestamp: None,
            sign_host: None,
            variant: Variant::Strict,
            omit: Vec::new(),
            signature: None,
            cloud_id: None,
            access_key: None,
            secret_key: None,
        }
    }

    pub async fn send_prepared(&self, p: &Prepared) -> Resp {
        let mut req = self
            .http
            .request(p.method.clone(), &p.url)
            .body(p.body.clone());
        if let Some(ct) = &p.content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap_or_else(|e| {
            panic!(
                "{}: request failed: {e} (is the server still running? its log follows)",
                p.what
            )
        });
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{}: reading the body failed: {e}", p.what));
        assert!(
            ct.starts_with("application/json"),
            "{}: every API answer must be Content-Type application/json; got {ct:?} (status {status}, body {text:?})",
            p.what
        );
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{}: every API answer must have a JSON body; got status {status} and {text:?} ({e})",
                p.what
            )
        });
        Resp {
            status,
            json,
            what: p.what.clone(),
        }
    }

    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.request(Method::GET, path).params(params).send().await
    }
    pub async fn post(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.request(Method::POST, path).params(params).send().await
    }
    pub async fn put(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.request(Method::PUT, path).params(params).send().await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path).send().await
    }

    /// POST /videos.json with the file as a multipart part named `file`.
    pub async fn upload_bytes(
        &self,
        filename: &str,
        bytes: Vec<u8>,
        params: &[(&str, &str)],
    ) -> Resp {
        self.request(Method::POST, "/videos.json")
            .params(params)
            .file("file", filename, bytes)
            .send()
            .await
    }

    /// Uploads a local file; returns the new video (checked to be 200).
    pub async fn upload(&self, path: &std::path::Path, params: &[(&str, &str)]) -> Value {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let name = path.file_name().unwrap().to_str().unwrap();
        self.upload_bytes(name, bytes, params).await.ok()
    }

    pub async fn video(&self, id: &str) -> Value {
        self.get(&format!("/videos/{id}.json"), &[]).await.ok()
    }

    pub async fn encodings_of(&self, video_id: &str) -> Vec<Value> {
        let v = self
            .get(&format!("/videos/{video_id}/encodings.json"), &[])
            .await
            .ok();
        v.as_array()
            .unwrap_or_else(|| {
                panic!("GET /videos/{video_id}/encodings.json: expected an array, got {v}")
            })
            .clone()
    }

    pub async fn encoding(&self, id: &str) -> Value {
        self.get(&format!("/encodings/{id}.json"), &[]).await.ok()
    }

    /// Polls a video until its status is final (success or fail).
    pub async fn wait_video(&self, id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.video(id).await;
            match v["status"].as_str() {
                Some("success") | Some("fail") => return v,
                Some("processing") => {}
                other => panic!("video {id}: unexpected status {other:?} in {v}"),
            }
            assert!(
                start.elapsed() < timeout,
                "video {id} was still processing after {timeout:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Polls one encoding until its status is final.
    pub async fn wait_encoding(&self, id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let e = self.encoding(id).await;
            if is_final_encoding(&e) {
                return e;
            }
            assert!(
                start.elapsed() < timeout,
                "encoding {id} was not final after {timeout:?}: {e}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Polls a video's encodings until all are final.
    pub async fn wait_encodings(&self, video_id: &str, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let list = self.encodings_of(video_id).await;
            if list.iter().all(is_final_encoding) {
                return list;
            }
            assert!(
                start.elapsed() < timeout,
                "encodings of video {video_id} were not all final after {timeout:?}: {}",
                Value::Array(list)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GET a stored object (relative key) from the cloud's storage URL.
    pub async fn download(&self, key: &str) -> (u16, Vec<u8>) {
        let url = format!("{}{}", self.storage_url, key);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, bytes)
    }
}

pub fn is_final_encoding(e: &Value) -> bool {
    matches!(
        e["status"].as_str(),
        Some("success") | Some("fail") | Some("cancelled")
    )
}
