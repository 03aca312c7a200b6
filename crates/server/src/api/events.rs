//! `GET /api/v1/events`: a server-sent event stream of what happens in the organizations the
//! signed-in user may see (new messages in and out, status changes). Each event's `event:` field is
//! its kind and `data:` the JSON `LiveEvent`.

use crate::auth::CurrentUser;
use crate::error::ErrorBody;
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::Stream;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

/// `GET /api/v1/events`
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses((status = 200, description = "text/event-stream of LiveEvent", body = crate::events::LiveEvent,
        content_type = "text/event-stream"), (status = 401, body = ErrorBody)))]
pub async fn stream_events(
    State(st): State<AppState>,
    me: CurrentUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let scope = me.scope;
    let mut shutdown = st.shutdown.subscribe();
    let stream = BroadcastStream::new(st.events.subscribe()).filter_map(move |item| match item {
        Ok(ev) if scope.contains(&ev.org_id) => {
            let data = serde_json::to_string(&*ev).unwrap_or_else(|_| "{}".into());
            Some(Ok(Event::default().id(ev.id.clone()).event(ev.kind.clone()).data(data)))
        }
        Ok(_) => None,
        // The client fell behind: tell it to refetch instead of silently missing events.
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            Some(Ok(Event::default().event("lagged").data(format!("{{\"missed\":{n}}}"))))
        }
    });
    // A first comment so clients (and proxies) see the stream open at once.
    let hello = tokio_stream::once(Ok(Event::default().comment("openline events")));
    let stream = futures::StreamExt::take_until(hello.chain(stream), async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
