//! The fake Twilio: the Messages API with basic auth and Twilio's error codes, signed status
//! callbacks, phones texting the business's SMS numbers, and openline's own Twilio adapter
//! (`openline_channels::twilio`) talking to it.

use crate::support::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use openline_channels::twilio::{
    classify, parse_form, verify_twilio_signature, TwilioClient, TwilioConfig, TwilioEvent, TwilioMessage,
};
use openline_domain::provider_errors::Retry;
use openline_domain::{Channel, DeliveryStatus};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "sim-twilio-auth-token";
const SMS_NUMBER: &str = "+15550002000";
const WA_FROM: &str = "whatsapp:+15550001000";

/// One form-encoded webhook as openline would receive it.
#[derive(Debug, Clone)]
struct FormHook {
    /// The full URL requested: what the signature covers.
    url: String,
    content_type: String,
    signature: Option<String>,
    params: Vec<(String, String)>,
}

impl FormHook {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn verifies(&self) -> bool {
        verify_twilio_signature(AUTH_TOKEN, &self.url, &self.params, self.signature.as_deref()).is_ok()
    }
}

/// Records every POST on any path; refuses the first `refuse_first` with 500.
struct FormReceiver {
    base: String,
    rx: Mutex<mpsc::UnboundedReceiver<FormHook>>,
}

impl FormReceiver {
    async fn next(&self) -> FormHook {
        tokio::time::timeout(Duration::from_secs(5), self.rx.lock().await.recv())
            .await
            .expect("no Twilio webhook arrived within 5s")
            .expect("receiver closed")
    }
    async fn assert_quiet_for(&self, ms: u64) {
        let got = tokio::time::timeout(Duration::from_millis(ms), self.rx.lock().await.recv()).await;
        if let Ok(Some(h)) = got {
            panic!("unexpected Twilio webhook: {h:?}");
        }
    }
}

async fn start_form_receiver(refuse_first: u32) -> FormReceiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counter = Arc::new(AtomicU32::new(0));
    let recv_base = base.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, raw: Bytes| {
        let tx = tx.clone();
        let counter = Arc::clone(&counter);
        let base = recv_base.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) < refuse_first {
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let _ = tx.send(FormHook {
                url: format!("{base}{path}"),
                content_type: header("content-type").unwrap_or_default(),
                signature: header("x-twilio-signature"),
                params: parse_form(&raw).expect("a form body"),
            });
            StatusCode::OK
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    FormReceiver {
        base,
        rx: Mutex::new(rx),
    }
}

/// A simulator whose Twilio webhooks go to a fresh form receiver.
async fn start_twilio(refuse_first: u32) -> (TestSim, FormReceiver) {
    let forms = start_form_receiver(refuse_first).await;
    let url = format!("{}/webhooks/twilio", forms.base);
    let t = start_with(0, move |c| c.twilio_webhook_url = url).await;
    (t, forms)
}

fn messages_url(t: &TestSim, account: &str) -> String {
    format!("{}/twilio/2010-04-01/Accounts/{account}/Messages.json", t.base)
}

