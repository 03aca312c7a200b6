//! Demo mode's clock (`/sim/clock`): it moves openline and the simulator forward together, only
//! forward, so a person or a browser test can watch the 24-hour window close; a production server
//! has no such route.

use crate::common::*;
use openline_store::Backend;
use serde_json::json;

const HOUR: i64 = 3_600_000;

crate::both_backends! {
    the_demo_clock_moves_forward_only_and_closes_the_window => demo_clock;
    a_production_server_has_no_clock_to_move => production;
}

async fn demo_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv_id = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, conv) = app.get(&format!("/api/v1/conversations/{conv_id}")).await;
    assert_eq!(conv["window"]["open"], true, "{conv}");

    let (status, before) = app.get("/sim/clock").await;
    assert_eq!((status, before["offset_ms"].as_i64()), (200, Some(0)), "{before}");
    // Backwards, not at all, too far, or two amounts at once: refused, and the clock stays.
    for bad in [
        json!({"hours": -1}),
        json!({"ms": 0}),
        json!({"hours": 31 * 24 + 1}),
        json!({"hours": i64::MAX}),
        json!({"hours": 1, "ms": 1}),
        json!({}),
    ] {
        let (status, err) = app.post("/sim/clock/advance", bad.clone()).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_clock_step")),
            "{bad}: {err}"
        );
    }
    assert_eq!(app.get("/sim/clock").await.1["offset_ms"], 0);

    let (status, after) = app.post("/sim/clock/advance", json!({"hours": 25})).await;
    assert_eq!((status, after["offset_ms"].as_i64()), (200, Some(25 * HOUR)), "{after}");
    assert!(after["now"].as_i64().unwrap() >= before["now"].as_i64().unwrap() + 25 * HOUR);

    // openline reads the moved clock: the session has expired, the window has closed, and free
    // text is held.
    let (status, _) = app.get("/api/v1/conversations").await;
    assert_eq!(status, 401, "the 12-hour session expired when the clock moved a day");
    app.sign_in(AGENT).await;
    let (_, conv) = app.get(&format!("/api/v1/conversations/{conv_id}")).await;
    assert_eq!(conv["window"]["open"], false, "{conv}");
    let (status, held) = app.send_text(&ada, "A day later").await;
    assert_eq!(
        (status, held["queue_reason"].as_str()),
        (202, Some("window_closed")),
        "{held}"
    );

    // So does the simulator: Ada writes, the window re-opens on both sides, and the held message
    // goes without a 131047 from the simulator (which checks the window with its own record).
    app.phone_writes(ADA, "Hello again").await;
    let m = app
        .wait_for_message(held["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    assert!(m["error_code"].is_null(), "{m}");
    app.stop().await;
}

async fn production(backend: Backend) {
    let app = spawn_production_app(backend).await;
    let (status, _) = app.get("/sim/clock").await;
    assert_eq!(status, 404);
    let (status, _) = app.post("/sim/clock/advance", json!({"hours": 25})).await;
    assert_eq!(status, 404, "no clock to move outside demo mode");
    let (status, _) = app.get("/sim/phones").await;
    assert_eq!(status, 404, "nor a simulator");
    app.stop().await;
}
