//! Objects as files under a directory. Writes go to a temporary file in a
//! sibling directory first and are renamed into place, so a reader never
//! sees half an object. `serve` publishes the directory at the cloud's `url`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{ByteStream, ObjectInfo, Storage, StorageError, check_key};

pub struct LocalStorage {
    root: PathBuf,
    tmp: PathBuf,
    base_url: String,
}

impl LocalStorage {
    /// `root` holds the objects; `tmp` must be on the same file system.
    pub fn new(root: PathBuf, tmp: PathBuf, base_url: String) -> Self {
        Self {
            root,
            tmp,
            base_url,
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn io(key: &str) -> impl Fn(std::io::Error) -> StorageError + '_ {
        move |source| StorageError::Io {
            key: key.to_string(),
            source,
        }
    }

    async fn temp_file(&self, key: &str) -> Result<(PathBuf, tokio::fs::File), StorageError> {
        tokio::fs::create_dir_all(&self.tmp)
            .await
            .map_err(Self::io(key))?;
        let path = self
            .tmp
            .join(format!("put-{}", crate::domain::ids::new_id()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(Self::io(key))?;
        Ok((path, file))
    }

    async fn place(&self, key: &str, from: &Path) -> Result<(), StorageError> {
        let dest = self.path_of(key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(Self::io(key))?;
        }
        tokio::fs::rename(from, &dest).await.map_err(Self::io(key))
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, StorageError> {
        check_key(key)?;
        let (tmp, mut file) = self.temp_file(key).await?;
        let result: Result<u64, StorageError> = async {
            let mut n = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Self::io(key))?;
                n += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(Self::io(key))?;
            }
            file.flush().await.map_err(Self::io(key))?;
            Ok(n)
        }
        .await;
        match result {
            Ok(n) => {
                self.place(key, &tmp).await?;
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StorageError> {
        check_key(key)?;
        let size = tokio::fs::metadata(path)
            .await
            .map_err(Self::io(key))?
            .len();
        // A rename when the file is on the same file system, a copy otherwise.
        if self.place(key, path).await.is_err() {
            let file = tokio::fs::File::open(path).await.map_err(Self::io(key))?;
            return self.put(key, Box::pin(ReaderStream::new(file))).await;
        }
        Ok(size)
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Box::pin(ReaderStream::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(e) => Err(Self::io(key)(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io(key)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Self::io(prefix)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(Self::io(prefix))? {
                let kind = entry.file_type().await.map_err(Self::io(prefix))?;
                let path = entry.path();
                if kind.is_dir() {
                    dirs.push(path);
                } else if kind.is_file() {
                    let rel = path.strip_prefix(&self.root).unwrap_or(&path);
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) {
                        let size = entry.metadata().await.map_err(Self::io(prefix))?.len();
                        out.push(ObjectInfo { key, size });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn store(dir: &Path) -> LocalStorage {
        LocalStorage::new(dir.join("root"), dir.join("tmp"), "http://x/".into())
    }

    #[tokio::test]
    async fn put_get_list_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let body: ByteStream = Box::pin(futures::stream::iter(vec![
            Ok(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]));
        assert_eq!(s.put("a/b/c.mp4", body).await.unwrap(), 11);
        let mut got = Vec::new();
        let mut stream = s.get("a/b/c.mp4").await.unwrap();
        while let Some(c) = stream.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, b"hello world");
        let listed = s.list("a/").await.unwrap();
        assert_eq!(
            listed,
            vec![ObjectInfo {
                key: "a/b/c.mp4".into(),
                size: 11
            }]
        );
        s.delete("a/b/c.mp4").await.unwrap();
        assert!(matches!(
            s.get("a/b/c.mp4").await,
            Err(StorageError::NotFound(_))
        ));
        // The temporary directory holds nothing once a put has finished.
        let mut tmp = tokio::fs::read_dir(dir.path().join("tmp")).await.unwrap();
        assert!(tmp.next_entry().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn refuses_keys_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let body: ByteStream = Box::pin(futures::stream::empty());
        assert!(matches!(
            s.put("../escape", body).await,
            Err(StorageError::InvalidKey(_))
        ));
    }
}
