-- Webhooks (spec §6). Same rules as 0001: TEXT, BIGINT and DOUBLE PRECISION
-- only, times in Unix milliseconds.

-- Each cloud signs its webhooks with its own secret. New clouds get one when
-- they are created; clouds from before this migration get one on first use.
ALTER TABLE clouds ADD COLUMN webhook_secret TEXT;

-- The outbox: one row per event to deliver, written in the same transaction
-- as the state change that caused it. `seq` orders the events of a video;
-- `status` is pending, delivered or dead. A delivery in flight holds a lease
-- (owner + expiry) like a job, so a crashed attempt is simply retried.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    cloud_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    encoding_id TEXT,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    first_attempt_at BIGINT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    last_status BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Ordering per video; due rows; a cloud's deliveries in flight; the log.
CREATE UNIQUE INDEX notifications_video_seq ON notifications(video_id, seq);
CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
CREATE INDEX notifications_cloud_status ON notifications(cloud_id, status);
CREATE INDEX notifications_cloud_created ON notifications(cloud_id, created_at);
