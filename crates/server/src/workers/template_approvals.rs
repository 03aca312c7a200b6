//! Twilio Content templates awaiting WhatsApp's review.
//!
//! Meta tells openline when one of its templates is reviewed (the `message_template_status_update`
//! webhook), but Twilio sends nothing when WhatsApp's review of a Content template ends: a template
//! registered while pending would stay unusable until someone registered it again. So openline asks
//! Twilio's Content API again (`GET /v1/Content/{Sid}/ApprovalRequests`) about every template still
//! recorded as pending — on a timer (`twilio.approval_refresh_ms`) and just before a send uses one —
//! records an ended review once (journaled `template.status`, by the system) and tells open pages
//! (the `template.status` live event, as for Meta's webhook).

use crate::state::AppState;
use openline_domain::templates::TemplateStatus;
use openline_domain::{Channel, ProviderKind};
use openline_store::orgs::Scope;
use openline_store::templates::{self, TemplateRecord};
use openline_store::{contacts, senders, StoreError};
use std::time::Duration;
use tokio::sync::watch;

/// Asks the timer's questions every `twilio.approval_refresh_ms` (0: never; only sends ask). The
/// first pass is one interval after start. Stops when shutdown starts; a question in flight is
/// answered (or times out) first.
pub async fn run(st: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = st.config.twilio.approval_refresh_ms;
    if every == 0 || st.twilio.is_none() {
        return;
    }
    let every = Duration::from_millis(every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        refresh_all_pending(&st).await;
    }
}

/// Asks about every Twilio Content template still recorded as pending. Returns how many reviews
/// ended.
pub async fn refresh_all_pending(st: &AppState) -> usize {
    let pending = match st.store.read(templates::pending_content_templates).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the templates awaiting WhatsApp's review");
            return 0;
        }
    };
    let mut ended = 0;
    for record in &pending {
        if refresh(st, record).await.is_some() {
            ended += 1;
        }
    }
    ended
}

/// Before a send of the template `name` (`language`) to `contact_id` on `channel`: when the
/// template that send will use is a Twilio Content template still recorded as pending, Twilio is
/// asked once more, so one approved since goes out instead of being refused. Everything else (no
/// such contact or template, a Cloud API number, a settled review) is left to the send's own checks,
/// which run next and answer as before.
pub async fn before_send(st: &AppState, scope: &Scope, contact_id: &str, channel: Channel, name: &str, language: &str) {
    if st.twilio.is_none() {
        return;
    }
    let (scope, contact_id, name, language) = (
        scope.clone(),
        contact_id.to_owned(),
        name.to_owned(),
        language.to_owned(),
    );
    let pending = st
        .store
        .read(move |c| {
            let contact = match contacts::get(c, &scope, &contact_id) {
                Ok(ct) => ct,
                Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(sender) = senders::for_org(c, &contact.org_id, channel)? else {
                return Ok(None);
            };
            if sender.provider != ProviderKind::Twilio {
                return Ok(None);
            }
            Ok(templates::find(c, &sender.id, &name, &language)?.filter(awaits_review))
        })
        .await;
    match pending {
        Ok(Some(record)) => {
            refresh(st, &record).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not look up a template before sending it"),
    }
}

/// A template whose review Twilio can be asked about: pending, with a Content SID.
fn awaits_review(t: &TemplateRecord) -> bool {
    t.template.status == TemplateStatus::Pending
        && t.provider_template_id
            .as_deref()
            .is_some_and(crate::twilio_send::is_content_sid)
}

/// Asks Twilio about one pending template and records an ended review. Returns the template as it
/// now stands when its review ended. A failure (Twilio out of reach, a SID Twilio no longer has) is
/// logged and leaves it pending: it is asked about again next time.
pub async fn refresh(st: &AppState, record: &TemplateRecord) -> Option<TemplateRecord> {
    if !awaits_review(record) {
        return None;
    }
    let sid = record.provider_template_id.as_deref()?;
    let status = match crate::twilio_send::content_status(st, sid).await {
        Ok(status) => status,
        Err(e) => {
            tracing::warn!(template_id = %record.id, code = e.code, "could not ask Twilio about a template awaiting review; asking again later");
            return None;
        }
    };
    if status == TemplateStatus::Pending {
        return None;
    }
    let (id, now) = (record.id.clone(), st.now());
    match st
        .store
        .write(move |c| templates::settle_pending(c, &id, &status, now))
        .await
    {
        Ok(Some(settled)) => {
            tracing::info!(template_id = %settled.id, status = settled.template.status.as_str(), "WhatsApp's review of a Twilio template ended");
            st.events.publish(
                "template.status",
                &settled.org_id,
                None,
                serde_json::to_value(&settled).unwrap_or_default(),
            );
            Some(settled)
        }
        // Someone else (a send, another node) recorded it first.
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(template_id = %record.id, error = %e, "could not record the end of a template's review");
            None
        }
    }
}
