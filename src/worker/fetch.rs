//! Downloading a `source_url`: untrusted input. Only http and https; every
//! address the name resolves to (and every redirect target) must be a public
//! unicast address unless the operator allows private networks; the body is
//! streamed to disk with the size limit checked as it arrives.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::io::AsyncWriteExt;

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

/// True for addresses a customer's URL must not reach: loopback, private,
/// link-local (cloud metadata at 169.254.169.254), unspecified, multicast,
/// carrier-grade NAT, documentation and unique-local ranges.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A resolver that drops forbidden addresses, so neither the first request
/// nor a redirect can connect to one by name.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !is_forbidden(a.ip()))
                .collect();
            if allowed.is_empty() {
                let ip = addrs.first().map(|a| a.ip());
                return Err(format!(
                    "{host} resolves only to private or loopback addresses ({})",
                    ip.map(|i| i.to_string()).unwrap_or_default()
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Host of a URL when it is a literal IP address.
fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
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
    if !allow_private
        && let Some(ip) = literal_ip(&url).filter(|ip| is_forbidden(*ip)) {
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

/// The error and its causes, joined: reqwest's top-level message alone
/// ("error sending request") does not say what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    if e.to_string().contains("timed out") || parts.iter().any(|p| p.contains("timed out")) {
        parts.push("timed out".into());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} is public");
        }
    }

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
