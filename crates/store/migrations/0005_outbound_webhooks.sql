-- 0005: outbound webhooks. Admins subscribe URLs (an archive, a CRM) to event types; a worker walks
-- each subscribed organization's journal from the subscription's cursor and delivers matching
-- entries in order, so nothing is written on the ingest path and no event can be missed.

create table webhook_subscriptions (
    id                          text primary key,
    org_id                      text not null references organizations (id),
    url                         text not null,
    description                 text not null default '',
    -- JSON array of event types (`message.received`, …, or `*`).
    events                      text not null,
    -- Also deliver the events of every organization below `org_id` (each with its own cursor).
    include_sub_organizations   bigint not null default 0,
    -- HMAC-SHA256 key for `Openline-Signature`; shown to the admin once, kept to sign.
    secret                      text not null,
    -- After a rotation the previous secret also signs until this time, so receivers can switch.
    previous_secret             text,
    previous_secret_until       bigint,
    -- active | disabled (by an admin) | parked (the head event failed for the whole retry period).
    state                       text not null,
    -- The event at the head of the queue that is failing: its id, how many attempts, since when,
    -- when to try next and the last error. Cleared when it is delivered.
    head_event_id               text,
    head_attempts               bigint not null default 0,
    head_failing_since          bigint,
    next_attempt_at             bigint not null default 0,
    last_error                  text,
    parked_at                   bigint,
    -- Which node delivers for this subscription, until when (several nodes share the database).
    lease_owner                 text,
    lease_until                 bigint,
    created_by                  text,
    created_at                  bigint not null,
    updated_at                  bigint not null
);
create index webhook_subscriptions_org on webhook_subscriptions (org_id, created_at);
create index webhook_subscriptions_due on webhook_subscriptions (state, next_attempt_at);

-- How far each subscription has delivered in each organization's journal (every entry up to `seq`
-- was delivered or did not match). A missing row means "from the start of that chain".
create table webhook_cursors (
    subscription_id  text not null references webhook_subscriptions (id) on delete cascade,
    org_id           text not null,
    seq              bigint not null,
    constraint webhook_cursors_pk primary key (subscription_id, org_id)
);

-- Every delivery attempt: when, which event, the HTTP status or the error, and how long it took.
create table webhook_attempts (
    id               text primary key,
    subscription_id  text not null references webhook_subscriptions (id) on delete cascade,
    event_id         text not null,
    event_type       text not null,
    attempt          bigint not null,
    at               bigint not null,
    duration_ms      bigint not null,
    http_status      bigint,
    error            text,
    -- delivered | failed | parked
    outcome          text not null,
    -- The first bytes of the receiver's answer (capped), to debug a refusal.
    response_excerpt text
);
create index webhook_attempts_sub on webhook_attempts (subscription_id, at, id);
