-- 0002: what the policy issue needs beyond the foundation model.
-- Why a held message waits (awaiting_consent, window_closed, messaging_limit); null once released.
alter table messages add column queue_reason text;
-- Held messages are looked up per thread on every inbound message: index them by thread.
create index messages_queued on messages (conversation_id, queue_reason);
-- Which consent request a message answers or carries, for evidence lookups by provider id.
create index consent_events_provider_message on consent_events (provider_message_id);
-- A template sent to a contact outside their window starts a business-initiated conversation, which
-- counts against the organization's messaging-limit tier (unique contacts per rolling 24 hours).
alter table messages add column business_initiated bigint not null default 0;
create index messages_business_initiated on messages (org_id, business_initiated, created_at);
-- Data-loss prevention: one policy per organization (inherited by sub-organizations unless they
-- override rules), and on each message the verdict that was applied (matches as offsets, never text),
-- whether it awaits review, and who reviewed it.
create table dlp_policies (
    org_id      text primary key references organizations (id),
    policy      text not null,
    updated_at  bigint not null
);
alter table messages add column dlp_verdict text;
alter table messages add column dlp_flagged bigint not null default 0;
alter table messages add column dlp_reviewed_at bigint;
alter table messages add column dlp_reviewed_by text;
create index messages_dlp_flagged on messages (org_id, dlp_flagged, created_at);
