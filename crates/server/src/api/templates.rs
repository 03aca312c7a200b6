//! Message templates: admins submit them to the provider for approval; everyone sees them with their
//! status (pending, approved, rejected with the reason, paused, disabled) and can preview one with
//! parameters, as the composer does. Status changes arrive by webhook.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_channels::cloud_api::template_request_body;
use openline_domain::templates::{
    render, validate_template, Template, TemplateCategory, TemplateComponent, TemplateParams, TemplateStatus,
};
use openline_domain::Channel;
use openline_store::templates::{self, TemplateRecord};
use openline_store::{senders, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    /// The sender (business number) whose WhatsApp Business Account owns it; default: your
    /// organization's WhatsApp number.
    pub sender_id: Option<String>,
    /// Lowercase letters, digits and underscores.
    pub name: String,
    /// e.g. `en`, `en_US`, `de`.
    pub language: String,
    pub category: TemplateCategory,
    pub components: Vec<TemplateComponent>,
    /// For a number on Twilio: the Twilio Content template (`HX…`) this template is, approved at
    /// Twilio. openline does not submit it anywhere; it records the content SID and sends the
    /// template as `ContentSid` with the parameters as `ContentVariables`. Refused for Cloud API
    /// numbers, whose templates are submitted to Meta.
    #[serde(default)]
    pub content_sid: Option<String>,
}

fn not_found(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::not_found("template"),
        other => other.into(),
    }
}

/// `POST /api/v1/templates` (admins): validates the template, submits it to the provider for
/// approval and stores it as `pending` with the provider's id.
#[utoipa::path(post, path = "/api/v1/templates", tag = "templates", request_body = CreateTemplateRequest,
    responses((status = 201, body = TemplateRecord), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn create_template(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CreateTemplateRequest>,
) -> Result<(StatusCode, Json<TemplateRecord>), AppError> {
    if !me.user.role.is_admin() {
        return Err(AppError::forbidden("Only admins can submit templates."));
    }
    let template = Template {
        name: req.name,
        language: req.language,
        category: req.category,
        components: req.components,
        status: TemplateStatus::Pending,
    };
    validate_template(&template)?;
    let content_sid = req.content_sid.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (scope, org_id, sender_id) = (me.scope.clone(), me.user.org_id.clone(), req.sender_id);
    let (name, language) = (template.name.clone(), template.language.clone());
    let sender = st
        .store
        .read(move |c| {
            let sender = match sender_id {
                Some(id) => senders::list(c, &scope)?.into_iter().find(|s| s.id == id),
                // The organization's own (or inherited) number, else the first one it oversees.
                None => match senders::for_org(c, &org_id, Channel::Whatsapp)? {
                    Some(s) => Some(s),
                    None => senders::list(c, &scope)?
                        .into_iter()
                        .find(|s| s.channel == Channel::Whatsapp),
                },
            };
            let Some(sender) = sender else { return Ok(None) };
            let existing = templates::find(c, &sender.id, &name, &language)?;
            Ok(Some((sender, existing.is_some())))
        })
        .await?;
    let Some((sender, exists)) = sender else {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_sender",
            "No such WhatsApp number in your organization.",
        ));
    };
    if exists {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "template_exists",
            "This number already has a template with this name and language.",
        ));
    }
    if sender.provider == openline_domain::ProviderKind::Twilio {
        return register_twilio_template(&st, &me, sender, template, content_sid).await;
    }
    if content_sid.is_some() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "content_sid_not_applicable",
            "content_sid is for numbers on Twilio; this number's templates are submitted to Meta.",
        ));
    }
    let Some(waba_id) = sender.waba_id.clone() else {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_business_account",
            "This number has no WhatsApp Business Account id; an admin must set it before submitting templates.",
        ));
    };
    // The provider call happens outside any transaction; only its answer is stored.
    let submitted = st
        .cloud
        .submit_template(&waba_id, &template_request_body(&template))
        .await
        .map_err(|e| {
            AppError::new(
                StatusCode::BAD_GATEWAY,
                "template_refused_by_provider",
                format!("The provider refused the template: {}", e.message),
            )
        })?;
    let mut template = template;
    if submitted.status.eq_ignore_ascii_case("APPROVED") {
        template.status = TemplateStatus::Approved;
    }
    let (now, actor) = (st.now(), super::archive::actor(&me));
    let record = st
        .store
        .write(move |c| {
            templates::create_by(
                c,
                &sender.org_id,
                &sender.id,
                &template,
                Some(&submitted.id),
                &actor,
                now,
            )
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::new(StatusCode::CONFLICT, "template_exists", "This template already exists.")
            }
            other => other.into(),
        })?;
    tracing::info!(template_id = %record.id, "template submitted for approval");
    Ok((StatusCode::CREATED, Json(record)))
}

