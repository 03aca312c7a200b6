//! Outbound webhook subscriptions through the API (admins): subscribe a URL (a compliance archive, a
//! CRM) to event types of your organization and optionally its sub-organizations, see each
//! subscription's state and delivery attempts, change, disable, resume, rotate its secret or delete
//! it. The signing secret is shown once, at creation and at rotation. Delivery itself is the
//! `workers::outbound_webhooks` worker's; creating, changing and deleting are journaled.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::state::AppState;
use crate::workers::outbound_webhooks::ROTATION_GRACE_MS;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_store::webhooks_out::{self, Attempt, NewSubscription, Subscription, SubscriptionChange, EVENT_TYPES};
use openline_store::StoreError;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::{IntoParams, ToSchema};

/// Secrets start with this, so they are recognisable in secret scanners.
pub const SECRET_PREFIX: &str = "whsec_";
const MAX_URL_LEN: usize = 2048;
const MAX_DESCRIPTION_LEN: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// Where events are `POST`ed: `https://…` (or `http://…`). Private and loopback addresses are
    /// refused unless the server allows them (`OPENLINE_WEBHOOKS_ALLOW_PRIVATE`).
    pub url: String,
    /// `message.received`, `message.sent`, `message.status`, `consent.changed`,
    /// `participant.changed`, `contact.number_changed`, or `*` for all.
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Also deliver the events of every organization below yours.
    #[serde(default)]
    pub include_sub_organizations: bool,
    /// Deliver the events already in the archive too (a backfill), not only new ones.
    #[serde(default)]
    pub deliver_existing_events: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// `false` stops deliveries (events wait in the archive and are delivered once enabled again).
    pub enabled: Option<bool>,
}

/// A subscription with its signing secret: returned once, at creation and at rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionWithSecret {
    pub subscription: Subscription,
    /// `whsec_…`: verify `Openline-Signature` with it. Shown only now; rotate it if it is lost.
    pub secret: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AttemptsQuery {
    /// At most this many attempts, newest first (default 50, at most 200).
    pub limit: Option<i64>,
}

fn admin_only(me: &CurrentUser) -> Result<(), AppError> {
    if me.user.role.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("Only admins manage webhook subscriptions."))
    }
}

