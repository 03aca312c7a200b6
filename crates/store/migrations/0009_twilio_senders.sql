-- 0009: Twilio senders know their account and their Messaging Service (issue 6).
-- Twilio webhooks are routed by the Messaging Service SID when they carry one (so a number pooled in
-- a service but not registered on its own still finds its sender), else by the account and the
-- number they were sent to. Both are optional: a sender without an account belongs to the account
-- openline is configured with.
alter table senders add column provider_account_id text;     -- Twilio: the AccountSid (AC…) owning the number
alter table senders add column messaging_service_sid text;   -- Twilio: the Messaging Service (MG…) the number belongs to
create index senders_messaging_service on senders (provider, messaging_service_sid);
create index senders_provider_number on senders (provider, phone_number, channel);
