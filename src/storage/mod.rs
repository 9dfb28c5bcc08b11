//! Where bytes live: originals, encodings, screenshots and logs. One trait,
//! with a local-disk backend (the embedded default); S3 joins it later.
//! Every operation streams: no object is ever held whole in memory.

pub mod local;
pub mod metered;

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
    #[error("this storage backend cannot {0}")]
    Unsupported(&'static str),
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

/// What a partial write did: how many bytes it stored and the backend's new
/// record of the partial object (to be saved with the session).
#[derive(Debug, Clone, PartialEq)]
pub struct PartialWritten {
    pub bytes: u64,
    pub state: String,
}

/// A cloud's object store.
///
/// Besides whole objects, a backend may keep *partial objects* for
/// resumable uploads (spec §5): bytes that arrive in order over many
/// requests, possibly handled by different processes, and become an object
/// only when complete. The caller keeps the backend's opaque `state` string
/// (the local backend: the partial file's name; an S3 backend: the multipart
/// upload id and the parts written so far) in the database and hands it back
/// on every call, so the backend itself stays stateless. The caller also
/// guarantees one writer at a time per partial object.
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

    /// Starts an empty partial object for upload `id` (32 hex digits);
    /// returns its state.
    async fn partial_begin(&self, id: &str) -> Result<String, StorageError> {
        let _ = id;
        Err(StorageError::Unsupported("keep partial uploads"))
    }

    /// Appends `body` at `offset`, which is the length the caller last
    /// committed: anything stored beyond it (a write that was never
    /// committed) is discarded first. Returns the bytes stored and the new
    /// state. A body that ends with an error stores nothing the caller can
    /// rely on; a body that simply ends early is a short write.
    async fn partial_write(
        &self,
        state: &str,
        offset: u64,
        body: ByteStream,
    ) -> Result<PartialWritten, StorageError> {
        let _ = (state, offset, body);
        Err(StorageError::Unsupported("keep partial uploads"))
    }

    /// Reads `len` committed bytes at `offset` back, to compare a re-sent
    /// overlap with what is stored.
    async fn partial_read(
        &self,
        state: &str,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StorageError> {
        let _ = (state, offset, len);
        Err(StorageError::Unsupported("read partial uploads back"))
    }

    /// Turns the first `size` bytes of a partial object into the object
    /// `key`; returns its size.
    async fn partial_complete(
        &self,
        state: &str,
        size: u64,
        key: &str,
    ) -> Result<u64, StorageError> {
        let _ = (state, size, key);
        Err(StorageError::Unsupported("keep partial uploads"))
    }

    /// Throws a partial object away; a missing one is not an error.
    async fn partial_abort(&self, state: &str) -> Result<(), StorageError> {
        let _ = state;
        Err(StorageError::Unsupported("keep partial uploads"))
    }
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

/// A local file holding the object: the backend's own file when it has one,
/// else a copy downloaded to `dest`. `NotFound` when the object is missing.
pub async fn readable_file(
    storage: &dyn Storage,
    key: &str,
    dest: &Path,
) -> Result<PathBuf, StorageError> {
    match storage.local_path(key) {
        Some(p) if p.exists() => Ok(p),
        Some(_) => Err(StorageError::NotFound(key.to_string())),
        None => download_to(storage, key, dest)
            .await
            .map(|_| dest.to_path_buf()),
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
