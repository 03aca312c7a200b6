// openline web app: the one script (no build step, no dependencies).
// 1. Live updates: listens to /api/v1/events (server-sent events, scoped to the user's
//    organizations on the server) and refreshes the page's live regions ([data-live] with an id)
//    from a fresh copy of the page, keeping what the user is typing. Each refresh says whether the
//    page is in view (X-Openline-Visible), so a thread is read only while the agent can see it.
// 2. The window countdown ([data-countdown] = epoch ms when it closes, by the server's clock;
//    [data-now] = the server's time when it rendered the element). It counts from the server's time,
//    never the browser's own clock (skewed, or behind the demo clock moved by /sim/clock/advance):
//    the offset between the two is taken when the element arrives, and every live refresh brings a
//    fresh element with a fresh `now`.
// 3. The simulated phone page (#phone): drives the simulator's phone API under /sim/phones/.
(function () {
  "use strict";

  function scrollHistory() {
    var h = document.getElementById("history");
    if (h) { window.scrollTo(0, document.body.scrollHeight); }
  }

  // ---- 1. live regions ---------------------------------------------------------------------
  var live = document.querySelectorAll("[data-live][id]");
  var refreshTimer = null;
  var refreshing = false;
  function refresh() {
    if (refreshTimer) { clearTimeout(refreshTimer); }
    refreshTimer = setTimeout(doRefresh, 120);
  }
  function doRefresh() {
    if (refreshing) { refresh(); return; }
    refreshing = true;
    // Whether the user can see the page: a thread refreshed in view is read (its read receipt
    // sent), one in a background tab is not, until it comes back into view.
    var visible = document.visibilityState === "visible" ? "1" : "0";
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch", "X-Openline-Visible": visible } })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (!fresh) { return; }
          // Keep the draft and focus of any text field inside the region.
          var kept = {};
          el.querySelectorAll("textarea[id], input[type=text][id]").forEach(function (f) { kept[f.id] = f.value; });
          var focused = document.activeElement && el.contains(document.activeElement) ? document.activeElement.id : null;
          var wasOpen = {};
          el.querySelectorAll("details[class]").forEach(function (d) { wasOpen[d.className] = d.open; });
          var adopted = document.importNode(fresh, true);
          el.replaceWith(adopted);
          Object.keys(kept).forEach(function (id) {
            var f = document.getElementById(id);
            if (f && !f.disabled && kept[id]) { f.value = kept[id]; }
          });
          adopted.querySelectorAll("details[class]").forEach(function (d) {
            if (wasOpen[d.className] !== undefined) { d.open = wasOpen[d.className]; }
          });
          if (focused) { var f2 = document.getElementById(focused); if (f2) { f2.focus(); } }
          // Re-apply typed template values to the preview and the send form.
          var tp = adopted.querySelector(".template-params input[type=text]");
          if (tp) { tp.dispatchEvent(new Event("input", { bubbles: true })); }
        });
        startCountdowns();
        scrollHistory();
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next event retries */ })
      .finally(function () { refreshing = false; });
  }
  if (live.length && window.EventSource) {
    var es = new EventSource("/api/v1/events");
    ["message.received", "message.created", "message.status", "media.stored", "media.failed", "consent.changed", "contact.updated", "template.status",
     "participant.joined", "participant.left", "participant.removed", "conversation.transferred", "lagged"]
      .forEach(function (kind) { es.addEventListener(kind, refresh); });
    // Whatever happened between rendering this page and the stream opening (or while it was
    // reconnecting) would otherwise be missed: refresh once on every open.
    es.onopen = function () { document.body.setAttribute("data-live-connected", "true"); refresh(); };
    // Back in view: catch up, and read a thread whose messages arrived while it was hidden.
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { refresh(); }
    });
  }

  // ---- 2. countdown ------------------------------------------------------------------------
  var countdownTimer = null;
  function fmt(ms) {
    var m = Math.ceil(Math.max(ms, 0) / 60000);
    var mm = String(m % 60); if (mm.length < 2) { mm = "0" + mm; }
    return Math.floor(m / 60) + " h " + mm + " min";
  }
  // Server time minus browser time, per element, measured once when it is first seen.
  function serverOffset(el) {
    if (el.__openlineOffset === undefined) {
      var serverNow = Number(el.getAttribute("data-now"));
      el.__openlineOffset = isFinite(serverNow) && serverNow > 0 ? serverNow - Date.now() : 0;
    }
    return el.__openlineOffset;
  }
  function tick() {
    var expired = false;
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Number(el.getAttribute("data-countdown")) - (Date.now() + serverOffset(el));
      el.textContent = fmt(left);
      if (left <= 0) { expired = true; }
    });
    if (expired) { refresh(); }
  }
  function startCountdowns() {
    if (countdownTimer) { clearInterval(countdownTimer); }
    if (document.querySelector("[data-countdown]")) {
      tick();
      countdownTimer = setInterval(tick, 30000);
    }
  }
  startCountdowns();
  scrollHistory();

  // ---- template preview as you type (the Preview button does the same on the server) -------
  document.addEventListener("input", function (ev) {
    var form = ev.target.closest && ev.target.closest(".template-params");
    var preview = document.querySelector("[data-template-body]");
    if (!form || !preview) { return; }
    var text = preview.getAttribute("data-template-body");
    form.querySelectorAll("input[type=text]").forEach(function (input) {
      var key = input.name.indexOf("n_") === 0 ? input.name.slice(2) : input.name.slice(1);
      if (input.value.trim()) { text = text.split("{{" + key + "}}").join(input.value); }
      var hidden = document.querySelector("form input[type=hidden][name='" + input.name + "']");
      if (hidden) { hidden.value = input.value; }
    });
    preview.textContent = "";
    var p = document.createElement("p"); p.textContent = text; preview.appendChild(p);
    var send = document.querySelector("[data-send-template]");
    if (send) {
      var complete = Array.prototype.every.call(form.querySelectorAll("input[type=text]"), function (i) { return i.value.trim() !== ""; });
      send.disabled = !complete;
    }
  });

  // ---- 3. simulated phone ------------------------------------------------------------------
  var phoneEl = document.getElementById("phone");
  if (!phoneEl) { return; }
  var phone = phoneEl.getAttribute("data-phone");
  var base = "/sim/phones/" + encodeURIComponent(phone);
  var historyEl = document.getElementById("phone-history");
  var errorEl = document.getElementById("phone-error");
  var lastJson = "";

  function showError(text) {
    errorEl.textContent = text || "";
    errorEl.hidden = !text;
  }
  function post(path, body) {
    return fetch(base + path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) { throw new Error(json.message || ("HTTP " + res.status)); }
        showError("");
        load();
        return json;
      });
    }).catch(function (e) { showError(e.message); });
  }
  function render(entries) {
    historyEl.textContent = "";
    if (!entries.length) {
      var p = document.createElement("p"); p.className = "empty";
      p.textContent = "No messages yet. Write to the business below.";
      historyEl.appendChild(p);
    }
    entries.forEach(function (m) {
      var div = document.createElement("div");
      div.className = "msg " + (m.direction === "from_business" ? "msg-in" : "msg-out");
      div.setAttribute("data-id", m.id);
      var text = m.text;
      if (!text && m.template) { text = m.template.body || m.template.name; }
      var picture = m.type === "image" && m.media_id;
      if (picture) {
        // The picture itself, from the simulator's phone-side media URL (set as a property: never markup).
        var img = document.createElement("img");
        img.className = "media-img";
        img.src = base + "/media/" + encodeURIComponent(m.media_id);
        img.alt = text ? "Picture: " + text : "Picture";
        div.appendChild(img);
      }
      if (text || !picture) {
        var body = document.createElement("p"); body.className = "body";
        body.textContent = text || (m.type === "image" ? "Picture" : "(" + m.type + ")");
        div.appendChild(body);
      }
      if (m.buttons && m.buttons.length && m.direction === "from_business") {
        var row = document.createElement("div"); row.className = "phone-buttons";
        m.buttons.forEach(function (b) {
          var btn = document.createElement("button"); btn.type = "button";
          btn.textContent = b.text || b.title || b.id || b.payload;
          btn.addEventListener("click", function () { post("/buttons", { message_id: m.id, button: btn.textContent }); });
          row.appendChild(btn);
        });
        div.appendChild(row);
      }
      var meta = document.createElement("p"); meta.className = "meta";
      meta.textContent = (m.channel === "sms" ? "SMS · " : "WhatsApp · ") + new Date(m.timestamp_ms).toLocaleTimeString() +
        (m.direction === "from_business" ? "" : " · " + m.status) + (m.error_code ? " · error " + m.error_code : "");
      div.appendChild(meta);
      historyEl.appendChild(div);
    });
  }
  function load() {
    return fetch(base + "/messages").then(function (res) { return res.json(); }).then(function (entries) {
      var json = JSON.stringify(entries);
      if (json === lastJson) { return; }
      lastJson = json;
      render(entries);
      window.scrollTo(0, document.body.scrollHeight);
    }).catch(function () { /* retried by the next poll */ });
  }
  document.getElementById("phone-reply").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var to = document.getElementById("phone-to");
    var textEl = document.getElementById("phone-text");
    var text = textEl.value.trim();
    if (!text) { showError("Write something first."); return; }
    var channel = to.options[to.selectedIndex].getAttribute("data-channel");
    post(channel === "sms" ? "/sms" : "/messages", { to: to.value, text: text }).then(function () { textEl.value = ""; });
  });
  document.getElementById("phone-picture").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = document.getElementById("phone-file").files[0];
    if (!file) { showError("Choose a picture first."); return; }
    if (["image/jpeg", "image/png"].indexOf(file.type) < 0) { showError("Only JPEG and PNG pictures can be sent."); return; }
    if (file.size > 5 * 1024 * 1024) { showError("The picture is larger than 5 MB."); return; }
    var reader = new FileReader();
    reader.onload = function () {
      var data = String(reader.result).split(",")[1] || "";
      var to = document.getElementById("phone-to");
      post("/images", { to: to.value, mime_type: file.type, data_base64: data });
    };
    reader.readAsDataURL(file);
  });
  var behaviour = document.getElementById("phone-behaviour");
  fetch("/sim/phones").then(function (r) { return r.json(); }).then(function (phones) {
    var me = phones.filter(function (p) { return p.phone === phone; })[0];
    behaviour.value = me ? me.behaviour : "manual";
  }).catch(function () { /* keep the default */ });
  behaviour.addEventListener("change", function () {
    fetch(base + "/behaviour", {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ behaviour: behaviour.value })
    }).then(function (res) { showError(res.ok ? "" : "Could not change how this phone answers."); });
  });
  // Stop or resume promotions (marketing messages) from the business, as WhatsApp offers.
  var marketing = document.getElementById("phone-marketing");
  if (marketing) {
    var business = marketing.getAttribute("data-business");
    var showMarketing = function (stoppedNumbers) {
      var stopped = (stoppedNumbers || []).indexOf(business) >= 0;
      document.getElementById("phone-marketing-state").textContent =
        "Promotions from the business: " + (stopped ? "stopped" : "allowed");
    };
    fetch("/sim/phones").then(function (r) { return r.json(); }).then(function (phones) {
      var me = phones.filter(function (p) { return p.phone === phone; })[0];
      showMarketing(me ? me.marketing_stopped : []);
    }).catch(function () { /* keep the default */ });
    marketing.querySelectorAll("button[data-preference]").forEach(function (b) {
      b.addEventListener("click", function () {
        var preference = b.getAttribute("data-preference");
        post("/marketing", { to: business, preference: preference }).then(function (r) {
          if (r && r.preference) { showMarketing(r.preference === "stop" ? [business] : []); }
        });
      });
    });
  }
  load();
  setInterval(load, 1000);
})();
