//! Pacing settings through the API: a sender number's throughput (messages per second), which the
//! dispatcher's pacer reads with every send, so a change applies at once.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use openline_domain::limits::Throughput;
use openline_store::senders::{self, Sender};
use openline_store::StoreError;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetThroughput {
    /// Messages per second the number may send: 1 to 1,000 (Meta grants 80 by default and raises
    /// eligible numbers to 1,000). Set what Meta granted the number; more only earns 130429 answers.
    pub per_second: u32,
}

/// `PUT /api/v1/senders/{id}/throughput` (admins): sets a sender number's throughput. Values Meta
/// never grants are refused with `throughput_out_of_range`.
#[utoipa::path(put, path = "/api/v1/senders/{id}/throughput", tag = "contacts", params(("id" = String, Path)),
    request_body = SetThroughput,
    responses((status = 200, body = Sender), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_throughput(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(sender_id): Path<String>,
    ApiJson(req): ApiJson<SetThroughput>,
) -> Result<Json<Sender>, AppError> {
    if !me.user.role.is_admin() {
        return Err(AppError::forbidden("Only admins can change a number's throughput."));
    }
    let throughput = Throughput::new(req.per_second)?;
    let (scope, now) = (me.scope.clone(), st.now());
    let actor = crate::api::archive::actor(&me);
    let sender = st
        .store
        .write(move |c| {
            let Some(sender) = senders::list(c, &scope)?.into_iter().find(|s| s.id == sender_id) else {
                return Err(StoreError::NotFound);
            };
            openline_store::pacing::set_sender_throughput(
                c,
                &sender.org_id,
                &sender.id,
                i64::from(throughput.per_second()),
                &actor,
                now,
            )
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("sender"),
            other => other.into(),
        })?;
    tracing::info!(user_id = %me.user.id, sender_id = %sender.id, per_second = throughput.per_second(), "sender throughput changed");
    Ok(Json(sender))
}
