"""SQL of the notify DuckDB file (adapters layer): schema and statements, constants only."""

from __future__ import annotations

from typing import Final

SCHEMA: Final = """
SET TimeZone = 'UTC';

-- One row per (consumer, signal) processed; written in the same transaction as its effects.
CREATE TABLE IF NOT EXISTS tracking (
    consumer     VARCHAR     NOT NULL,
    event_id     UUID        NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- The outbox: one row per notification; a projection of the audit trail, so it may change.
CREATE TABLE IF NOT EXISTS outbox (
    notification_id  UUID        PRIMARY KEY,
    signal_id        UUID        NOT NULL,
    trial_id         VARCHAR     NOT NULL,
    site_id          VARCHAR     NOT NULL,
    participant_id   VARCHAR     NOT NULL,
    correlation_id   UUID,
    role             VARCHAR     NOT NULL,
    address          VARCHAR     NOT NULL,
    urgency          VARCHAR     NOT NULL,
    subject          VARCHAR     NOT NULL,
    message_id       VARCHAR     NOT NULL,
    in_reply_to      VARCHAR,
    template         VARCHAR     NOT NULL,
    context          VARCHAR     NOT NULL,
    status           VARCHAR     NOT NULL CHECK (status IN ('intended', 'sent', 'failed')),
    attempts         INTEGER     NOT NULL,
    next_attempt_at  TIMESTAMPTZ,
    smtp_reply       VARCHAR,
    last_error       VARCHAR,
    intended_at      TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Append-only, hash-chained NotificationIntended/Sent/Failed facts (wire form in `wire`).
CREATE TABLE IF NOT EXISTS audit_trail (
    seq              BIGINT      PRIMARY KEY,
    event_id         UUID        NOT NULL UNIQUE,
    event_type       VARCHAR     NOT NULL,
    notification_id  UUID        NOT NULL,
    signal_id        UUID        NOT NULL,
    recorded_at      TIMESTAMPTZ NOT NULL,
    wire             VARCHAR     NOT NULL,
    prev_hash        VARCHAR     NOT NULL,
    hash             VARCHAR     NOT NULL
);

-- Deliveries that were not a valid signal: kept for a human, never retried.
CREATE TABLE IF NOT EXISTS dead_letters (
    consumer       VARCHAR     NOT NULL,
    stream_seq     BIGINT      NOT NULL,
    subject        VARCHAR     NOT NULL,
    num_delivered  INTEGER     NOT NULL,
    error          VARCHAR     NOT NULL,
    data           BLOB        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, stream_seq)
);

-- 'sending' marker: set and committed just before the SMTP conversation, cleared by the
-- outcome. A row still intended with sending_at set after a crash is "in doubt": the server
-- may have accepted it before we recorded the 250 (added by ALTER for older files).
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS sending_at TIMESTAMPTZ;
-- U2/U3 rows wait for their recipient's digest: one email per key, not before next_attempt_at.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS digest_key VARCHAR;
-- A U0 page: "<causing fact id>|<address>"; a later signal of the same fact finds it here
-- and reaches that address as a reply to the page instead of paging again.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS page_key VARCHAR;

-- One row per U0/U1 signal that wants an acknowledgement: a projection of the audit trail.
CREATE TABLE IF NOT EXISTS alerts (
    signal_id              UUID        PRIMARY KEY,
    first_notification_id  UUID        NOT NULL,
    participant_id         VARCHAR     NOT NULL,
    urgency                VARCHAR     NOT NULL,
    raised_at              TIMESTAMPTZ NOT NULL,
    escalation_level       INTEGER     NOT NULL,
    closed                 BOOLEAN     NOT NULL,
    acknowledged_at        TIMESTAMPTZ,
    acknowledged_by        VARCHAR,
    ack_reason             VARCHAR,
    ack_via                VARCHAR
);

-- How an alert was closed: "retracted" or "updated" (NULL in rows closed before it existed).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS closed_as VARCHAR;

-- Defence in depth (the hash chain is the real tamper evidence): refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS append_only_guard (never_written VARCHAR);
CREATE TRIGGER IF NOT EXISTS audit_trail_no_update BEFORE UPDATE ON audit_trail
    FOR EACH STATEMENT INSERT INTO append_only_guard SELECT error('audit_trail is append-only');
CREATE TRIGGER IF NOT EXISTS audit_trail_no_delete BEFORE DELETE ON audit_trail
    FOR EACH STATEMENT INSERT INTO append_only_guard SELECT error('audit_trail is append-only');
"""

ALREADY_TRACKED: Final = """
SELECT event_id FROM tracking
WHERE consumer = ? AND event_id IN (SELECT CAST(event_id AS UUID) FROM incoming)
"""

CHAIN_HEAD: Final = "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1"

PLAN_COLUMNS: Final = """
    notification_id, signal_id, trial_id, site_id, participant_id, correlation_id, role,
    address, urgency, subject, message_id, in_reply_to, template, context, attempts
"""

#: A same-event reply (a further finding of a fact whose page went out) waits for every page
#: of its urgency, not only its own: a later SAE's page never queues behind earlier replies.
PENDING: Final = f"""
SELECT {PLAN_COLUMNS}, sending_at, digest_key FROM outbox
WHERE status = 'intended' AND CASE WHEN digest_key IS NULL
    THEN ($due_by IS NULL OR next_attempt_at <= $due_by) ELSE next_attempt_at <= $now END
ORDER BY urgency, json_exists(context, '$.same_event_as'), next_attempt_at, intended_at,
    in_reply_to IS NOT NULL, role <> 'safety_officer', notification_id
LIMIT $limit
"""

