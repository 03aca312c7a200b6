//! The shared inbox: conversations newest activity first, and each thread's messages.

use crate::api::{cursor, page_limit};
use crate::auth::CurrentUser;
use crate::error::{ApiQuery, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use openline_domain::window::Window;
use openline_store::conversations::{self, Conversation, InboxCursor};
use openline_store::messages::{self, Message, ThreadCursor};
use openline_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

/// WhatsApp's customer-service window for a thread: open for 24 hours after the contact's last
/// message; outside it only approved templates may be sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    pub open: bool,
    /// When it closes (or closed); absent if the contact never wrote.
    pub expires_at: Option<i64>,
    /// Milliseconds left while open (for a countdown), else 0.
    pub remaining_ms: i64,
}

/// A conversation with its window, as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub window: WindowView,
}

impl ConversationView {
    pub fn new(conversation: Conversation, now: i64) -> Self {
        // The same rule the send decision uses, so the countdown and the policy cannot disagree.
        let window = match openline_domain::window::window(conversation.last_inbound_at, now) {
            Window::Open { until } => WindowView {
                open: true,
                expires_at: Some(until),
                remaining_ms: until - now,
            },
            Window::Closed { since } => WindowView {
                open: false,
                expires_at: since,
                remaining_ms: 0,
            },
        };
        Self { conversation, window }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/conversations`: the inbox, newest activity first, paginated by cursor.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(PageQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody)))]
pub async fn list_conversations(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<ConversationPage>, AppError> {
    let limit = page_limit(q.limit);
    let cur = q
        .cursor
        .as_deref()
        .map(cursor::decode)
        .transpose()?
        .map(|(t, id)| InboxCursor {
            last_activity_at: t,
            id,
        });
    let scope = me.scope.clone();
    let items = st
        .store
        .read(move |c| conversations::list(c, &scope, cur.as_ref(), limit))
        .await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|v| cursor::encode(v.last_activity_at, &v.id)))
        .flatten();
    let now = st.now();
    let items = items.into_iter().map(|c| ConversationView::new(c, now)).collect();
    Ok(Json(ConversationPage { items, next_cursor }))
}

/// `GET /api/v1/conversations/{id}`
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path)),
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody)))]
pub async fn get_conversation(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, AppError> {
    let scope = me.scope.clone();
    let conv = st
        .store
        .read(move |c| conversations::get(c, &scope, &id))
        .await
        .map_err(not_found)?;
    Ok(Json(ConversationView::new(conv, st.now())))
}

fn not_found(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::not_found("conversation"),
        other => other.into(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Oldest first.
    pub items: Vec<Message>,
    /// Pass as `cursor` for the page of older messages; absent when there are none.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/conversations/{id}/messages`: the newest `limit` messages (oldest first within the
/// page); `cursor` pages back through older ones.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = MessagePage), (status = 404, body = ErrorBody)))]
pub async fn list_messages(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<MessagePage>, AppError> {
    let limit = page_limit(q.limit);
    let before = q
        .cursor
        .as_deref()
        .map(cursor::decode)
        .transpose()?
        .map(|(t, id)| ThreadCursor { created_at: t, id });
    let scope = me.scope.clone();
    let items = st
        .store
        .read(move |c| {
            // Existence check first, so another organization's conversation is a 404, not an empty page.
            conversations::get(c, &scope, &id)?;
            messages::list_for_conversation(c, &scope, &id, before.as_ref(), limit)
        })
        .await
        .map_err(not_found)?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.first().map(|m| cursor::encode(m.created_at, &m.id)))
        .flatten();
    Ok(Json(MessagePage { items, next_cursor }))
}

/// `GET /api/v1/conversations/{id}/queued`: messages held in the thread, in the order they will be
/// sent, each with why it waits (`queue_reason`, `queue_explanation`).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/queued", tag = "conversations", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Message>), (status = 404, body = ErrorBody)))]
pub async fn list_queued(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<Message>>, AppError> {
    let scope = me.scope.clone();
    st.store
        .read(move |c| {
            conversations::get(c, &scope, &id)?;
            messages::queued_in_conversation(c, &scope, &id)
        })
        .await
        .map(Json)
        .map_err(not_found)
}
