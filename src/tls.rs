//! HTTPS served by `serve` itself (spec §1.1: the gem's uploader only speaks
//! TLS, .NET only plain HTTP, so both are served, each on its own port).
//! rustls through tokio-rustls, both already in the tree for outgoing
//! requests; the listener plugs into `axum::serve`, which keeps graceful
//! shutdown identical for both ports. Handshakes run in their own tasks with
//! a time limit, so a slow or silent client cannot hold up others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Extension;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::api::uploads::Scheme;
use crate::app::App;
use crate::config::TlsConfig;

/// Starts the HTTPS listener when `tls.listen` is set. Its requests carry
/// `Scheme::Https`, so upload locations handed out there use `https`. It
/// stops with `shutdown`, letting requests in flight finish.
pub async fn spawn_https(
    app: Arc<App>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(addr) = app.config.tls.listen.clone() else {
        return Ok(None);
    };
    let config = server_config(&app.config.tls, &app.config.data_dir)?;
    let listener = TlsListener::bind(&addr, config).await?;
    tracing::info!(listen = %listener.local, "openpanda is listening for HTTPS on {addr}");
    let router = crate::api::router(app).layer(Extension(Scheme::Https));
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the HTTPS listener stopped");
        }
    })))
}

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the backlog.
const MAX_HANDSHAKES: usize = 256;

/// The rustls server configuration from `tls.cert`/`tls.key`, or from the
/// self-signed pair in `data_dir/tls/` (made on first use).
pub fn server_config(tls: &TlsConfig, data_dir: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let (cert, key) = if tls.self_signed {
        self_signed_pair(data_dir, tls.listen.as_deref())?
    } else {
        let cert = tls.cert.clone().context("tls.cert is not set")?;
        let key = tls.key.clone().context("tls.key is not set")?;
        (cert, key)
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificate chain {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the private key do not fit together")?;
    // axum serves HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `data_dir/tls/self-signed.{crt,key}`, made once for localhost, loopback
/// and the listen host, then reused so clients can pin the certificate.
fn self_signed_pair(data_dir: &Path, listen: Option<&str>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = listen.and_then(listen_host) {
        names.push(host);
    }
    let pair = rcgen::generate_simple_self_signed(names)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_private(&key, pair.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, pair.cert.pem())
        .with_context(|| format!("cannot write {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate");
    Ok((cert, key))
}

/// The host of a listen address, unless it is a wildcard or already listed.
fn listen_host(listen: &str) -> Option<String> {
    let host = match listen.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => listen
            .rsplit_once(':')
            .map_or(listen, |(h, _)| h)
            .to_string(),
    };
    let skip = ["", "0.0.0.0", "::", "localhost", "127.0.0.1", "::1"];
    (!skip.contains(&host.as_str())).then_some(host)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// A TLS listener for `axum::serve`: accepts TCP connections and yields
/// those whose handshake succeeded.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub async fn bind(addr: &str, config: Arc<ServerConfig>) -> anyhow::Result<Self> {
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (tls.listen)"))?;
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait, don't spin.
                tracing::warn!(error = %e, "accepting a TLS connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    drop(permit);
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only stops when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_is_made_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsConfig {
            listen: Some("127.0.0.1:0".into()),
            self_signed: true,
            ..Default::default()
        };
        server_config(&tls, dir.path()).unwrap();
        let cert = std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap();
        server_config(&tls, dir.path()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap(),
            cert
        );
    }

    #[test]
    fn missing_files_are_named() {
        let tls = TlsConfig {
            listen: Some("127.0.0.1:0".into()),
            cert: Some("/nonexistent/cert.pem".into()),
            key: Some("/nonexistent/key.pem".into()),
            self_signed: false,
        };
        let err = server_config(&tls, Path::new("/tmp")).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/cert.pem"),
            "{err:#}"
        );
    }

    #[test]
    fn listen_hosts_skip_wildcards() {
        assert_eq!(listen_host("0.0.0.0:443"), None);
        assert_eq!(listen_host("[::]:443"), None);
        assert_eq!(listen_host("10.1.2.3:443").as_deref(), Some("10.1.2.3"));
        assert_eq!(
            listen_host("videos.example.com:8443").as_deref(),
            Some("videos.example.com")
        );
    }
}
