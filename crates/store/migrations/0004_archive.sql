-- 0004: the archive's second half (issue 5): signed checkpoints, legal holds, purges, recording.
-- Whether message content is archived for the chain's organization (the `recording` setting,
-- resolved through the organization tree). Kept on the chain head because every append already
-- reads that row: switching recording off costs the ingest path no extra statement.
alter table journal_heads add column recording bigint not null default 1;
-- A chain head (organization, sequence number, hash, time) signed with the archive's Ed25519 key,
-- so an auditor holding an exported checkpoint can tell if history was rewritten afterwards, even
-- with every hash recomputed.
create table journal_checkpoints (
    id          text primary key,
    org_id      text not null,
    seq         bigint not null,
    hash        text not null,
    at          bigint not null,
    public_key  text not null,
    signature   text not null
);
create index journal_checkpoints_org on journal_checkpoints (org_id, seq);
-- Legal holds: while one is active, nothing it covers is purged. scope is 'organization', 'user'
-- or 'contact'; subject_id is the organization, user or contact it covers.
create table legal_holds (
    id           text primary key,
    org_id       text not null references organizations (id),
    scope        text not null,
    subject_id   text not null,
    reason       text not null,
    created_by   text not null,
    created_at   bigint not null,
    released_by  text,
    released_at  bigint
);
create index legal_holds_org on legal_holds (org_id, released_at);