/// Checks the event types: known ones or `*`, at least one; returns them without duplicates.
pub fn validate_events(events: &[String]) -> Result<Vec<String>, AppError> {
    if events.is_empty() {
        return Err(AppError::bad_request(
            "webhook_events_empty",
            format!(
                "Name at least one event type: {}, or * for all.",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let e = e.trim();
        if e != "*" && !EVENT_TYPES.contains(&e) {
            return Err(AppError::bad_request(
                "webhook_event_unknown",
                format!(
                    "{e:?} is not an event type. Use {}, or * for all.",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    Ok(out)
}

/// Checks a subscription URL: http(s), a host, no credentials, and (unless `allow_private`) not an
/// address on a private network, whether written as an IP or resolving to one now. Deliveries check
/// the address again each time (the name may change).
pub async fn validate_url(raw: &str, allow_private: bool) -> Result<String, AppError> {
    let invalid = |why: &str| AppError::bad_request("webhook_url_invalid", format!("The URL is not usable: {why}."));
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(invalid("it is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid("use an https:// (or http://) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it holds credentials; put a token in the path or query, or verify our signature instead",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("it has a #fragment, which is never sent"));
    }
    let private = |what: String| {
        AppError::bad_request(
            "webhook_url_private",
            format!(
                "{what} is a private, loopback or link-local address; openline does not deliver to its own network \
                 unless the server sets OPENLINE_WEBHOOKS_ALLOW_PRIVATE=1."
            ),
        )
    };
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        None => return Err(invalid("it has no host")),
        Some(url::Host::Ipv4(a)) => {
            if !allow_private && crate::workers::outbound_webhooks::is_private_address(IpAddr::V4(a)) {
                return Err(private(a.to_string()));
            }
        }
        Some(url::Host::Ipv6(a)) => {
            if !allow_private && crate::workers::outbound_webhooks::is_private_address(IpAddr::V6(a)) {
                return Err(private(a.to_string()));
            }
        }
        Some(url::Host::Domain(d)) => {
            if !allow_private {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    return Err(private(d));
                }
                let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((d.as_str(), port)).await {
                    Ok(a) => a.collect(),
                    Err(_) => {
                        return Err(AppError::bad_request(
                            "webhook_url_unresolvable",
                            format!("{d} does not resolve to an address; check the host name."),
                        ))
                    }
                };
                if let Some(a) = addrs
                    .iter()
                    .map(|a| a.ip())
                    .find(|ip| crate::workers::outbound_webhooks::is_private_address(*ip))
                {
                    return Err(private(format!("{d} resolves to {a}, which")));
                }
            }
        }
    }
    Ok(url.to_string())
}

fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", crate::auth::random_secret())
}

fn not_found(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::not_found("webhook subscription"),
        other => other.into(),
    }
}

/// `POST /api/v1/webhook-subscriptions` (admins): subscribes a URL to event types of your
/// organization (and, if asked, its sub-organizations). From now on (or from the start of the
/// archive with `deliver_existing_events`), every matching event is delivered, signed, in order.
/// The answer carries the signing secret, shown only this once.
#[utoipa::path(post, path = "/api/v1/webhook-subscriptions", tag = "webhook subscriptions",
    request_body = CreateSubscription,
    responses((status = 201, body = SubscriptionWithSecret),
        (status = 400, description = "webhook_url_invalid, webhook_url_private, webhook_url_unresolvable, webhook_event_unknown, webhook_events_empty, webhook_description_too_long", body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create_subscription(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CreateSubscription>,
) -> Result<(StatusCode, Json<SubscriptionWithSecret>), AppError> {
    Ok((StatusCode::CREATED, Json(subscribe(&st, &me, req).await?)))
}

/// Creates a subscription for an admin (the API's and the web page's one way): validates it, seals
/// its new secret under the server's secrets key, journals it, and returns the secret this once.
pub async fn subscribe(
    st: &AppState,
    me: &CurrentUser,
    req: CreateSubscription,
) -> Result<SubscriptionWithSecret, AppError> {
    admin_only(me)?;
    let events = validate_events(&req.events)?;
    let url = validate_url(&req.url, st.config.webhooks.allow_private).await?;
    if req.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(AppError::bad_request(
            "webhook_description_too_long",
            "Keep the description under 500 characters.",
        ));
    }
    let secret = new_secret();
    let (org, actor, now, s, key) = (
        me.user.org_id.clone(),
        super::archive::actor(me),
        st.now(),
        secret.clone(),
        st.webhook_secrets_key.clone(),
    );
    let subscription = st
        .store
        .write(move |c| {
            webhooks_out::create(
                c,
                &NewSubscription {
                    org_id: &org,
                    url: &url,
                    description: req.description.trim(),
                    events: &events,
                    include_sub_organizations: req.include_sub_organizations,
                    secret: &s,
                    key: &key,
                    from_beginning: req.deliver_existing_events,
                    actor: &actor,
                    now,
                },
            )
        })
        .await?;
    tracing::info!(user_id = %me.user.id, subscription_id = %subscription.id, "webhook subscription created");
    Ok(SubscriptionWithSecret { subscription, secret })
}

/// `GET /api/v1/webhook-subscriptions` (admins): the subscriptions of the organizations you see,
/// with their state (active, disabled, parked) and the event being retried, if any.
#[utoipa::path(get, path = "/api/v1/webhook-subscriptions", tag = "webhook subscriptions",
    responses((status = 200, body = Vec<Subscription>), (status = 403, body = ErrorBody)))]
pub async fn list_subscriptions(
    State(st): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<Subscription>>, AppError> {
    admin_only(&me)?;
    let scope = me.scope.clone();
    Ok(Json(st.store.read(move |c| webhooks_out::list(c, &scope)).await?))
}

/// `GET /api/v1/webhook-subscriptions/{id}` (admins).
#[utoipa::path(get, path = "/api/v1/webhook-subscriptions/{id}", tag = "webhook subscriptions",
    params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn get_subscription(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, AppError> {
    admin_only(&me)?;
    let scope = me.scope.clone();
    Ok(Json(
        st.store
            .read(move |c| webhooks_out::get(c, &scope, &id))
            .await
            .map_err(not_found)?,
    ))
}

/// `PATCH /api/v1/webhook-subscriptions/{id}` (admins): changes the URL, event types or
/// description, or disables (`"enabled": false`) and re-enables it. Journaled.
#[utoipa::path(patch, path = "/api/v1/webhook-subscriptions/{id}", tag = "webhook subscriptions",
    params(("id" = String, Path)), request_body = UpdateSubscription,
    responses((status = 200, body = Subscription), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_subscription(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateSubscription>,
) -> Result<Json<Subscription>, AppError> {
    Ok(Json(change_subscription(&st, &me, id, req).await?))
}

/// Changes a subscription for an admin (the API's and the web page's one way). Journaled.
pub async fn change_subscription(
    st: &AppState,
    me: &CurrentUser,
    id: String,
    req: UpdateSubscription,
) -> Result<Subscription, AppError> {
    admin_only(me)?;
    let events = req.events.as_deref().map(validate_events).transpose()?;
    let url = match &req.url {
        Some(u) => Some(validate_url(u, st.config.webhooks.allow_private).await?),
        None => None,
    };
    if req
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
    {
        return Err(AppError::bad_request(
            "webhook_description_too_long",
            "Keep the description under 500 characters.",
        ));
    }
    let change = SubscriptionChange {
        url,
        description: req.description.map(|d| d.trim().to_owned()),
        events,
        disabled: req.enabled.map(|e| !e),
    };
    let (scope, actor, now) = (me.scope.clone(), super::archive::actor(me), st.now());
    let s = st
        .store
        .write(move |c| webhooks_out::update(c, &scope, &id, &change, &actor, now))
        .await
        .map_err(not_found)?;
    tracing::info!(user_id = %me.user.id, subscription_id = %s.id, "webhook subscription changed");
    Ok(s)
}

/// `DELETE /api/v1/webhook-subscriptions/{id}` (admins): stops and removes it with its attempt
/// records. Journaled.
#[utoipa::path(delete, path = "/api/v1/webhook-subscriptions/{id}", tag = "webhook subscriptions",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_subscription(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    admin_only(&me)?;
    let (scope, actor, now) = (me.scope.clone(), super::archive::actor(&me), st.now());
    let sid = id.clone();
    st.store
        .write(move |c| webhooks_out::delete(c, &scope, &sid, &actor, now))
        .await
        .map_err(not_found)?;
    tracing::info!(user_id = %me.user.id, subscription_id = %id, "webhook subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhook-subscriptions/{id}/rotate-secret` (admins): a new signing secret, shown
/// once. For 24 hours deliveries carry signatures with both the new and the previous secret, so the
/// receiver can switch without rejecting anything.
#[utoipa::path(post, path = "/api/v1/webhook-subscriptions/{id}/rotate-secret", tag = "webhook subscriptions",
    params(("id" = String, Path)),
    responses((status = 200, body = SubscriptionWithSecret), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionWithSecret>, AppError> {
    admin_only(&me)?;
    let secret = new_secret();
    let (scope, actor, now, s) = (me.scope.clone(), super::archive::actor(&me), st.now(), secret.clone());
    let key = st.webhook_secrets_key.clone();
    let subscription = st
        .store
        .write(move |c| webhooks_out::rotate_secret(c, &scope, &id, &s, &key, now + ROTATION_GRACE_MS, &actor, now))
        .await
        .map_err(not_found)?;
    tracing::info!(user_id = %me.user.id, subscription_id = %subscription.id, "webhook secret rotated");
    Ok(Json(SubscriptionWithSecret { subscription, secret }))
}

/// `POST /api/v1/webhook-subscriptions/{id}/resume` (admins): a parked subscription (its head event
/// failed for the whole retry period) is active again and that event is delivered again now, with a
/// fresh retry period. Also retries a failing head right away. Journaled.
#[utoipa::path(post, path = "/api/v1/webhook-subscriptions/{id}/resume", tag = "webhook subscriptions",
    params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = ErrorBody)))]
pub async fn resume_subscription(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, AppError> {
    admin_only(&me)?;
    let (scope, actor, now) = (me.scope.clone(), super::archive::actor(&me), st.now());
    let s = st
        .store
        .write(move |c| webhooks_out::resume(c, &scope, &id, &actor, now))
        .await
        .map_err(not_found)?;
    tracing::info!(user_id = %me.user.id, subscription_id = %s.id, "webhook subscription resumed");
    Ok(Json(s))
}

/// `GET /api/v1/webhook-subscriptions/{id}/deliveries` (admins): the latest delivery attempts,
/// newest first: when, which event, the HTTP status or error, how long it took, and the outcome.
#[utoipa::path(get, path = "/api/v1/webhook-subscriptions/{id}/deliveries", tag = "webhook subscriptions",
    params(("id" = String, Path), AttemptsQuery),
    responses((status = 200, body = Vec<Attempt>), (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<Vec<Attempt>>, AppError> {
    admin_only(&me)?;
    let scope = me.scope.clone();
    let limit = super::page_limit(q.limit);
    Ok(Json(
        st.store
            .read(move |c| webhooks_out::attempts(c, &scope, &id, limit))
            .await
            .map_err(not_found)?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn urls_are_checked_for_scheme_credentials_and_private_addresses() {
        let code = |r: Result<String, AppError>| r.err().map(|e| e.code);
        assert_eq!(
            code(validate_url("ftp://example.com/x", false).await),
            Some("webhook_url_invalid")
        );
        assert_eq!(
            code(validate_url("not a url", false).await),
            Some("webhook_url_invalid")
        );
        assert_eq!(
            code(validate_url("https://user:pw@example.com/x", false).await),
            Some("webhook_url_invalid")
        );
        for private in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/hook",
        ] {
            assert_eq!(
                code(validate_url(private, false).await),
                Some("webhook_url_private"),
                "{private}"
            );
        }
        assert_eq!(
            validate_url("http://127.0.0.1:9000/hook", true).await.unwrap(),
            "http://127.0.0.1:9000/hook"
        );
        assert_eq!(
            validate_url("https://203.0.114.1/archive", false).await.unwrap(),
            "https://203.0.114.1/archive"
        );
    }

    #[test]
    fn event_types_are_known_or_star_and_deduplicated() {
        let ev = |v: &[&str]| validate_events(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            ev(&["consent.changed", "consent.changed"]).unwrap(),
            vec!["consent.changed"]
        );
        assert_eq!(ev(&["*"]).unwrap(), vec!["*"]);
        assert_eq!(ev(&["message.deleted"]).unwrap_err().code, "webhook_event_unknown");
        assert_eq!(ev(&[]).unwrap_err().code, "webhook_events_empty");
    }
}
