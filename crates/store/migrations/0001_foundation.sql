-- 0001: the foundation model (issue 2), built whole so later issues extend rather than rework it.
-- Written in the SQL both SQLite and PostgreSQL accept: text ids (prefix + ULID), bigint times in
-- UTC epoch milliseconds, bigint 0/1 booleans, JSON as text. Constraints are named.

-- Organizations form a tree; a sub-organization inherits settings it does not set itself.
create table organizations (
    id               text primary key,
    parent_id        text references organizations (id),
    name             text not null,
    -- 'on', 'off' or 'inherit' (from the parent; the root's 'inherit' means off)
    whatsapp         text not null default 'inherit',
    settings         text not null default '{}',
    created_at       bigint not null,
    constraint organizations_name_unique unique (name)
);

create table teams (
    id          text primary key,
    org_id      text not null references organizations (id),
    name        text not null,
    created_at  bigint not null,
    constraint teams_org_name_unique unique (org_id, name)
);

create table users (
    id                text primary key,
    org_id            text not null references organizations (id),
    team_id           text references teams (id),
    email             text not null,
    name              text not null,
    -- admin | supervisor | agent | viewer
    role              text not null,
    password_hash     text not null,
    whatsapp_enabled  bigint not null default 1,
    created_at        bigint not null,
    disabled_at       bigint,
    constraint users_email_unique unique (email)
);
create index users_org on users (org_id);

-- Browser sessions; only the SHA-256 of the cookie value is stored.
create table sessions (
    token_hash  text primary key,
    user_id     text not null references users (id),
    created_at  bigint not null,
    expires_at  bigint not null
);

-- API tokens; only the SHA-256 of the token is stored (tokens are 256-bit random, so a fast hash is safe).
create table api_tokens (
    id            text primary key,
    user_id       text not null references users (id),
    name          text not null,
    token_hash    text not null,
    created_at    bigint not null,
    last_used_at  bigint,
    revoked_at    bigint,
    constraint api_tokens_hash_unique unique (token_hash)
);
create index api_tokens_user on api_tokens (user_id);

-- Business numbers on a provider.
create table senders (
    id                    text primary key,
    org_id                text not null references organizations (id),
    channel               text not null,            -- whatsapp | sms
    provider              text not null,            -- cloud_api | twilio
    phone_number          text not null,            -- E.164
    phone_number_id       text not null,            -- Cloud API phone_number_id (Twilio: the number or service SID)
    waba_id               text,
    display_name          text not null,
    throughput_per_s      bigint not null default 80,
    quality               text,
    messaging_limit_tier  text,
    created_at            bigint not null,
    constraint senders_provider_number_unique unique (provider, phone_number_id)
);

create table contacts (
    id             text primary key,
    org_id         text not null references organizations (id),
    phone          text,                            -- E.164
    wa_user_id     text,                            -- WhatsApp business-scoped user id when the number is withheld
    name           text,                            -- as the business wrote it
    whatsapp_name  text,                            -- the contact's own WhatsApp profile name
    created_at     bigint not null,
    updated_at     bigint not null,
    constraint contacts_org_phone_unique unique (org_id, phone),
    constraint contacts_org_wa_user_unique unique (org_id, wa_user_id)
);
create index contacts_org_created on contacts (org_id, created_at, id);

-- Consent is an append-only ledger; the current state is derived from it (issue 3).
create table consent_events (
    id                   text primary key,
    org_id               text not null references organizations (id),
    contact_id           text not null references contacts (id),
    kind                 text not null,
    actor_user_id        text references users (id),
    message_id           text,
    provider_message_id  text,
    evidence             text not null default '{}',
    at                   bigint not null
);
create index consent_events_contact on consent_events (org_id, contact_id, at);

create table conversations (
    id                    text primary key,
    org_id                text not null references organizations (id),
    channel               text not null,
    contact_id            text not null references contacts (id),
    sender_id             text not null references senders (id),
    status                text not null,            -- new | pending | resolved
    owner_user_id         text references users (id),
    last_inbound_at       bigint,                   -- the 24-hour window runs from here
    last_activity_at      bigint not null,
    last_message_preview  text,
    unread_count          bigint not null default 0,
    created_at            bigint not null,
    updated_at            bigint not null
);
create index conversations_org_activity on conversations (org_id, last_activity_at, id);
create index conversations_thread on conversations (org_id, contact_id, sender_id, channel, status);

create table participants (
    conversation_id  text not null references conversations (id),
    user_id          text not null references users (id),
    joined_at        bigint not null,
    left_at          bigint,
    constraint participants_pk primary key (conversation_id, user_id, joined_at)
);

create table messages (
    id                   text primary key,
    org_id               text not null references organizations (id),
    conversation_id      text not null references conversations (id),
    direction            text not null,             -- in | out | system
    kind                 text not null,
    body                 text,
    media                text,                      -- JSON: provider media id, mime type, sha256, caption
    template             text,                      -- JSON: name, language, parameters
    author_user_id       text references users (id),
    status               text not null,
    provider             text,
    provider_message_id  text,
    reply_to             text,                      -- provider id of the message this answers
    error_code           bigint,
    error_title          text,
    raw                  text,                      -- the provider's message object, as received
    created_at           bigint not null,
    updated_at           bigint not null,
    sent_at              bigint,
    delivered_at         bigint,
    read_at              bigint,
    constraint messages_provider_id_unique unique (provider, provider_message_id)
);
create index messages_conversation on messages (conversation_id, created_at, id);

-- Every status webhook as received, including those for messages openline does not know (yet).
create table message_status_events (
    id                   text primary key,
    provider             text not null,
    provider_message_id  text not null,
    message_id           text,
    status               text not null,
    error_code           bigint,
    at                   bigint not null,
    received_at          bigint not null,
    raw                  text,
    -- a retried webhook carries the same status again: keep one
    constraint message_status_events_unique unique (provider, provider_message_id, status)
);

-- The transactional outbox: a message to send, claimed by a dispatcher with a lease.
create table outbox (
    id               text primary key,
    message_id       text not null references messages (id),
    org_id           text not null,
    sender_id        text not null references senders (id),
    state            text not null,                 -- pending | done | dead
    attempts         bigint not null default 0,
    next_attempt_at  bigint not null,
    lease_until      bigint,
    last_error       text,
    created_at       bigint not null,
    updated_at       bigint not null,
    constraint outbox_message_unique unique (message_id)
);
create index outbox_due on outbox (state, next_attempt_at);

-- A client's Idempotency-Key and the first answer given to it.
create table idempotency_keys (
    user_id          text not null,
    key              text not null,
    request_hash     text not null,
    response_status  bigint not null,
    response_body    text not null,
    created_at       bigint not null,
    constraint idempotency_keys_pk primary key (user_id, key)
);

-- Webhook events that are not messages or statuses (template, quality and account updates, calls,
-- unknown fields): kept whole so nothing a provider tells us is dropped.
create table provider_events (
    id               text primary key,
    provider         text not null,
    field            text not null,
    waba_id          text,
    phone_number_id  text,
    raw              text not null,
    received_at      bigint not null
);

create table templates (
    id                    text primary key,
    org_id                text not null references organizations (id),
    sender_id             text not null references senders (id),
    name                  text not null,
    language              text not null,
    category              text not null,
    components            text not null,
    status                text not null,
    rejection_reason      text,
    provider_template_id  text,
    created_at            bigint not null,
    updated_at            bigint not null,
    constraint templates_sender_name_language_unique unique (sender_id, name, language)
);

-- The tamper-evident archive: one hash chain per organization. Each entry hashes the one before it
-- (SHA-256 over a canonical encoding); `journal_heads` holds each chain's last entry, and appends lock
-- that row, so two writers cannot both extend the same chain.
create table journal (
    org_id      text not null,
    seq         bigint not null,
    at          bigint not null,
    kind        text not null,
    subject_id  text,
    payload     text not null,
    prev_hash   text not null,
    hash        text not null,
    constraint journal_pk primary key (org_id, seq)
);

create table journal_heads (
    org_id  text primary key,
    seq     bigint not null,
    hash    text not null
);