IN_DOUBT: Final = f"""
SELECT {PLAN_COLUMNS}, sending_at, digest_key FROM outbox
WHERE status = 'intended' AND sending_at IS NOT NULL
ORDER BY sending_at, notification_id
"""

# The first page recorded under each key (escalations and failovers carry none).
PAGES: Final = """
SELECT page_key, notification_id, signal_id, message_id, context FROM outbox
WHERE page_key IN (SELECT unnest($keys))
QUALIFY row_number() OVER (PARTITION BY page_key ORDER BY intended_at, notification_id) = 1
"""

NEXT_ATTEMPT_AT: Final = "SELECT min(next_attempt_at) FROM outbox WHERE status = 'intended'"

MARK_SENT: Final = """
UPDATE outbox SET status = 'sent', attempts = $attempt, smtp_reply = $smtp_reply,
    sent_at = $at, next_attempt_at = NULL, updated_at = $at, sending_at = NULL
WHERE notification_id = $id AND status = 'intended' RETURNING notification_id
"""

MARK_RETRY: Final = """
UPDATE outbox SET attempts = $attempt, last_error = $error,
    next_attempt_at = $next_attempt_at, updated_at = $at, sending_at = NULL
WHERE notification_id = $id AND status = 'intended' RETURNING notification_id
"""

MARK_FAILED: Final = """
UPDATE outbox SET status = 'failed', attempts = $attempt, last_error = $error,
    next_attempt_at = NULL, updated_at = $at, sending_at = NULL
WHERE notification_id = $id AND status = 'intended' RETURNING notification_id
"""

NOTIFICATIONS: Final = f"""
SELECT {PLAN_COLUMNS}, status, next_attempt_at, smtp_reply, last_error, intended_at, sent_at,
    digest_key
FROM outbox WHERE $signal_id IS NULL OR signal_id = $signal_id
ORDER BY intended_at, role, address
"""

AUDIT_ENTRIES: Final = """
SELECT seq, event_id, event_type, notification_id, signal_id, recorded_at, wire, prev_hash, hash
FROM audit_trail ORDER BY seq
"""

# Digest rows count once their digest is due: a U2 held for tomorrow's digest is not unsent.
UNSENT_COUNT: Final = """
SELECT count(*) FROM outbox
WHERE status = 'intended' AND (digest_key IS NULL OR next_attempt_at <= current_timestamp)
"""

FLUSH_DIGESTS: Final = """
UPDATE outbox SET next_attempt_at = $at
WHERE status = 'intended' AND digest_key IS NOT NULL AND next_attempt_at > $at
RETURNING notification_id
"""

DEAD_LETTERS: Final = """
SELECT stream_seq, subject, num_delivered, error, data FROM dead_letters
ORDER BY consumer, stream_seq
"""

MARK_SENDING: Final = """
UPDATE outbox SET sending_at = $at
WHERE notification_id = $id AND status = 'intended' RETURNING notification_id
"""

PLAN_BY_ID: Final = f"SELECT {PLAN_COLUMNS} FROM outbox WHERE notification_id = $id"

INSERT_ALERT: Final = """
INSERT INTO alerts BY NAME SELECT * FROM arrow_alerts ON CONFLICT DO NOTHING
"""

CLOSE_ALERT: Final = """
UPDATE alerts SET closed = true, closed_as = $as WHERE signal_id = $id AND NOT closed
"""

ALERT: Final = """
SELECT first_notification_id, acknowledged_at, acknowledged_by, closed, closed_as
FROM alerts WHERE signal_id = $id
"""

ACKNOWLEDGE: Final = """
UPDATE alerts SET acknowledged_at = $at, acknowledged_by = $by, ack_reason = $reason,
    ack_via = $via
WHERE signal_id = $id AND acknowledged_at IS NULL RETURNING signal_id
"""

OPEN_U0_ALERTS: Final = """
SELECT a.signal_id, a.urgency, a.raised_at, a.escalation_level, a.first_notification_id
FROM alerts a
WHERE a.urgency = 'U0' AND a.acknowledged_at IS NULL AND NOT a.closed
ORDER BY a.raised_at
"""

RAISE_LEVEL: Final = """
UPDATE alerts SET escalation_level = $level
WHERE signal_id = $id AND escalation_level = $level - 1 AND acknowledged_at IS NULL
RETURNING signal_id
"""

DELIVERY_LOG: Final = """
SELECT seq, event_type, recorded_at, notification_id, signal_id, wire FROM audit_trail
WHERE ($signal_id IS NULL OR signal_id = $signal_id)
  AND ($participant IS NULL OR json_extract_string(wire, '$.participant_id') = $participant)
ORDER BY seq
"""

# The trail relay's read (adapters/trail_relay.py): committed entries past a position.
AUDIT_ENTRIES_AFTER: Final = """
SELECT seq, event_id, event_type, notification_id, signal_id, recorded_at, wire, prev_hash, hash
FROM audit_trail WHERE seq > $after ORDER BY seq LIMIT $limit
"""
