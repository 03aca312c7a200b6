-- 0003: pacing and the messaging-limit timer.
-- Messages held for a reason are looked up by reason across organizations (the dispatcher re-checks
-- `messaging_limit` holds on a timer): index only the few rows that are held.
create index messages_held_reason on messages (queue_reason, created_at) where queue_reason is not null;