/// A template of a number on Twilio: its Twilio Content template, recorded with its content SID as
/// the provider id and the status of WhatsApp's review that Twilio's Content API reports (nothing
/// is submitted).
async fn register_twilio_template(
    st: &AppState,
    me: &CurrentUser,
    sender: senders::Sender,
    template: Template,
    content_sid: Option<String>,
) -> Result<(StatusCode, Json<TemplateRecord>), AppError> {
    let Some(content_sid) = content_sid.filter(|s| crate::twilio_send::is_content_sid(s)) else {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "content_sid_required",
            "This number is on Twilio: give the template's Twilio content SID (content_sid, HX followed by 32 hex digits) from Twilio's Content Template Builder.",
        ));
    };
    // Registered with WhatsApp's review as Twilio reports it: only an approved one can be sent.
    let template = Template {
        status: crate::twilio_send::content_status(st, &content_sid).await?,
        ..template
    };
    let (now, actor) = (st.now(), super::archive::actor(me));
    let record = st
        .store
        .write(move |c| {
            templates::create_by(
                c,
                &sender.org_id,
                &sender.id,
                &template,
                Some(&content_sid),
                &actor,
                now,
            )
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::new(StatusCode::CONFLICT, "template_exists", "This template already exists.")
            }
            other => other.into(),
        })?;
    tracing::info!(template_id = %record.id, "twilio content template registered");
    Ok((StatusCode::CREATED, Json(record)))
}

/// The senders whose templates the caller may use: their organizations' own and the nearest
/// ancestor's WhatsApp number.
fn usable_sender_ids(c: &mut dyn openline_store::Conn, me: &CurrentUser) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = senders::list(c, &me.scope)?.into_iter().map(|s| s.id).collect();
    if let Some(s) = senders::for_org(c, &me.user.org_id, Channel::Whatsapp)? {
        if !ids.contains(&s.id) {
            ids.push(s.id);
        }
    }
    Ok(ids)
}

/// `GET /api/v1/templates`: the templates you can use, with their approval status.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", responses((status = 200, body = Vec<TemplateRecord>)))]
pub async fn list_templates(
    State(st): State<AppState>,
    me: CurrentUser,
) -> Result<Json<Vec<TemplateRecord>>, AppError> {
    Ok(Json(
        st.store
            .read(move |c| {
                let ids = usable_sender_ids(c, &me)?;
                templates::list_for_senders(c, &ids)
            })
            .await?,
    ))
}

/// `GET /api/v1/templates/{id}`
#[utoipa::path(get, path = "/api/v1/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateRecord), (status = 404, body = ErrorBody)))]
pub async fn get_template(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<TemplateRecord>, AppError> {
    st.store
        .read(move |c| {
            let t = templates::get_any(c, &id)?;
            if usable_sender_ids(c, &me)?.contains(&t.sender_id) {
                Ok(t)
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
        .map(Json)
        .map_err(not_found)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PreviewRequest {
    /// `["Ada", "Thursday"]` for `{{1}}`-style bodies, or `{"name": "Ada"}` for named ones.
    #[serde(default)]
    pub parameters: TemplateParams,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// The body as the contact will read it.
    pub text: String,
}

/// `POST /api/v1/templates/{id}/preview`: renders the body with parameters, checking them as the
/// provider would (count, empty values, length, newlines), so a send cannot fail on them later.
#[utoipa::path(post, path = "/api/v1/templates/{id}/preview", tag = "templates", params(("id" = String, Path)),
    request_body = PreviewRequest,
    responses((status = 200, body = Preview), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview_template(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> Result<Json<Preview>, AppError> {
    let Json(t) = get_template(State(st), me, Path(id)).await?;
    Ok(Json(Preview {
        text: render(&t.template, &req.parameters)?,
    }))
}
