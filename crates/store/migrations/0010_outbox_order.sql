-- The dispatcher claims due rows `order by next_attempt_at, id`. With only (state, next_attempt_at)
-- indexed, a backlog released at once (every row due at the same instant) had to be sorted whole for
-- every claim of 64: at 20,000 rows that was most of the writer's time. With `id` in the index the
-- order comes from the index and a claim reads only the rows it takes.
create index outbox_due_order on outbox (state, next_attempt_at, id);
drop index outbox_due;
