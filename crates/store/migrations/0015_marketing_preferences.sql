-- 0015: marketing preferences (WhatsApp's `user_preferences` webhook: a contact stops or resumes
-- marketing messages) are kept in the consent ledger as `marketing_stopped` / `marketing_resumed`
-- entries, dated by when the contact changed it. Meta redelivers a webhook until it is acknowledged,
-- so the same change must be recorded once however often it arrives: at most one entry of each of
-- these kinds per organization, contact and moment. Other consent kinds are not constrained.
create unique index consent_events_marketing_once
    on consent_events (org_id, contact_id, kind, at)
    where kind in ('marketing_stopped', 'marketing_resumed');
