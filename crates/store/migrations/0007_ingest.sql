-- 0007: indexes the webhook ingest path needs as tables grow (issue 4).
-- Every inbound message looks up its contact's open thread on one business number, newest first.
-- Without this index SQLite's planner walked the organization's whole activity index (one row fetch
-- per conversation) to find it, and ingest slowed as the inbox grew.
create index conversations_contact_thread on conversations (contact_id, sender_id, channel, last_activity_at, id);
