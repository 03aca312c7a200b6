//! The dispatcher: sends what the outbox holds.
//!
//! It claims due rows with a lease (so a crashed node's rows are picked up again, and on PostgreSQL
//! two nodes never claim the same row), sends each through the provider adapter, and records the
//! outcome in one transaction: accepted (the provider's message id, early statuses applied), retry
//! later (transient failures: 5xx, timeouts, 429/130429, with exponential backoff, jitter and the
//! provider's Retry-After), or failed for good (permanent errors, with the provider's code, which the
//! API explains to the agent). Woken at once when a message is enqueued; otherwise it sleeps until the
//! next row is due (at most a second).
//!
//! Every WhatsApp send is paced first (see [`super::pacing`]): the number's throughput and the
//! per-contact pair limit, shared by all concurrent sends; a row that must wait goes back to the
//! outbox until its slot. A provider's 130429 or 131056 pushes the pacer back.
//!
//! On a timer (every [`LIMIT_CHECK_MS`] of the clock) it also re-checks messages held by the
//! messaging limit: once the rolling 24 hours hold fewer business-initiated conversations than the
//! tier allows, held templates are released in the order they were written.

use super::accepts::{Accept, AcceptRecorder};
use super::pacing::{Departure, Pacers, Slot};
use crate::state::AppState;
use openline_channels::cloud_api::{MediaSource, MediaType, OutboundMessage};
use openline_channels::SendError;
use openline_domain::provider_errors::Retry;
use openline_domain::{Channel, MessageKind, ProviderKind};
use openline_store::senders::Sender;
use openline_store::{messages, outbox, pacing};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// How long a claim lasts before another dispatcher may take the row (longer than a send's timeout).
const LEASE_MS: i64 = 60_000;
/// Rows claimed per round.
const CLAIM_BATCH: i64 = 64;
/// Sends in flight at once.
const CONCURRENCY: usize = 64;
/// After this many attempts a transiently failing message is failed for good.
pub const MAX_ATTEMPTS: i64 = 12;
/// How often (in the clock's time) messages held by the messaging limit are re-checked.
pub const LIMIT_CHECK_MS: i64 = 10_000;
/// Contacts re-checked per round of the messaging-limit timer.
const LIMIT_CHECK_BATCH: i64 = 500;

