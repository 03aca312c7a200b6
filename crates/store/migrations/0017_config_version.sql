-- 0017 (SQLite): a token that changes whenever an organization, a sender or a DLP policy changes.
-- Every send resolves its organization's settings along the organization tree (the WhatsApp
-- switch, the messaging tier, DLP rules, the number to send from); each connection keeps what it
-- resolved and reads this one row to know whether it still holds. Triggers (rather than the code
-- that writes these tables) change it, so an edit by `openline admin` in another process or by
-- hand in the database is seen too. The token is random, not a counter: a change rolled back
-- restores the old token, and a later change must never come back to a token some connection
-- cached the rolled-back settings under.
create table config_version (
    id     bigint primary key,
    token  bigint not null
);
insert into config_version (id, token) values (1, 0);
create trigger organizations_inserted_config after insert on organizations
begin update config_version set token = random() where id = 1; end;
create trigger organizations_updated_config after update on organizations
begin update config_version set token = random() where id = 1; end;
create trigger organizations_deleted_config after delete on organizations
begin update config_version set token = random() where id = 1; end;
create trigger senders_inserted_config after insert on senders
begin update config_version set token = random() where id = 1; end;
create trigger senders_updated_config after update on senders
begin update config_version set token = random() where id = 1; end;
create trigger senders_deleted_config after delete on senders
begin update config_version set token = random() where id = 1; end;
create trigger dlp_policies_inserted_config after insert on dlp_policies
begin update config_version set token = random() where id = 1; end;
create trigger dlp_policies_updated_config after update on dlp_policies
begin update config_version set token = random() where id = 1; end;
create trigger dlp_policies_deleted_config after delete on dlp_policies
begin update config_version set token = random() where id = 1; end;
