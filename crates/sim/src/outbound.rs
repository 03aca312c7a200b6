//! What happens to a business message once the Graph API accepted it: the decision Meta makes
//! (deliver, or fail with 131026 / 131050 / 131047), the status webhooks that follow (`sent`, `delivered`
//! after `delivered_after_ms`, `read` after `read_after_ms`), and the scripted personas tapping a
//! quick reply after reading.
//!
//! The decision is taken synchronously when the send is accepted (using the injected clock), so a
//! test that moves a `ManualClock` afterwards cannot change it; only the webhooks are played out in
//! a background task.

use crate::graph::error::GraphError;
use crate::graph::validate::OutboundMessage;
use crate::payloads::{self, Billing, StatusReport};
use crate::personas::{choose_button, PersonaBehaviour};
use crate::state::{ConversationEntry, Direction, MessageChannel};
use crate::{ids, SimBusinessNumber, Simulator};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A pause before the first status, so openline has the Graph response (and the message id) in
/// hand before the `sent` webhook about it arrives, as with Meta.
const STATUS_LAG: Duration = Duration::from_millis(50);
/// A persona's "thinking time" between reading and tapping a button.
const REPLY_LAG: Duration = Duration::from_millis(50);

/// What Meta decided for an accepted message.
enum Plan {
    Fail(StatusReport<'static>),
    Deliver { billing: Billing, read: bool },
}

impl Simulator {
    /// Accepts a validated message from the business: throughput, the fate decision, recording it
    /// in the phone's conversation and starting its lifecycle. Returns the Graph response body.
    pub(crate) fn accept_send(
        self: &Arc<Self>,
        business: &SimBusinessNumber,
        msg: OutboundMessage,
    ) -> Result<Value, GraphError> {
        let now = self.now();
        let id = ids::message_id();
        let plan = {
            let mut state = self.state();
            if !state.take_throughput(&business.phone_number_id, now, self.config.throughput_per_s) {
                return Err(GraphError::rate_limited());
            }
            let behaviour = state.behaviour_of(&msg.recipient);
            let plan = if behaviour == PersonaBehaviour::NotOnWhatsapp {
                Plan::Fail(payloads::undeliverable())
            } else if msg.billing_category == Some("marketing")
                && state.marketing_stopped(&msg.recipient, &business.phone_number_id)
            {
                // The user chose "Stop promotions" for this business: Meta accepts the request and
                // then fails it, as for every delivery decision.
                Plan::Fail(payloads::marketing_stopped())
            } else if self.config.enforce_window
                && !msg.is_template()
                && !state.window_open(&msg.recipient, &business.phone_number_id, now)
            {
                Plan::Fail(payloads::re_engagement())
            } else {
                let (conversation_id, expires_ms) =
                    state.conversation_for(&msg.recipient, &business.phone_number_id, now);
                let category = if msg.is_template() {
                    msg.billing_category.unwrap_or("utility")
                } else {
                    "service"
                };
                Plan::Deliver {
                    billing: Billing {
                        conversation_id,
                        expires_ms,
                        category,
                    },
                    read: behaviour != PersonaBehaviour::NeverAnswers,
                }
            };
            state.record(
                &msg.recipient,
                ConversationEntry {
                    id: id.clone(),
                    direction: Direction::FromBusiness,
                    business_number: business.display_phone_number.clone(),
                    channel: MessageChannel::Whatsapp,
                    kind: msg.kind.clone(),
                    text: msg.text.clone(),
                    template: msg.template.clone(),
                    buttons: msg.buttons.clone(),
                    media_id: msg.media_id.clone(),
                    context_id: msg.context_id.clone(),
                    status: "accepted".into(),
                    error_code: None,
                    timestamp_ms: now,
                },
            );
            plan
        };
        tracing::info!(message_id = %id, kind = %msg.kind, "business message accepted");
        let mut sent = json!({ "id": id });
        if msg.is_template() {
            sent["message_status"] = json!("accepted");
        }
        let response = json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": msg.to_input, "wa_id": msg.recipient.digits() }],
            "messages": [sent],
        });
        let sim = Arc::clone(self);
        let business = business.clone();
        tokio::spawn(async move { sim.play_lifecycle(business, msg, id, plan).await });
        Ok(response)
    }

    /// Marks a message the phone sent as read by the business. Unknown ids are accepted, as the
    /// simulator forgets everything on restart while openline remembers.
    pub(crate) fn mark_read(&self, message_id: &str) {
        self.state().set_status(message_id, "read", None);
    }

    async fn play_lifecycle(
        self: Arc<Self>,
        business: SimBusinessNumber,
        msg: OutboundMessage,
        id: String,
        plan: Plan,
    ) {
        tokio::time::sleep(STATUS_LAG).await;
        let (billing, read) = match plan {
            Plan::Fail(report) => {
                if let StatusReport::Failed { code, .. } = report {
                    tracing::info!(message_id = %id, code, "business message failed");
                    self.state().set_status(&id, "failed", Some(code));
                }
                self.emit_status(&business, &msg, &id, &report);
                return;
            }
            Plan::Deliver { billing, read } => (billing, read),
        };
        self.state().set_status(&id, "sent", None);
        self.emit_status(&business, &msg, &id, &StatusReport::Sent(&billing));
        tokio::time::sleep(Duration::from_millis(self.config.delivered_after_ms)).await;
        self.state().set_status(&id, "delivered", None);
        self.emit_status(&business, &msg, &id, &StatusReport::Delivered(&billing));
        if !read {
            return;
        }
        tokio::time::sleep(Duration::from_millis(self.config.read_after_ms)).await;
        self.state().set_status(&id, "read", None);
        self.emit_status(&business, &msg, &id, &StatusReport::Read);
        self.persona_reacts(&msg, &id).await;
    }

    /// Accepting and declining personas tap a button of what they just read.
    async fn persona_reacts(&self, msg: &OutboundMessage, id: &str) {
        let behaviour = self.state().behaviour_of(&msg.recipient);
        let labels: Vec<&str> = msg.buttons.iter().map(|b| b.text.as_str()).collect();
        let Some(choice) = choose_button(behaviour, &labels) else {
            return;
        };
        let Some(button) = msg.buttons.get(choice) else {
            return;
        };
        tokio::time::sleep(REPLY_LAG).await;
        match self.tap_button(&msg.recipient, id, &button.id) {
            Ok((reply_id, _)) => {
                tracing::info!(message_id = %id, reply = %reply_id, "persona tapped a button")
            }
            Err(e) => {
                tracing::warn!(message_id = %id, code = e.code, "persona could not tap a button")
            }
        }
    }

    fn emit_status(&self, business: &SimBusinessNumber, msg: &OutboundMessage, id: &str, report: &StatusReport<'_>) {
        let mut body = payloads::status(business, &msg.recipient, id, self.now(), report);
        crate::webhooks::echo_callback_data(&mut body, msg.callback_data.as_deref());
        let label = match report {
            StatusReport::Sent(_) => "status.sent",
            StatusReport::Delivered(_) => "status.delivered",
            StatusReport::Read => "status.read",
            StatusReport::Failed { .. } => "status.failed",
        };
        // Nobody waits for status deliveries; retries carry on in the background.
        drop(self.webhooks.enqueue(msg.recipient.digits(), label, &body));
    }
}