/// Runs until `shutdown` turns true, then waits for sends in flight to be recorded.
pub async fn run(st: AppState, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let pacers = Arc::new(Pacers::default());
    let (accepts, recording) = AcceptRecorder::start(st.store.clone());
    let mut last_gauge = 0i64;
    let mut last_limit_check = 0i64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = st.now();
        // Every claimed message's content, number and sender come with the claim: the writer has
        // just read their rows (its page cache is warm), where a reader's cache starts cold after
        // every commit and the read was a second hop per batch.
        match st
            .store
            .write(move |c| {
                let claimed = outbox::claim_due(c, now, LEASE_MS, CLAIM_BATCH)?;
                let ids: Vec<String> = claimed.iter().map(|j| j.message_id.clone()).collect();
                Ok((claimed, messages::delivery_targets(c, &ids)))
            })
            .await
        {
            Ok((claimed, targets)) if !claimed.is_empty() => {
                // `delivery_targets` answers one target per id, in order.
                for (job, target) in claimed.into_iter().zip(targets) {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break;
                    };
                    let (st, pacers, accepts) = (st.clone(), pacers.clone(), accepts.clone());
                    tokio::spawn(async move {
                        send_one(&st, &pacers, &accepts, job, target, permit).await;
                    });
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "dispatcher could not claim outbox rows");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        if now - last_gauge >= 1000 || now < last_gauge {
            last_gauge = now;
            update_gauges(&st, now).await;
        }
        if now - last_limit_check >= LIMIT_CHECK_MS || now < last_limit_check {
            last_limit_check = now;
            release_limit_holds(&st, now).await;
        }
        let wait_ms = match st.store.read(outbox::next_due_at).await {
            Ok(Some(due)) => (due - now).clamp(5, 1000),
            _ => 1000,
        };
        tokio::select! {
            _ = st.dispatcher_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Let sends in flight finish and record their outcome.
    let _ = permits.acquire_many(CONCURRENCY as u32).await;
    // Every send has its accept recorded by now; the recorder ends once its last handle is gone.
    drop(accepts);
    let _ = recording.await;
    tracing::info!("dispatcher stopped");
}

/// Releases messages held by the messaging limit as far as the organization's tier now allows, the
/// contact waiting longest first. Once one contact of an organization stays held, the organization
/// is full: its other contacts wait for the next round.
async fn release_limit_holds(st: &AppState, now: i64) {
    let result = st
        .store
        .write(move |c| {
            let mut fx = crate::consent_flow::Effects::default();
            let mut full: Vec<String> = Vec::new();
            for hold in pacing::messaging_limit_holds(c, LIMIT_CHECK_BATCH)? {
                if full.contains(&hold.org_id) {
                    continue;
                }
                let before = fx.messages.len();
                crate::consent_flow::release_held(c, &hold.org_id, &hold.contact_id, &hold.sender_id, now, &mut fx)?;
                if fx.messages.len() == before {
                    full.push(hold.org_id);
                }
            }
            Ok(fx)
        })
        .await;
    match result {
        Ok(fx) => fx.publish(st),
        Err(e) => tracing::error!(error = %e, "could not re-check messages held by the messaging limit"),
    }
}

async fn update_gauges(st: &AppState, now: i64) {
    if let Ok((due, oldest)) = st.store.read(move |c| outbox::backlog(c, now)).await {
        st.metrics.outbox_due.set(due);
        st.metrics.dispatcher_lag_ms.set(oldest.map_or(0, |t| (now - t).max(0)));
    }
}

/// Exponential backoff with full jitter in the upper half: attempt 1 → 0.5–1 s, 2 → 1–2 s, … capped
/// at 5 minutes; never sooner than the provider's Retry-After.
pub fn backoff_ms(attempt: i64, retry_after: Option<Duration>) -> i64 {
    let jittered = super::backoff_ms(attempt, 1_000, 300_000);
    let floor = retry_after.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    jittered.max(floor)
}

/// Waits for the pacer's slot for this send; the send counts against the number's throughput until
/// the returned [`Departure`] is dropped, right after the provider answered. `None` when the row went
/// back to the outbox (or could not be put back: then its lease runs out and it is claimed again).
async fn paced(
    st: &AppState,
    pacers: &Pacers,
    job: &outbox::Claimed,
    sender: &Sender,
    contact: &str,
) -> Option<Departure> {
    let now = st.now();
    match pacers.slot(&sender.id, sender.throughput_per_s, contact, now) {
        Slot::Now => Some(pacers.release(&sender.id, sender.throughput_per_s).await),
        Slot::Booked(at) => {
            tokio::time::sleep(Duration::from_millis(u64::try_from(at - now).unwrap_or(0))).await;
            Some(pacers.release(&sender.id, sender.throughput_per_s).await)
        }
        Slot::Later(at) => {
            st.metrics.send("paced");
            let outbox_id = job.outbox_id.clone();
            // Put back unsent: this attempt never reached the provider.
            if let Err(e) = st
                .store
                .write(move |c| {
                    pacing::defer_claim(c, &outbox_id, at, now)?;
                    outbox::settle_unsent(c, &outbox_id)
                })
                .await
            {
                tracing::error!(error = %e, "could not put a paced message back; its lease will expire and retry it");
            }
            None
        }
    }
}

/// Sends one claimed message; `target` is what [`messages::delivery_targets`] read for it with its
/// claim.
async fn send_one(
    st: &AppState,
    pacers: &Pacers,
    accepts: &AcceptRecorder,
    job: outbox::Claimed,
    target: Result<messages::DeliveryTarget, openline_store::StoreError>,
    // The send's place among those in flight: given back once the provider answered and the
    // outcome is handed over (an accept is then only waiting to be committed with others).
    in_flight: tokio::sync::OwnedSemaphorePermit,
) {
    let attempt = job.attempts + 1;
    let (message, phone, sender) = match target {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, outbox_id = %job.outbox_id, "could not load a message to send");
            return;
        }
    };
    let Some(phone) = phone else {
        fail(st, &job, None, "The contact has no phone number.").await;
        return;
    };
    let result = match sender.provider {
        ProviderKind::CloudApi => {
            // Counts against the number until the answer is in (dropped at the end of this arm).
            let Some(_departure) = paced(st, pacers, &job, &sender, &phone).await else {
                return;
            };
            if let Some(media_type) = media_type_of(message.kind) {
                send_media(st, &message, &phone, &sender, media_type).await
            } else {
                let request = match message.kind {
                    MessageKind::Text => OutboundMessage::Text {
                        to: phone.trim_start_matches('+').to_owned(),
                        body: message.body.clone().unwrap_or_default(),
                        preview_url: false,
                        reply_to: message.reply_to.clone(),
                    },
                    MessageKind::Template => match template_request(&message, &phone) {
                        Some(r) => r,
                        None => {
                            fail(st, &job, None, "The template message is missing its name or language.").await;
                            return;
                        }
                    },
                    MessageKind::Location
                    | MessageKind::Contacts
                    | MessageKind::Interactive
                    | MessageKind::Reaction => {
                        let id = message.id.clone();
                        let content = match st.store.read(move |c| messages::outbound_content(c, &id)).await {
                            Ok(content) => content,
                            Err(e) => {
                                // The claim's lease runs out and the message is tried again.
                                tracing::error!(error = %e, outbox_id = %job.outbox_id, "could not read a message's content");
                                return;
                            }
                        };
                        match content.and_then(|c| rich_request(&message, &c, &phone)) {
                            Some(r) => r,
                            None => {
                                fail(
                                    st,
                                    &job,
                                    None,
                                    &format!("The {} message's content is missing.", message.kind),
                                )
                                .await;
                                return;
                            }
                        }
                    }
                    other => {
                        fail(st, &job, None, &format!("openline cannot send {other} messages yet.")).await;
                        return;
                    }
                };
                st.cloud
                    .send_with_callback_data(&sender.phone_number_id, &request, &message.id)
                    .await
            }
        }
        ProviderKind::Twilio => {
            let Some(twilio) = &st.twilio else {
                fail(
                    st,
                    &job,
                    None,
                    "Twilio is not configured (OPENLINE_TWILIO_ACCOUNT_SID). Tell an admin.",
                )
                .await;
                return;
            };
            let content_sid = if message.kind == MessageKind::Template {
                let m = message.clone();
                match st.store.read(move |c| crate::twilio_send::content_sid(c, &m)).await {
                    Ok(sid) => sid,
                    Err(e) => {
                        // The claim's lease runs out and the message is tried again.
                        tracing::error!(error = %e, outbox_id = %job.outbox_id, "could not read a template's content SID");
                        return;
                    }
                }
            } else {
                None
            };
            let request = match crate::twilio_send::request(
                &sender,
                &message,
                &phone,
                content_sid.as_deref(),
                &crate::twilio_send::Links::of(st),
            ) {
                Ok(r) => r,
                Err(why) => {
                    fail(st, &job, None, &why).await;
                    return;
                }
            };
            // Meta's limits hold through Twilio too; SMS is Twilio's own queue's business.
            let _departure = if sender.channel == Channel::Whatsapp {
                let Some(d) = paced(st, pacers, &job, &sender, &phone).await else {
                    return;
                };
                Some(d)
            } else {
                None
            };
            twilio.send(&request).await
        }
    };
    match result {
        Ok(accepted) => {
            st.metrics.send("accepted");
            let (outbox_id, message_id, now) = (job.outbox_id.clone(), job.message_id.clone(), st.now());
            let pmid = accepted.provider_message_id;
            let provider = sender.provider;
            // An earlier attempt may have reached the provider too (claimed, then no outcome recorded).
            let maybe_sent = job.maybe_sent;
            let recording = accepts
                .enqueue(Accept {
                    outbox_id,
                    message_id,
                    provider,
                    provider_message_id: pmid,
                    maybe_sent,
                    now,
                })
                .await;
            // Shutdown still waits for the commit: the recorder runs until every handle is gone.
            drop(in_flight);
            let recorded = recording.committed().await;
            if maybe_sent {
                tracing::warn!(message_id = %job.message_id, "sent again after an attempt with no recorded outcome: possible duplicate");
            }
            match recorded {
                Ok(m) => st.events.message("message.status", &m),
                // The provider has the message but we could not record it: the attempt stays unsettled,
                // the lease runs out and the row is sent again as a possible duplicate.
                Err(e) => {
                    tracing::error!(error = %e, message_id = %job.message_id, "sent, but recording the provider id failed")
                }
            }
        }
        Err(e) if matches!(e.code, Some(130429 | 131056)) && attempt < MAX_ATTEMPTS => {
            // The provider counts more strictly than the pacer: slow the number (or the person) down
            // for every later send, and try this one at the pacer's next slot.
            st.metrics.send("retry");
            let now = st.now();
            let code = e.code.unwrap_or_default();
            let retry_after = e.retry_after.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let next = pacers.refused(&sender.id, sender.throughput_per_s, &phone, code, retry_after, now);
            tracing::warn!(message_id = %job.message_id, attempt, code, "provider asked to slow down; paced retry");
            let (outbox_id, reason) = (job.outbox_id.clone(), e.message.clone());
            if let Err(err) = st
                .store
                .write(move |c| outbox::retry_at(c, &outbox_id, next, &reason, now))
                .await
            {
                tracing::error!(error = %err, "could not schedule a retry; the lease will expire and retry it");
            }
        }
        Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
            st.metrics.send("retry");
            let now = st.now();
            let next = now + backoff_ms(attempt, e.retry_after);
            tracing::warn!(message_id = %job.message_id, attempt, code = ?e.code, http_status = ?e.http_status, "send failed, will retry");
            let (outbox_id, reason) = (job.outbox_id.clone(), e.message.clone());
            // No answer (a timeout, a dropped connection): the provider may have the message.
            let answered = e.http_status.is_some();
            if let Err(err) = st
                .store
                .write(move |c| {
                    if answered {
                        outbox::retry_at(c, &outbox_id, next, &reason, now)
                    } else {
                        outbox::retry_unsettled_at(c, &outbox_id, next, &reason, now)
                    }
                })
                .await
            {
                tracing::error!(error = %err, "could not schedule a retry; the lease will expire and retry it");
            }
        }
        Err(e) => {
            tracing::warn!(message_id = %job.message_id, attempt, code = ?e.code, http_status = ?e.http_status, "send failed permanently");
            fail(st, &job, e.code, &e.message).await;
        }
    }
}

