-- 0008: media (issue 6). The bytes of every picture, video, voice note, document and sticker live in
-- openline's blob store (content-addressed by SHA-256); this table says which message they belong
-- to and where fetching them stands. An inbound media message gets a `pending` row in the same
-- transaction that stores the message; the media worker downloads it from the provider, verifies
-- it and marks it `stored` (or retries with backoff, and after the last attempt `failed`, with the
-- message kept either way). A file an agent uploads to send is a row `stored` at once, with no
-- message until it is sent (`direction` out).
create table media (
    id                 text primary key,
    org_id             text not null references organizations (id),
    message_id         text references messages (id),
    direction          text not null,                -- in | out
    provider           text,                         -- cloud_api | twilio (inbound)
    provider_media_id  text,                         -- the provider's id, to resolve and download
    content_type       text,
    filename           text,
    size_bytes         bigint,
    sha256             text,                         -- lower-case hex of the stored bytes
    expected_sha256    text,                         -- what the provider announced (hex), checked on download
    stored_path        text,                         -- relative to the blob store's root
    state              text not null,                -- pending | stored | failed
    attempts           bigint not null default 0,
    next_attempt_at    bigint not null,
    lease_until        bigint,
    last_error         text,
    uploaded_by        text references users (id),
    created_at         bigint not null,
    updated_at         bigint not null,
    constraint media_message_unique unique (message_id)
);
create index media_due on media (state, next_attempt_at);
create index media_org on media (org_id, created_at);
