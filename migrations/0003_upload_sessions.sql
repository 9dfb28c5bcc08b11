-- Resumable upload sessions (spec §5). A session is opened by the signed
-- POST /videos/upload.json and then written through its unsigned location,
-- possibly by several processes in turn, so everything about it is here.
-- Portable SQL only: TEXT and BIGINT, times in Unix milliseconds.

CREATE TABLE upload_sessions (
    id TEXT PRIMARY KEY,
    cloud_id TEXT NOT NULL REFERENCES clouds(id),
    -- The client's file name, basename only (spec §3.2 V4).
    file_name TEXT NOT NULL,
    file_size BIGINT NOT NULL,
    -- JSON array of the profile ids to encode with, resolved when opened.
    profile_ids TEXT NOT NULL,
    path_format TEXT,
    payload TEXT,
    -- Bytes stored contiguously from offset 0.
    received BIGINT NOT NULL DEFAULT 0,
    -- The storage backend's opaque record of the partial object.
    storage_state TEXT NOT NULL,
    -- Set once the upload is complete and the video exists.
    video_id TEXT,
    -- The one request allowed to write (a lease, like a job's).
    writer TEXT,
    writer_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    -- Last activity; the session expires a configured time after it.
    updated_at BIGINT NOT NULL,
    -- When the session was found expired and its partial data removed; the
    -- row stays a while longer so late requests can be told why they fail.
    expired_at BIGINT
);
CREATE INDEX upload_sessions_updated ON upload_sessions(updated_at);
