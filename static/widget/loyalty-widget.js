/*
 * Loyalty Site storefront widget. Add to any shop page:
 *   <script src="https://LOYALTY-HOST/static/widget/loyalty-widget.js" data-token="TOKEN" async></script>
 * TOKEN comes from POST /api/v1/loyalty/widget-tokens/ (the shop's backend, scope `widget`). Optional
 * `data-lang="fr"` forces a language; otherwise the server picks the customer's language, then this page's
 * <html lang>, then the browser's languages. The widget draws a launcher in a shadow root (the shop's CSS cannot
 * reach it) in the shop's Brand (colours, font, logo), shows balance, tier progress, rewards and the referral
 * link, and redeems a reward after a confirmation step. Every text comes from the server's catalog for the
 * chosen language (apps/loyalty/widget/catalogs/); this file holds none. No cookie, no third-party code.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.token) { return; }
  var api = new URL(script.src).origin + "/w/api/";
  var token = script.dataset.token;
  var query = "?lang=" + encodeURIComponent(script.dataset.lang || "") +
    "&page_lang=" + encodeURIComponent(document.documentElement.lang || "");

  var host = document.createElement("div");
  host.setAttribute("data-loyalty-widget", "");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    ".lw{--lw-brand:#1f5fbf;--lw-on-brand:#fff;--lw-bg:#fff;--lw-fg:#1b1b1b;--lw-font:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    "*{box-sizing:border-box;font-family:var(--lw-font)}" +
    ".launch{position:fixed;right:16px;bottom:16px;z-index:2147483000;background:var(--lw-brand);color:var(--lw-on-brand);border:0;border-radius:24px;" +
    "padding:12px 18px;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.25);min-height:44px;max-width:calc(100vw - 32px)}" +
    ".launch[hidden],.panel[hidden]{display:none}" +
    ".launch:focus-visible,button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid var(--lw-fg);outline-offset:2px}" +
    ".panel{position:fixed;right:16px;bottom:76px;z-index:2147483000;width:min(360px,calc(100vw - 32px));max-height:min(70vh,560px);" +
    "overflow:auto;background:var(--lw-bg);color:var(--lw-fg);border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.3);padding:16px;font-size:14px;line-height:1.45}" +
    ".head{display:flex;align-items:center;justify-content:space-between;gap:8px;margin:0 0 8px}.head img{max-height:28px;max-width:120px}" +
    "h2{font-size:17px;margin:0;flex:1}h3{font-size:15px;margin:14px 0 6px}" +
    ".big{font-size:26px;font-weight:700}.muted{opacity:.8}" +
    ".bar{height:8px;background:rgba(0,0,0,.12);border-radius:4px;overflow:hidden;margin:6px 0}.bar span{display:block;height:100%;background:var(--lw-brand)}" +
    "ul{list-style:none;margin:0;padding:0}li{display:flex;justify-content:space-between;align-items:center;gap:8px;padding:8px 0;border-bottom:1px solid rgba(0,0,0,.1)}" +
    "button.act{background:var(--lw-brand);color:var(--lw-on-brand);border:0;border-radius:6px;padding:8px 12px;font-size:14px;cursor:pointer;min-height:36px}" +
    "button.act[disabled]{background:#9a9a9a;color:#fff;cursor:not-allowed}button.plain{background:transparent;color:var(--lw-fg);border:1px solid var(--lw-brand)}" +
    "button.close{background:transparent;color:var(--lw-fg);border:0;font-size:22px;line-height:1;cursor:pointer;min-width:36px;min-height:36px}" +
    ".confirm{background:rgba(0,0,0,.05);border-radius:8px;padding:10px;margin:8px 0}.code{font-family:monospace;font-size:18px;font-weight:700}" +
    ".err{color:#a4000f}input{width:100%;padding:6px;font-size:13px;border:1px solid #767676;border-radius:4px;background:#fff;color:#1b1b1b}" +
    "</style>" +
    "<div class='lw'>" +
    "<button class='launch' type='button' aria-expanded='false' aria-controls='lw-panel' data-testid='widget-launcher' hidden></button>" +
    "<section class='panel' id='lw-panel' role='dialog' hidden></section></div>";
  var frame = root.querySelector(".lw");
  var launcher = root.querySelector(".launch");
  var panel = root.querySelector(".panel");
  var state = null;
  var strings = null;
  var lang = "en";

  function t(key, values) {
    var text = (strings && strings[key]) || key;
    Object.keys(values || {}).forEach(function (name) { text = text.split("{" + name + "}").join(String(values[name])); });
    return text;
  }

  function number(value) {
    try { return new Intl.NumberFormat(lang).format(value); } catch (error) { return String(value); }
  }

  function points(value) {
    var one = strings && strings.plural_one && strings.plural_one.indexOf(value) >= 0;
    return t(one ? "points_one" : "points_other", { n: number(value) });
  }

  function errorText(body) {
    var known = strings && strings.errors && body && strings.errors[body.error];
    return known || t("redeem_failed");
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function paint(brand) {
    if (!brand) { return; }
    var properties = { "--lw-brand": brand.primary, "--lw-on-brand": brand.on_primary, "--lw-bg": brand.background,
      "--lw-fg": brand.text, "--lw-font": brand.font };
    Object.keys(properties).forEach(function (name) {
      if (properties[name]) { frame.style.setProperty(name, properties[name]); }
    });
  }

  function speak(body) {
    if (body && body.strings) { strings = body.strings; lang = body.lang || lang; }
    frame.setAttribute("lang", lang);
    panel.setAttribute("aria-label", t("dialog_label"));
  }

  function call(path, options) {
    options = options || {};
    options.headers = { "X-Loyalty-Widget-Token": token, "Content-Type": "application/json" };
    options.credentials = "omit";
    return fetch(api + path, options).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
    });
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  function draw(message) {
    panel.textContent = "";
    var head = el("div", { class: "head" });
    if (state && state.brand && state.brand.logo_url) { head.appendChild(el("img", { src: state.brand.logo_url, alt: state.brand.name })); }
    head.appendChild(el("h2", {}, state ? state.program : t("dialog_label")));
    var shut = el("button", { type: "button", class: "close", "aria-label": t("close") }, "×");
    shut.addEventListener("click", close);
    head.appendChild(shut);
    panel.appendChild(head);
    if (!state) { panel.appendChild(el("p", { class: "err", role: "alert" }, message || t("load_failed"))); return; }
    panel.appendChild(el("div", { class: "big", "data-testid": "widget-balance" }, points(state.balance.active)));
    if (state.balance.pending) { panel.appendChild(el("div", { class: "muted" }, t("pending", { points: points(state.balance.pending) }))); }
    if (state.tier || state.next_tier) {
      panel.appendChild(el("h3", {}, state.tier ? t("tier", { tier: state.tier }) : t("tiers")));
      if (state.next_tier) {
        var bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
          "aria-valuenow": String(state.tier_progress.percent), "aria-label": t("progress_label", { tier: state.next_tier }) });
        var fill = el("span");
        fill.style.width = state.tier_progress.percent + "%";
        bar.appendChild(fill);
        panel.appendChild(bar);
        var remaining = state.tier_progress.basis === "amount_spent"
          ? state.tier_progress.remaining_label : points(Math.ceil(Number(state.tier_progress.remaining)));
        panel.appendChild(el("div", { class: "muted", "data-testid": "widget-remaining" },
          t("remaining_to", { remaining: remaining, tier: state.next_tier })));
      }
    }
    if (message) { panel.appendChild(el("p", { class: "confirm", role: "status", "data-testid": "widget-message" }, message)); }
    panel.appendChild(el("h3", {}, t("rewards")));
    var list = el("ul", { "data-testid": "widget-rewards" });
    state.rewards.forEach(function (reward) {
      var item = el("li");
      item.appendChild(el("span", {}, reward.name + " · " + points(reward.points)));
      var button = el("button", { type: "button", class: "act" }, t("redeem"));
      if (!reward.affordable || state.blocked) { button.disabled = true; }
      button.addEventListener("click", function () { ask(reward); });
      item.appendChild(button);
      list.appendChild(item);
    });
    if (!state.rewards.length) { list.appendChild(el("li", {}, t("no_rewards"))); }
    panel.appendChild(list);
    panel.appendChild(el("h3", {}, t("invite")));
    panel.appendChild(el("input", { type: "text", readonly: "", value: state.referral_link, "aria-label": t("referral_link"),
      "data-testid": "widget-referral" }));
  }

  function ask(reward) {
    draw();
    var box = el("div", { class: "confirm", role: "group", "aria-label": t("confirm_group") });
    box.appendChild(el("p", {}, t("confirm_question", { reward: reward.name, points: points(reward.points) })));
    var yes = el("button", { type: "button", class: "act", "data-testid": "widget-confirm" }, t("confirm_yes"));
    var no = el("button", { type: "button", class: "act plain" }, t("cancel"));
    yes.addEventListener("click", function () { redeem(reward, yes); });
    no.addEventListener("click", function () { draw(); });
    box.appendChild(yes);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(no);
    panel.insertBefore(box, panel.children[2] || null);
    yes.focus();
  }

  function redeem(reward, button) {
    button.disabled = true;
    call("redeem/", { method: "POST", body: JSON.stringify({ reward: reward.id, confirm: true }) }).then(function (answer) {
      if (!answer.ok) { draw(errorText(answer.body)); return; }
      return load().then(function () { draw(t("your_code", { reward: answer.body.reward, code: answer.body.code })); });
    }).catch(function () { draw(t("redeem_failed")); });
  }

  function load() {
    return call("state/" + query).then(function (answer) {
      speak(answer.body);
      if (!answer.ok) {
        state = null;
        launcher.textContent = "★ " + t("launcher");
        launcher.hidden = !strings;
        return;
      }
      state = answer.body;
      paint(state.brand);
      launcher.textContent = "★ " + points(state.balance.active);
      launcher.setAttribute("aria-label", t("launcher") + ": " + points(state.balance.active));
      launcher.hidden = false;
    });
  }

  launcher.addEventListener("click", function () {
    var open = panel.hidden;
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) { draw(state ? undefined : errorText({ error: "invalid_token" })); }
  });
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) { close(); }
  });
  (document.body || document.documentElement).appendChild(host);
  // A shop origin that is not configured gets no answer the browser may read (CORS): no launcher then.
  load().catch(function (error) { state = null; if (window.console) { console.warn("Loyalty widget:", error); } });
})();
