//! Downloading a `source_url`: untrusted input. Only http and https; every
//! address the name resolves to (and every redirect target) must be a public
//! unicast address unless the operator allows private networks; the body is
//! streamed to disk with the size limit checked as it arrives. The address
//! guard itself lives in `crate::outbound` (webhooks share it).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

pub use crate::outbound::is_forbidden;
use crate::outbound::{GuardedResolver, error_chain, literal_ip};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("source_url {0:?} is not an http or https URL")]
    BadUrl(String),
    #[error(
        "source_url {url} points at a private, loopback or link-local address ({ip}), which is not allowed"
    )]
    Forbidden { url: String, ip: IpAddr },
    #[error("GET {url} returned {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("GET {url} is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: i64 },
    #[error("could not write the download: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks that a URL is one we would try at all (scheme, host present).
pub fn check_url_syntax(raw: &str) -> Result<url::Url, FetchError> {
    let url = url::Url::parse(raw).map_err(|_| FetchError::BadUrl(raw.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FetchError::BadUrl(raw.to_string()));
    }
    Ok(url)
}

/// Downloads `raw_url` to `dest`; returns the number of bytes written.
pub async fn download(
    raw_url: &str,
    dest: &Path,
    limit: i64,
    timeout: Duration,
    allow_private: bool,
) -> Result<u64, FetchError> {
    let url = check_url_syntax(raw_url)?;
    let transport = |e: reqwest::Error| FetchError::Transport {
        url: raw_url.to_string(),
        reason: error_chain(&e),
    };
    if !allow_private && let Some(ip) = literal_ip(&url).filter(|ip| is_forbidden(*ip)) {
        return Err(FetchError::Forbidden {
            url: raw_url.to_string(),
            ip,
        });
    }
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        if !matches!(attempt.url().scheme(), "http" | "https") {
            return attempt.error("redirect to a scheme other than http or https");
        }
        match literal_ip(attempt.url()) {
            Some(ip) if !allow_private && is_forbidden(ip) => {
                attempt.error(format!("redirect to a forbidden address {ip}"))
            }
            _ => attempt.follow(),
        }
    });
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(redirect)
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .timeout(timeout)
        .user_agent(concat!("openpanda/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    let client = builder.build().map_err(transport)?;
    let resp = client.get(url).send().await.map_err(transport)?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: raw_url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: raw_url.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n as i64 > limit) {
        return Err(too_large());
    }
    let mut file = tokio::fs::File::create(dest).await?;
    let mut stream = resp.bytes_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport)?;
        written += chunk.len() as u64;
        if written as i64 > limit {
            return Err(too_large());
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_loopback_and_metadata_urls() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        for url in [
            "http://127.0.0.1:9/x.mp4",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let err = download(url, &dest, 1 << 20, Duration::from_secs(5), false)
                .await
                .unwrap_err();
            assert!(matches!(err, FetchError::Forbidden { .. }), "{url}: {err}");
        }
        let err = download(
            "http://localhost:9/x.mp4",
            &dest,
            1 << 20,
            Duration::from_secs(5),
            false,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("private or loopback"), "{err}");
        assert!(matches!(
            download(
                "file:///etc/passwd",
                &dest,
                1,
                Duration::from_secs(1),
                false
            )
            .await,
            Err(FetchError::BadUrl(_))
        ));
    }
}