/// The Cloud API media type a message kind is sent as, for media kinds.
fn media_type_of(kind: MessageKind) -> Option<MediaType> {
    match kind {
        MessageKind::Image => Some(MediaType::Image),
        MessageKind::Video => Some(MediaType::Video),
        MessageKind::Audio => Some(MediaType::Audio),
        MessageKind::Document => Some(MediaType::Document),
        MessageKind::Sticker => Some(MediaType::Sticker),
        _ => None,
    }
}

/// Sends a media message: the file is read from the blob store, uploaded to the provider
/// (`POST /{phone_number_id}/media`) and sent by the id the provider gave it, with the message's
/// body as its caption. A file openline cannot find is a permanent failure; the provider's refusals
/// are judged as for any send (5xx and throttling are retried).
async fn send_media(
    st: &AppState,
    message: &messages::Message,
    phone: &str,
    sender: &Sender,
    media_type: MediaType,
) -> Result<openline_channels::ProviderAccepted, SendError> {
    let permanent = |why: &str| SendError {
        retry: Retry::Permanent,
        code: None,
        http_status: None,
        message: why.to_owned(),
        retry_after: None,
    };
    let Some(media_id) = message
        .media
        .as_ref()
        .and_then(|m| m.get("media_id"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
    else {
        return Err(permanent("The message has no file to send."));
    };
    let file = st
        .store
        .read(move |c| openline_store::media::get_any(c, &media_id))
        .await
        .map_err(|e| SendError::transport(format!("The file could not be read from the database: {e}")))?;
    let (Some(path), Some(content_type)) = (file.stored_path.as_deref(), file.content_type.as_deref()) else {
        return Err(permanent("The file to send is not stored."));
    };
    let bytes = st
        .blobs
        .get(path)
        .await
        .map_err(|e| permanent(&format!("The file to send could not be read from the blob store: {e}")))?;
    let provider_media_id = st
        .cloud
        .upload_media(&sender.phone_number_id, &bytes, content_type, file.filename.as_deref())
        .await?;
    let request = OutboundMessage::Media {
        to: phone.trim_start_matches('+').to_owned(),
        media_type,
        source: MediaSource::Id(provider_media_id),
        caption: message.body.clone().filter(|b| !b.trim().is_empty()),
        filename: file.filename.clone(),
        reply_to: message.reply_to.clone(),
    };
    st.cloud
        .send_with_callback_data(&sender.phone_number_id, &request, &message.id)
        .await
}

/// A location, contact-card, interactive or reaction message's request, from the structured content
/// the send path stored (`{"location": …}`, `{"contacts": […]}`, `{"interactive": …}` in the adapter's
/// shapes, or `{"reaction": {"provider_message_id", "emoji"}}`).
fn rich_request(message: &messages::Message, content: &serde_json::Value, phone: &str) -> Option<OutboundMessage> {
    let to = phone.trim_start_matches('+').to_owned();
    let reply_to = message.reply_to.clone();
    let part = |key: &str| content.get(key).cloned();
    Some(match message.kind {
        MessageKind::Location => OutboundMessage::Location {
            to,
            location: serde_json::from_value(part("location")?).ok()?,
            reply_to,
        },
        MessageKind::Contacts => OutboundMessage::Contacts {
            to,
            contacts: serde_json::from_value(part("contacts")?).ok()?,
            reply_to,
        },
        MessageKind::Interactive => OutboundMessage::Interactive {
            to,
            interactive: serde_json::from_value(part("interactive")?).ok()?,
            reply_to,
        },
        MessageKind::Reaction => {
            let reaction = part("reaction")?;
            OutboundMessage::Reaction {
                to,
                message_id: reaction.get("provider_message_id")?.as_str()?.to_owned(),
                emoji: reaction.get("emoji")?.as_str()?.to_owned(),
            }
        }
        _ => return None,
    })
}

/// A template message's request, from the `template` JSON the send path stored
/// (`{"name","language","body_parameters":[…],"quick_reply_payloads":[…]}`, and for templates with
/// an image header or `{{1}}` URL buttons `"header_image_link"` and `"url_buttons":[[index, suffix]]`
/// as `openline_domain::templates::send_components` placed them).
fn template_request(message: &messages::Message, phone: &str) -> Option<OutboundMessage> {
    let t = message.template.as_ref()?;
    let strings = |key: &str| -> Vec<String> {
        t.get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    Some(OutboundMessage::Template {
        to: phone.trim_start_matches('+').to_owned(),
        name: t.get("name")?.as_str()?.to_owned(),
        language: t.get("language")?.as_str()?.to_owned(),
        body_parameters: strings("body_parameters"),
        quick_reply_payloads: strings("quick_reply_payloads"),
        header_image_link: t.get("header_image_link").and_then(|v| v.as_str()).map(str::to_owned),
        url_button_parameters: t
            .get("url_buttons")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|pair| {
                        let index = usize::try_from(pair.get(0)?.as_u64()?).ok()?;
                        Some((index, pair.get(1)?.as_str()?.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

async fn fail(st: &AppState, job: &outbox::Claimed, code: Option<i64>, title: &str) {
    st.metrics.send("failed");
    let (outbox_id, message_id, now, title) = (
        job.outbox_id.clone(),
        job.message_id.clone(),
        st.now(),
        title.to_owned(),
    );
    let result = st
        .store
        .write(move |c| {
            outbox::dead(c, &outbox_id, &title, now)?;
            let m = messages::mark_failed(c, &message_id, code, &title, now)?;
            let mut fx = crate::consent_flow::Effects::default();
            crate::consent_flow::after_failure(c, &m, now, &mut fx)?;
            fx.messages.push(("message.status", m));
            Ok(fx)
        })
        .await;
    match result {
        Ok(fx) => fx.publish(st),
        Err(e) => tracing::error!(error = %e, "could not record a failed send"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        for _ in 0..100 {
            let a1 = backoff_ms(1, None);
            assert!((500..=1000).contains(&a1), "{a1}");
            let a4 = backoff_ms(4, None);
            assert!((4000..=8000).contains(&a4), "{a4}");
            assert!(backoff_ms(40, None) <= 300_000);
            assert!(backoff_ms(1, Some(Duration::from_secs(30))) >= 30_000);
        }
    }
}
