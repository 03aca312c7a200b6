-- 0016: three indexes on messages cover only the rows their queries ask for. Each was looked up
-- only for the few messages it is about (held ones, business-initiated ones, ones DLP flagged),
-- yet every message paid for an entry in all three: an inbound message is none of them, and
-- under webhook load the writer spent its time keeping these indexes. The queries already say
-- `queue_reason is not null`, `business_initiated = 1` and `dlp_flagged = 1`, so the partial
-- indexes serve them as before.
drop index messages_queued;
create index messages_queued on messages (conversation_id, queue_reason) where queue_reason is not null;
drop index messages_business_initiated;
create index messages_business_initiated on messages (org_id, created_at) where business_initiated = 1;
drop index messages_dlp_flagged;
create index messages_dlp_flagged on messages (org_id, created_at) where dlp_flagged = 1;
