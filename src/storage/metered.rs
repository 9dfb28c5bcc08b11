//! A `Storage` that counts what it forwards: operations by backend, kind and
//! outcome (`openpanda_storage_operations_total`), and their latency.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ByteStream, ObjectInfo, PartialWritten, Storage, StorageError};

pub struct Metered {
    inner: Arc<dyn Storage>,
    backend: &'static str,
}

impl Metered {
    pub fn new(inner: Arc<dyn Storage>, backend: &'static str) -> Self {
        Self { inner, backend }
    }

    fn record<T>(&self, op: &'static str, started: Instant, r: &Result<T, StorageError>) {
        let outcome = match r {
            Ok(_) => "ok",
            Err(StorageError::NotFound(_)) => "not_found",
            Err(_) => "error",
        };
        metrics::counter!("openpanda_storage_operations_total",
            "backend" => self.backend, "op" => op, "outcome" => outcome)
        .increment(1);
        metrics::histogram!("openpanda_storage_operation_duration_seconds",
            "backend" => self.backend, "op" => op)
        .record(started.elapsed().as_secs_f64());
    }
}

/// Forwards one call to the inner store and records it.
macro_rules! forward {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let r = $call.await;
        $self.record($op, started, &r);
        r
    }};
}

#[async_trait]
impl Storage for Metered {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, StorageError> {
        forward!(self, "put", self.inner.put(key, body))
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StorageError> {
        forward!(self, "put", self.inner.put_file(key, path))
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        forward!(self, "get", self.inner.get(key))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        forward!(self, "delete", self.inner.delete(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        forward!(self, "list", self.inner.list(prefix))
    }

    fn base_url(&self) -> String {
        self.inner.base_url()
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.inner.local_path(key)
    }

    async fn partial_begin(&self, id: &str) -> Result<String, StorageError> {
        forward!(self, "partial_begin", self.inner.partial_begin(id))
    }

    async fn partial_write(
        &self,
        state: &str,
        offset: u64,
        body: ByteStream,
    ) -> Result<PartialWritten, StorageError> {
        forward!(
            self,
            "partial_write",
            self.inner.partial_write(state, offset, body)
        )
    }

    async fn partial_read(
        &self,
        state: &str,
        offset: u64,
        len: usize,
    ) -> Result<Bytes, StorageError> {
        forward!(
            self,
            "partial_read",
            self.inner.partial_read(state, offset, len)
        )
    }

    async fn partial_complete(
        &self,
        state: &str,
        size: u64,
        key: &str,
    ) -> Result<u64, StorageError> {
        forward!(
            self,
            "partial_complete",
            self.inner.partial_complete(state, size, key)
        )
    }

    async fn partial_abort(&self, state: &str) -> Result<(), StorageError> {
        forward!(self, "partial_abort", self.inner.partial_abort(state))
    }
}
