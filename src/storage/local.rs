//! Objects as files under a directory. Writes go to a temporary file in a
//! sibling directory first and are renamed into place, so a reader never
//! sees half an object. `serve` publishes the directory at the cloud's `url`.
//!
//! A partial object (a resumable upload, spec §5) is one file in the
//! partial directory, on the same file system as the root: chunks are
//! appended to it as they stream in and it is renamed into place when
//! complete, so the upload is never held in memory nor copied a second time.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{ByteStream, ObjectInfo, PartialWritten, Storage, StorageError, check_key};

/// Write buffer of a partial write: few, large writes to the file.
const PARTIAL_BUFFER: usize = 1024 * 1024;

pub struct LocalStorage {
    root: PathBuf,
    tmp: PathBuf,
    partial: PathBuf,
    base_url: String,
}

impl LocalStorage {
    /// `root` holds the objects; `tmp` must be on the same file system.
    /// Partial uploads go to `tmp` unless `with_partial_dir` says otherwise.
    pub fn new(root: PathBuf, tmp: PathBuf, base_url: String) -> Self {
        Self {
            root,
            partial: tmp.clone(),
            tmp,
            base_url,
        }
    }

    /// Keeps partial uploads in `dir` (same file system as the root). They
    /// live as long as their session, so `dir` must not be swept as scratch.
    pub fn with_partial_dir(mut self, dir: PathBuf) -> Self {
        self.partial = dir;
        self
    }

    /// The file of a partial upload. Its state is the upload id, checked
    /// again here so a bad state can never name another file.
    fn partial_path(&self, state: &str) -> Result<PathBuf, StorageError> {
        let ok =
            !state.is_empty() && state.len() <= 64 && state.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(StorageError::InvalidKey(state.to_string()));
        }
        Ok(self.partial.join(format!("{state}.part")))
    }

    /// Opens a partial file for writing at `offset`, dropping any bytes past
    /// it (a write that was never committed).
    async fn open_partial_at(
        &self,
        state: &str,
        offset: u64,
    ) -> Result<tokio::fs::File, StorageError> {
        let path = self.partial_path(state)?;
        let mut file = match tokio::fs::OpenOptions::new().write(true).open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(format!("partial upload {state}")));
            }
            Err(e) => return Err(Self::io(state)(e)),
        };
        let len = file.metadata().await.map_err(Self::io(state))?.len();
        if len < offset {
            return Err(StorageError::NotFound(format!(
                "bytes {len}..{offset} of partial upload {state}"
            )));
        }
        file.set_len(offset).await.map_err(Self::io(state))?;
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(Self::io(state))?;
        Ok(file)
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

    async fn partial_begin(&self, id: &str) -> Result<String, StorageError> {
        let path = self.partial_path(id)?;
        tokio::fs::create_dir_all(&self.partial)
            .await
            .map_err(Self::io(id))?;
        tokio::fs::File::create(&path).await.map_err(Self::io(id))?;
        Ok(id.to_string())
    }

    async fn partial_write(
        &self,
        state: &str,
        offset: u64,
        mut body: ByteStream,
    ) -> Result<PartialWritten, StorageError> {
        let file = self.open_partial_at(state, offset).await?;
        let mut out = tokio::io::BufWriter::with_capacity(PARTIAL_BUFFER, file);
        let mut bytes = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Self::io(state))?;
            out.write_all(&chunk).await.map_err(Self::io(state))?;
            bytes += chunk.len() as u64;
        }
        out.flush().await.map_err(Self::io(state))?;
        // The caller records these bytes as received once we return, so
        // they must survive a crash of the machine, not only of the process.
        out.get_ref().sync_data().await.map_err(Self::io(state))?;
        Ok(PartialWritten {
            bytes,
            state: state.to_string(),
        })
    }

    async fn partial_read(
        &self,
        state: &str,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StorageError> {
        let path = self.partial_path(state)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(Self::io(state))?;
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(Self::io(state))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf).await.map_err(Self::io(state))?;
        Ok(Bytes::from(buf))
    }

    async fn partial_complete(
        &self,
        state: &str,
        size: u64,
        key: &str,
    ) -> Result<u64, StorageError> {
        check_key(key)?;
        let file = self.open_partial_at(state, size).await?;
        drop(file);
        self.place(key, &self.partial_path(state)?).await?;
        Ok(size)
    }

    async fn partial_abort(&self, state: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.partial_path(state)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io(state)(e)),
        }
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

    fn stream_of(parts: &[&'static [u8]]) -> ByteStream {
        let parts: Vec<std::io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(parts))
    }

    #[tokio::test]
    async fn partial_uploads_append_read_back_and_complete_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).with_partial_dir(dir.path().join("uploads"));
        let state = s.partial_begin("abc123").await.unwrap();
        let w = s
            .partial_write(&state, 0, stream_of(&[b"hello ", b"wor"]))
            .await
            .unwrap();
        assert_eq!(w.bytes, 9);
        // An uncommitted tail (bytes 9..12 written, only 6 committed) is
        // dropped by the next write at the committed offset.
        s.partial_write(&state, 9, stream_of(&[b"XYZ"]))
            .await
            .unwrap();
        s.partial_write(&state, 9, stream_of(&[b"ld"]))
            .await
            .unwrap();
        assert_eq!(&s.partial_read(&state, 4, 5).await.unwrap()[..], b"o wor");
        assert_eq!(s.partial_complete(&state, 11, "v/x.mp4").await.unwrap(), 11);
        assert_eq!(
            std::fs::read(dir.path().join("root/v/x.mp4")).unwrap(),
            b"hello world"
        );
        assert!(!dir.path().join("uploads/abc123.part").exists());
        s.partial_abort(&state).await.unwrap();
    }

    #[tokio::test]
    async fn partial_writes_refuse_lost_data_and_bad_states() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let state = s.partial_begin("abc").await.unwrap();
        assert!(matches!(
            s.partial_write(&state, 5, stream_of(&[b"x"])).await,
            Err(StorageError::NotFound(_))
        ));
        assert!(matches!(
            s.partial_begin("../x").await,
            Err(StorageError::InvalidKey(_))
        ));
        s.partial_abort(&state).await.unwrap();
        assert!(matches!(
            s.partial_write(&state, 0, stream_of(&[b"x"])).await,
            Err(StorageError::NotFound(_))
        ));
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
