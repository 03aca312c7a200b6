-- 0014: outbound webhook signing secrets are kept sealed (XChaCha20-Poly1305 under the server's
-- secrets key, see `webhooks_out::sealed`), so the database alone no longer reveals them. Sealed
-- text cannot show its own last characters, so the hint admins use to tell secrets apart is kept
-- beside it. Rows written before this migration hold plain text: the server seals them (and fills
-- the hint) at start-up, a Rust step because only it holds the key.
alter table webhook_subscriptions add column secret_hint text not null default '';
