-- One schema for SQLite and PostgreSQL: only portable types (TEXT, BIGINT,
-- DOUBLE PRECISION); times are milliseconds since the Unix epoch; booleans
-- are 0/1.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    access_key TEXT NOT NULL UNIQUE,
    secret_key TEXT NOT NULL,
    file_size_limit BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE clouds (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    s3_videos_bucket TEXT,
    s3_private_access BIGINT NOT NULL DEFAULT 0,
    priority BIGINT NOT NULL DEFAULT 99,
    notify_url TEXT,
    notify_events TEXT NOT NULL DEFAULT '{}',
    notify_delay BIGINT NOT NULL DEFAULT 30,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX clouds_account ON clouds(account_id);

CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    cloud_id TEXT NOT NULL REFERENCES clouds(id),
    name TEXT,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX profiles_cloud_name ON profiles(cloud_id, name);

CREATE TABLE videos (
    id TEXT PRIMARY KEY,
    cloud_id TEXT NOT NULL REFERENCES clouds(id),
    status TEXT NOT NULL,
    original_filename TEXT,
    extname TEXT NOT NULL,
    path TEXT NOT NULL,
    source_url TEXT,
    payload TEXT,
    path_format TEXT,
    error_class TEXT,
    error_message TEXT,
    mime_type TEXT,
    video_codec TEXT,
    audio_codec TEXT,
    width BIGINT,
    height BIGINT,
    fps DOUBLE PRECISION,
    duration BIGINT,
    file_size BIGINT,
    video_bitrate BIGINT,
    audio_bitrate BIGINT,
    audio_channels BIGINT,
    audio_sample_rate BIGINT,
    facts TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX videos_cloud_updated ON videos(cloud_id, updated_at);

CREATE TABLE encodings (
    id TEXT PRIMARY KEY,
    video_id TEXT NOT NULL REFERENCES videos(id),
    cloud_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    profile_name TEXT NOT NULL,
    profile_spec TEXT NOT NULL,
    status TEXT NOT NULL,
    encoding_progress BIGINT NOT NULL DEFAULT 0,
    started_encoding_at BIGINT,
    encoding_time BIGINT NOT NULL DEFAULT 0,
    extname TEXT NOT NULL,
    path TEXT NOT NULL,
    files TEXT NOT NULL DEFAULT '[]',
    width BIGINT,
    height BIGINT,
    file_size BIGINT NOT NULL DEFAULT 0,
    error_class TEXT,
    error_message TEXT,
    worker_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX encodings_video ON encodings(video_id);
CREATE INDEX encodings_cloud_updated ON encodings(cloud_id, updated_at);

-- The job queue. A job is claimed by taking a lease (owner + expiry); a
-- worker that dies simply lets the lease expire and another takes the job.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    cloud_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    encoding_id TEXT,
    priority BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    run_after BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs(state, priority, created_at);
CREATE INDEX jobs_encoding ON jobs(encoding_id);

-- POST signatures already seen (spec §2.7), kept for their expiry window.
CREATE TABLE used_signatures (
    access_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (access_key, signature)
);
