-- Delivery guarantees across a crash (issue 6).
--
-- An outbox row's attempt is "unsettled" from the claim that hands it to the provider until its
-- outcome is recorded (accepted, refused, or put back unsent by the pacer). A row re-claimed while
-- its previous attempt is still unsettled (its node died mid-send, or the send timed out) may
-- already be at the provider: it is sent again, and the message is marked a possible duplicate.
alter table outbox add column unsettled_attempt bigint not null default 0;
-- Sticky: some earlier attempt of the row was claimed again while unsettled.
alter table outbox add column maybe_sent bigint not null default 0;

-- null | 'possible' (sent again after an attempt with no recorded outcome) | 'confirmed' (statuses
-- arrived for two provider ids of the message).
alter table messages add column duplicate text;

-- Every provider id a message of ours was accepted under: the one on the message (the latest
-- recorded accept) and any other an earlier, unrecorded attempt got, learned from statuses that name
-- the message (Cloud API `biz_opaque_callback_data`, Twilio's StatusCallback query). Statuses for
-- any of them apply to the message.
create table message_provider_ids (
    provider             text not null,
    provider_message_id  text not null,
    message_id           text not null references messages (id),
    created_at           bigint not null,
    constraint message_provider_ids_pk primary key (provider, provider_message_id)
);
create index message_provider_ids_message on message_provider_ids (message_id);
