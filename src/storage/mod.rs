//! Where bytes live: originals, encodings, screenshots and logs. One trait,
//! with a local-disk backend (the embedded default); S3 joins it later.
//! Every operation streams: no object is ever held whole in memory.

pub mod local;

use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A stream of object bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    #[error("storage I/O error on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A cloud's object store.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Stores a stream under `key`, replacing any object there; returns the size.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, StorageError>;
    /// Stores a local file under `key`. Backends may move the file instead of
    /// copying it, so the caller must not need it afterwards.
    async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StorageError>;
    /// Reads an object as a stream.
    async fn get(&self, key: &str) -> Result<ByteStream, StorageError>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Lists the objects whose key starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
    /// Base URL of the objects, with a trailing slash (the cloud's `url`).
    fn base_url(&self) -> String;
    /// A path on this machine where the object can be read directly, if any
    /// (saves a copy for the local backend).
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}

/// Checks a key before it reaches any backend: relative, no `.`/`..` or
/// empty segments, no backslashes or control characters.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && !key.contains('\\')
        && !key.chars().any(char::is_control)
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidKey(key.to_string()))
    }
}

/// Copies an object into a local file (for backends without `local_path`).
pub async fn download_to(
    storage: &dyn Storage,
    key: &str,
    dest: &Path,
) -> Result<u64, StorageError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let io = |source| StorageError::Io {
        key: key.to_string(),
        source,
    };
    let mut stream = storage.get(key).await?;
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(io)?;
        n += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_stay_inside_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a\\b",
            "a\nb",
            "./a",
        ] {
            assert!(super::check_key(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["abc.mp4", "my-path/v1/h264/e1.mp4", "x_1.jpg"] {
            assert!(
                super::check_key(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
    }
}
