-- Read receipts (issue 6): when an agent opens a thread, openline tells the provider the latest
-- inbound message was read (Cloud API only). The time it claimed that receipt, so each inbound
-- message is acknowledged at most once, whoever opens the thread and however often.
alter table messages add column read_receipt_at bigint;
