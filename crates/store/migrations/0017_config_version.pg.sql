-- 0017 (PostgreSQL): a token that changes whenever an organization, a sender or a DLP policy
-- changes; see the SQLite twin (0017_config_version.sql) for why. Tokens come from a sequence,
-- which never hands out a value twice, even when the change that took it is rolled back.
create table config_version (
    id     bigint primary key,
    token  bigint not null
);
insert into config_version (id, token) values (1, 0);
create sequence config_version_tokens;
create function config_version_bump() returns trigger language plpgsql as $$
begin
    update config_version set token = nextval('config_version_tokens') where id = 1;
    return null;
end
$$;
create trigger organizations_config after insert or update or delete or truncate on organizations
    for each statement execute function config_version_bump();
create trigger senders_config after insert or update or delete or truncate on senders
    for each statement execute function config_version_bump();
create trigger dlp_policies_config after insert or update or delete or truncate on dlp_policies
    for each statement execute function config_version_bump();