/// POSTs form parameters to the Messages API with the given credentials.
async fn create(t: &TestSim, auth: Option<(&str, &str)>, params: &[(&str, &str)]) -> (u16, Value) {
    let mut req = t.http.post(messages_url(t, ACCOUNT)).form(params);
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, Some(password));
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn conversation(t: &TestSim, phone: &str) -> Vec<Value> {
    t.http
        .get(format!("{}/phones/{phone}/messages", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The status callback for `sid`, checked to be signed and readable by openline's adapter.
async fn next_status(forms: &FormReceiver, sid: &str) -> (String, Option<i64>, FormHook) {
    let hook = forms.next().await;
    assert!(hook.verifies(), "{hook:?}");
    assert_eq!(hook.content_type, "application/x-www-form-urlencoded");
    let Ok(TwilioEvent::Status(status)) = classify(&hook.params) else {
        panic!("not a status callback: {hook:?}");
    };
    assert_eq!(status.message_sid, sid);
    assert_eq!(status.account_sid, ACCOUNT);
    (status.status_text.clone(), status.error_code, hook)
}

#[tokio::test]
async fn an_sms_is_answered_201_in_twilios_shape_and_its_status_callbacks_arrive_signed() {
    let (t, forms) = start_twilio(0).await;
    // A query string is part of what Twilio signs.
    let callback = format!("{}/webhooks/twilio/status?tenant=demo", forms.base);
    let (status, v) = create(
        &t,
        Some((ACCOUNT, AUTH_TOKEN)),
        &[
            ("To", NORA),
            ("From", SMS_NUMBER),
            ("Body", "Your card is ready"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let sid = v["sid"].as_str().unwrap().to_owned();
    assert!(
        sid.len() == 34 && sid.starts_with("SM") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{sid}"
    );
    assert_eq!(v["account_sid"], ACCOUNT);
    assert_eq!(v["to"], NORA);
    assert_eq!(v["from"], SMS_NUMBER);
    assert_eq!(v["body"], "Your card is ready");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["direction"], "outbound-api");
    assert_eq!(v["num_segments"], "1");
    assert_eq!(v["num_media"], "0");
    assert_eq!(v["api_version"], "2010-04-01");
    assert_eq!(v["date_created"], "Sun, 15 Jun 2025 15:06:40 +0000");
    assert_eq!(v["uri"], format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"));
    // Every field is one of the Message resource's in Twilio's own spec, the status one of its.
    let spec_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/twilio/twilio_api_v2010.json");
    let spec: Value = serde_json::from_slice(
        &std::fs::read(&spec_path).expect("shared/fixtures/twilio must sit beside the checkout"),
    )
    .unwrap();
    let schemas = &spec["components"]["schemas"];
    let props = schemas["api.v2010.account.message"]["properties"].as_object().unwrap();
    for key in v.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "{key} is not in Twilio's Message resource");
    }
    let statuses = schemas["message_enum_status"]["enum"].as_array().unwrap();
    assert!(statuses.contains(&v["status"]));
    assert!(schemas["message_enum_direction"]["enum"]
        .as_array()
        .unwrap()
        .contains(&v["direction"]));

    // Nora is not on WhatsApp, but SMS reaches her: sent, then delivered, and nothing reads SMS.
    let (first, code, hook) = next_status(&forms, &sid).await;
    assert_eq!((first.as_str(), code), ("sent", None));
    assert_eq!(hook.url, callback);
    assert_eq!(hook.param("To"), Some(NORA));
    assert_eq!(hook.param("From"), Some(SMS_NUMBER));
    assert_eq!(hook.param("SmsStatus"), Some("sent"));
    assert_eq!(hook.param("ApiVersion"), Some("2010-04-01"));
    // A signature over another URL, or with another token, does not verify.
    assert!(verify_twilio_signature(
        AUTH_TOKEN,
        &format!("{}/other", forms.base),
        &hook.params,
        hook.signature.as_deref()
    )
    .is_err());
    assert!(verify_twilio_signature("other-token", &hook.url, &hook.params, hook.signature.as_deref()).is_err());
    let (second, _, _) = next_status(&forms, &sid).await;
    assert_eq!(second, "delivered");
    forms.assert_quiet_for(300).await;

    let entries = conversation(&t, NORA).await;
    let last = entries.last().unwrap();
    assert_eq!(last["id"], sid.as_str());
    assert_eq!(last["channel"], "sms");
    assert_eq!(last["direction"], "from_business");
    assert_eq!(last["business_number"], "15550002000");
    assert_eq!(last["status"], "delivered");
    assert_eq!(last["text"], "Your card is ready");
}

#[tokio::test]
async fn twilio_refuses_bad_credentials_and_bad_requests_with_its_error_codes() {
    let (t, _forms) = start_twilio(0).await;
    let good = [("To", ADA), ("From", SMS_NUMBER), ("Body", "hi")];
    let authenticate = json!({
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    });
    for auth in [
        None,
        Some((ACCOUNT, "wrong-token")),
        Some(("AC99999999999999999999999999999999", AUTH_TOKEN)),
    ] {
        let (status, v) = create(&t, auth, &good).await;
        assert_eq!((status, &v), (401, &authenticate), "{auth:?}");
    }
    // The right credentials open only their own account.
    let r = t
        .http
        .post(messages_url(&t, "AC99999999999999999999999999999999"))
        .basic_auth(ACCOUNT, Some(AUTH_TOKEN))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let auth = Some((ACCOUNT, AUTH_TOKEN));
    let cases: [(&[(&str, &str)], u64); 7] = [
        (&[("From", SMS_NUMBER), ("Body", "hi")], 21604),
        (&[("To", "07700 900001"), ("From", SMS_NUMBER), ("Body", "hi")], 21211),
        (&[("To", "whatsapp:+44abc"), ("From", WA_FROM), ("Body", "hi")], 21211),
        (&[("To", ADA), ("From", "+15550009999"), ("Body", "hi")], 21606),
        (
            &[
                ("To", "whatsapp:+447700900001"),
                ("From", "whatsapp:+15550009999"),
                ("Body", "hi"),
            ],
            21606,
        ),
        (&[("To", ADA), ("From", SMS_NUMBER)], 21602),
        (&[("To", ADA), ("From", SMS_NUMBER), ("Body", "")], 21602),
    ];
    for (params, code) in cases {
        let (status, v) = create(&t, auth, params).await;
        assert_eq!((status, v["code"].as_u64()), (400, Some(code)), "{params:?}: {v}");
        assert_eq!(v["status"], 400);
        assert_eq!(v["more_info"], format!("https://www.twilio.com/docs/errors/{code}"));
    }
    let (_, v) = create(&t, auth, &[("To", ADA), ("From", "+15550009999"), ("Body", "hi")]).await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("is not a valid, SMS-capable inbound phone number"),
        "{v}"
    );
    // Nothing refused reached a phone.
    assert!(conversation(&t, ADA).await.is_empty());
}

#[tokio::test]
async fn whatsapp_through_twilio_is_read_by_users_and_fails_63003_for_a_phone_not_on_whatsapp() {
    let (t, forms) = start_twilio(0).await;
    let auth = Some((ACCOUNT, AUTH_TOKEN));
    let callback = format!("{}/status", forms.base);
    let (status, v) = create(
        &t,
        auth,
        &[
            ("To", "whatsapp:+447700900001"),
            ("From", WA_FROM),
            ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
            ("ContentVariables", r#"{"1":"Openline Demo Bank"}"#),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let sid = v["sid"].as_str().unwrap().to_owned();
    for expected in ["sent", "delivered", "read"] {
        let (got, _, hook) = next_status(&forms, &sid).await;
        assert_eq!(got, expected);
        assert_eq!(hook.param("To"), Some("whatsapp:+447700900001"));
        assert_eq!(hook.param("From"), Some(WA_FROM));
    }
    let entry = conversation(&t, ADA).await.pop().unwrap();
    assert_eq!(
        (entry["channel"].as_str(), entry["type"].as_str()),
        (Some("whatsapp"), Some("template"))
    );
    assert_eq!(entry["template"]["parameters"], json!(["Openline Demo Bank"]));

    let (status, v) = create(
        &t,
        auth,
        &[
            ("To", "whatsapp:+447700900004"),
            ("From", WA_FROM),
            ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
            ("ContentVariables", r#"{"1":"Openline Demo Bank"}"#),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let sid = v["sid"].as_str().unwrap().to_owned();
    let hook = forms.next().await;
    assert!(hook.verifies());
    let Ok(TwilioEvent::Status(failed)) = classify(&hook.params) else {
        panic!("{hook:?}")
    };
    assert_eq!(failed.message_sid, sid);
    assert_eq!(failed.status, Some(DeliveryStatus::Failed));
    assert_eq!(failed.error_code, Some(63003));
    forms.assert_quiet_for(200).await;
    let entry = conversation(&t, NORA).await.pop().unwrap();
    assert_eq!(
        (entry["status"].as_str(), entry["error_code"].as_i64()),
        (Some("failed"), Some(63003))
    );

    // Meta's 24-hour rule holds through Twilio: free-form text to a phone that never wrote fails.
    let (status, v) = create(
        &t,
        auth,
        &[
            ("To", "whatsapp:+447700900099"),
            ("From", WA_FROM),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (got, code, _) = next_status(&forms, v["sid"].as_str().unwrap()).await;
    assert_eq!((got.as_str(), code), ("failed", Some(63016)));
}

#[tokio::test]
async fn a_phone_texting_an_sms_number_reaches_openline_signed_as_an_inbound_sms() {
    let (t, forms) = start_twilio(0).await;
    // Nora is not on WhatsApp, yet she can text.
    let r = t
        .http
        .post(format!("{}/phones/+447700900004/sms", t.base))
        .json(&json!({"to": SMS_NUMBER, "text": "Is the branch open on Saturday? 😀"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["webhook_status"], 200);
    let sid = answer["id"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");

    let hook = forms.next().await;
    assert_eq!(hook.url, format!("{}/webhooks/twilio", forms.base));
    assert_eq!(hook.content_type, "application/x-www-form-urlencoded");
    assert!(hook.verifies(), "{hook:?}");
    for (name, value) in [
        ("MessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("SmsMessageSid", sid.as_str()),
        ("AccountSid", ACCOUNT),
        ("From", NORA),
        ("To", SMS_NUMBER),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
    ] {
        assert_eq!(hook.param(name), Some(value), "{name}");
    }
    let Ok(TwilioEvent::Inbound(inbound)) = classify(&hook.params) else {
        panic!("not an inbound message: {hook:?}")
    };
    assert_eq!(inbound.message_sid, sid);
    assert_eq!(inbound.channel, Channel::Sms);
    assert_eq!(inbound.phone.as_ref().map(|p| p.as_e164()), Some(NORA));
    assert_eq!(inbound.body.as_deref(), Some("Is the branch open on Saturday? 😀"));
    assert_eq!(inbound.to, SMS_NUMBER);

    // The conversation shows both channels apart.
    t.phone_writes(ADA, "hello on WhatsApp").await;
    let entries = conversation(&t, ADA).await;
    assert_eq!(entries.last().unwrap()["channel"], "whatsapp");
    let entries = conversation(&t, NORA).await;
    let last = entries.last().unwrap();
    assert_eq!(
        (
            last["channel"].as_str(),
            last["direction"].as_str(),
            last["id"].as_str()
        ),
        (Some("sms"), Some("from_phone"), Some(sid.as_str()))
    );

    // Unknown SMS numbers and empty texts are refused.
    for (body, status, code) in [
        (
            json!({"to": "+15550009999", "text": "hi"}),
            404,
            "unknown_business_number",
        ),
        (
            json!({"to": "15550001000", "text": "hi"}),
            404,
            "unknown_business_number",
        ),
        (json!({"to": SMS_NUMBER, "text": " "}), 400, "invalid_text"),
    ] {
        let r = t
            .http
            .post(format!("{}/phones/+447700900004/sms", t.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code);
    }
}

#[tokio::test]
async fn an_inbound_sms_refused_by_openline_is_retried_with_the_same_signature() {
    let (t, forms) = start_twilio(1).await;
    let r = t
        .http
        .post(format!("{}/phones/447700900001/sms", t.base))
        .json(&json!({"to": "15550002000", "text": "retry me"}))
        .send()
        .await
        .unwrap();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["webhook_status"], 500);
    let hook = forms.next().await;
    assert!(hook.verifies());
    assert_eq!(hook.param("MessageSid"), answer["id"].as_str());
}

#[tokio::test]
async fn openlines_twilio_client_and_the_simulator_agree() {
    let (t, forms) = start_twilio(0).await;
    let config = |token: &str| TwilioConfig {
        base_url: format!("{}/twilio", t.base),
        account_sid: ACCOUNT.into(),
        auth_token: token.into(),
        timeout: Duration::from_secs(5),
    };
    let client = TwilioClient::new(config(AUTH_TOKEN)).unwrap();
    let sms = TwilioMessage {
        from: SMS_NUMBER.into(),
        messaging_service_sid: None,
        to: DAN.into(),
        body: Some("Your statement is ready".into()),
        media_urls: vec![],
        content_sid: None,
        content_variables: None,
        status_callback: Some(format!("{}/webhooks/twilio/status", forms.base)),
    };
    let accepted = client.send(&sms).await.unwrap();
    assert!(accepted.provider_message_id.starts_with("SM"));
    let (status, _, _) = next_status(&forms, &accepted.provider_message_id).await;
    assert_eq!(status, "sent");

    let whatsapp = TwilioMessage {
        from: WA_FROM.into(),
        to: format!("whatsapp:{DAN}"),
        body: None,
        content_sid: Some("HX0123456789abcdef0123456789abcdef".into()),
        content_variables: Some(json!({"1": "Dan"})),
        status_callback: None,
        ..sms.clone()
    };
    let accepted = client.send(&whatsapp).await.unwrap();
    let entry = conversation(&t, DAN).await.pop().unwrap();
    assert_eq!(entry["id"], accepted.provider_message_id.as_str());
    assert_eq!(entry["channel"], "whatsapp");
    assert_eq!(entry["template"]["parameters"], json!(["Dan"]));

    // Refusals come back as the adapter's permanent errors with Twilio's code.
    let refused = client
        .send(&TwilioMessage {
            from: "+15550009999".into(),
            ..sms.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code, refused.http_status, refused.retry),
        (Some(21606), Some(400), Retry::Permanent)
    );
    let refused = TwilioClient::new(config("wrong-token"))
        .unwrap()
        .send(&sms)
        .await
        .unwrap_err();
    assert_eq!((refused.code, refused.http_status), (Some(20003), Some(401)));
}

/// An approved template sent as openline's Twilio adapter sends it (a Content SID and positional
/// variables) arrives on the phone with its variables filled in; Twilio's template refusals come
/// back with their codes and the agent's explanation.
#[tokio::test]
async fn a_template_through_twilio_arrives_with_its_variables_and_bad_ones_are_refused_as_twilio_does() {
    let (t, forms) = start_twilio(0).await;
    let client = TwilioClient::new(TwilioConfig {
        base_url: format!("{}/twilio", t.base),
        account_sid: ACCOUNT.into(),
        auth_token: AUTH_TOKEN.into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let callback = Some(format!("{}/webhooks/twilio", forms.base));
    let reminder = |to: &str, sid: &str, params: &[&str]| {
        TwilioMessage::template(
            WA_FROM.into(),
            None,
            format!("whatsapp:{to}"),
            sid.into(),
            &params.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>(),
            callback.clone(),
        )
    };
    const REMINDER: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";

    // Dan never wrote: a template may still reach him (the window does not hold templates back).
    let accepted = client.send(&reminder(DAN, REMINDER, &["Dan", "Friday"])).await.unwrap();
    let (status, _, _) = next_status(&forms, &accepted.provider_message_id).await;
    assert_eq!(status, "sent");
    let entry = conversation(&t, DAN).await.pop().unwrap();
    assert_eq!(entry["id"], accepted.provider_message_id.as_str());
    assert_eq!(entry["type"], "template");
    assert_eq!(entry["text"], "Hello Dan, your appointment is on Friday.");
    assert_eq!(entry["template"]["name"], "appointment_reminder");
    assert_eq!(entry["template"]["parameters"], json!(["Dan", "Friday"]));

    // One variable short: Twilio accepts the request, then the message fails with 63028.
    let accepted = client.send(&reminder(DAN, REMINDER, &["Dan"])).await.unwrap();
    let failed = loop {
        // The first message's later callbacks may come first; this one's is the one that matters.
        let hook = forms.next().await;
        assert!(hook.verifies(), "{hook:?}");
        if hook.param("MessageSid") == Some(accepted.provider_message_id.as_str()) {
            break hook;
        }
    };
    assert_eq!(
        (failed.param("MessageStatus"), failed.param("ErrorCode")),
        (Some("failed"), Some("63028"))
    );

    // A Content SID this account does not have, or an empty variable, is refused outright.
    for (message, code) in [
        (
            reminder(DAN, "HXffffffffffffffffffffffffffffffff", &["Dan", "Friday"]),
            21655,
        ),
        (reminder(DAN, "HX-not-a-sid", &["Dan", "Friday"]), 21655),
        (reminder(DAN, REMINDER, &["Dan", " "]), 21656),
    ] {
        let refused = client.send(&message).await.unwrap_err();
        assert_eq!(
            (refused.code, refused.http_status, refused.retry),
            (Some(code), Some(400), Retry::Permanent),
            "{message:?}"
        );
        let explanation = openline_domain::provider_errors::explain_twilio_error(code).explanation;
        assert!(explanation.contains("template"), "{code}: {explanation}");
    }
    // Variables without a template.
    let (status, v) = create(
        &t,
        Some((ACCOUNT, AUTH_TOKEN)),
        &[
            ("To", "whatsapp:+447700900003"),
            ("From", WA_FROM),
            ("Body", "hi"),
            ("ContentVariables", r#"{"1":"Dan"}"#),
        ],
    )
    .await;
    assert_eq!((status, v["code"].as_i64()), (400, Some(21654)), "{v}");
}
