-- 0006: what the web app needs.
-- Failed sign-ins per (e-mail, client address), so repeated guesses are slowed down with a growing
-- wait. The key is a SHA-256 digest of both, so the table holds no e-mail addresses or addresses.
-- A successful sign-in deletes the row.
create table login_failures (
    key             text primary key,
    failures        bigint not null,
    last_failure_at bigint not null
);
