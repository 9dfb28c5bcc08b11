//! Requests to URLs a customer chose (`source_url` downloads, webhooks): the
//! address guard shared by both. Such a URL must not reach this machine, its
//! private network or a cloud metadata service, so every address a host name
//! resolves to is checked when connecting, and literal addresses too
//! (reqwest never hands those to a resolver).

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

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

/// A resolver that drops forbidden addresses, so no request (nor a redirect)
/// can connect to one by name. Install it with
/// `reqwest::ClientBuilder::dns_resolver` when private networks are not
/// allowed.
pub struct GuardedResolver;

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
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Why a URL was refused before any request was made.
#[derive(Debug)]
pub enum Refused {
    Forbidden { host: String, ip: IpAddr },
    Unresolvable { host: String, reason: String },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forbidden { host, ip } if host.trim_matches(['[', ']']) == ip.to_string() => {
                write!(f, "{ip} is a loopback, private or link-local address")
            }
            Self::Forbidden { host, ip } => write!(
                f,
                "{host} resolves to {ip}, a loopback, private or link-local address"
            ),
            Self::Unresolvable { host, reason } => {
                write!(f, "{host} could not be resolved: {reason}")
            }
        }
    }
}

impl std::error::Error for Refused {}

/// Checks a URL's host now, for settings that will be used later (a webhook
/// URL): a literal address is checked as is, a name is resolved and every
/// address it gives must be public. Connecting still goes through
/// [`GuardedResolver`], because a name can resolve differently later.
pub async fn check_public(url: &url::Url) -> Result<(), Refused> {
    let host = url.host_str().unwrap_or_default().to_string();
    if let Some(ip) = literal_ip(url) {
        return match is_forbidden(ip) {
            true => Err(Refused::Forbidden { host, ip }),
            false => Ok(()),
        };
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host((host.clone(), port)).await;
    let addrs: Vec<SocketAddr> = match lookup {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            let reason = e.to_string();
            return Err(Refused::Unresolvable { host, reason });
        }
    };
    for addr in addrs {
        if is_forbidden(addr.ip()) {
            return Err(Refused::Forbidden {
                host,
                ip: addr.ip(),
            });
        }
    }
    Ok(())
}

/// The error and its causes, joined: reqwest's top-level message alone
/// ("error sending request") does not say what went wrong.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
    async fn check_public_names_the_address() {
        for raw in ["http://127.0.0.1:9/hook", "http://localhost:9/hook"] {
            let url = url::Url::parse(raw).unwrap();
            let err = check_public(&url).await.unwrap_err();
            assert!(matches!(err, Refused::Forbidden { .. }), "{raw}: {err}");
        }
        let url = url::Url::parse("http://[::1]/").unwrap();
        assert!(err_text(&url).await.contains("::1"));
        let url = url::Url::parse("http://93.184.216.34/").unwrap();
        assert!(check_public(&url).await.is_ok());
    }

    async fn err_text(url: &url::Url) -> String {
        check_public(url).await.unwrap_err().to_string()
    }
}
