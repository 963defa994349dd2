/*
 * Loyalty Site storefront widget. Add to any shop page:
 *   <script src="https://LOYALTY-HOST/static/widget/loyalty-widget.js" data-token="TOKEN" async></script>
 * TOKEN comes from POST /api/v1/loyalty/widget-tokens/ (the shop's backend, scope `widget`). The widget draws a
 * launcher in a shadow root (the shop's CSS cannot reach it), shows balance, tier progress, rewards and the
 * referral link, and redeems a reward after a confirmation step. No cookie, no third-party code.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.token) { return; }
  var api = new URL(script.src).origin + "/w/api/";
  var token = script.dataset.token;

  var host = document.createElement("div");
  host.setAttribute("data-loyalty-widget", "");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".launch{position:fixed;right:16px;bottom:16px;z-index:2147483000;background:#1f5fbf;color:#fff;border:0;border-radius:24px;" +
    "padding:12px 18px;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.25);min-height:44px}" +
    ".launch:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid #111;outline-offset:2px}" +
    ".panel{position:fixed;right:16px;bottom:76px;z-index:2147483000;width:min(360px,calc(100vw - 32px));max-height:min(70vh,560px);" +
    "overflow:auto;background:#fff;color:#1b1b1b;border-radius:10px;box-shadow:0 4px 24px rgba(0,0,0,.3);padding:16px;font-size:14px;line-height:1.45}" +
    ".panel[hidden]{display:none}h2{font-size:17px;margin:0 0 8px}h3{font-size:15px;margin:14px 0 6px}" +
    ".big{font-size:26px;font-weight:700}.muted{color:#555}" +
    ".bar{height:8px;background:#e3e3e3;border-radius:4px;overflow:hidden;margin:6px 0}.bar span{display:block;height:100%;background:#1f5fbf}" +
    "ul{list-style:none;margin:0;padding:0}li{display:flex;justify-content:space-between;align-items:center;gap:8px;padding:8px 0;border-bottom:1px solid #eee}" +
    "button.act{background:#1f5fbf;color:#fff;border:0;border-radius:6px;padding:8px 12px;font-size:14px;cursor:pointer;min-height:36px}" +
    "button.act[disabled]{background:#9a9a9a;cursor:not-allowed}button.plain{background:#fff;color:#1f5fbf;border:1px solid #1f5fbf}" +
    ".confirm{background:#f2f6fc;border-radius:8px;padding:10px;margin:8px 0}.code{font-family:monospace;font-size:18px;font-weight:700}" +
    ".err{color:#a4000f}input{width:100%;padding:6px;font-size:13px;border:1px solid #767676;border-radius:4px}" +
    "</style>" +
    "<button class='launch' type='button' aria-expanded='false' aria-controls='lw-panel' data-testid='widget-launcher'>★ Rewards</button>" +
    "<section class='panel' id='lw-panel' role='dialog' aria-label='Your rewards' hidden></section>";
  var launcher = root.querySelector(".launch");
  var panel = root.querySelector(".panel");
  var state = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function call(path, options) {
    options = options || {};
    options.headers = { "X-Loyalty-Widget-Token": token, "Content-Type": "application/json" };
    options.credentials = "omit";
    return fetch(api + path, options).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
    });
  }

  function draw(message) {
    panel.textContent = "";
    if (!state) { panel.appendChild(el("p", { class: "err", role: "alert" }, message || "Your rewards could not be loaded.")); return; }
    panel.appendChild(el("h2", {}, state.program));
    panel.appendChild(el("div", { class: "big", "data-testid": "widget-balance" }, state.balance.active + " points"));
    if (state.balance.pending) { panel.appendChild(el("div", { class: "muted" }, state.balance.pending + " pending")); }
    if (state.tier || state.next_tier) {
      panel.appendChild(el("h3", {}, state.tier ? "Tier: " + state.tier : "Tiers"));
      if (state.next_tier) {
        var bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
          "aria-valuenow": String(state.tier_progress.percent), "aria-label": "Progress to " + state.next_tier });
        var fill = el("span");
        fill.style.width = state.tier_progress.percent + "%";
        bar.appendChild(fill);
        panel.appendChild(bar);
        panel.appendChild(el("div", { class: "muted" }, state.tier_progress.remaining_label + " to " + state.next_tier));
      }
    }
    if (message) { panel.appendChild(el("p", { class: "confirm", role: "status", "data-testid": "widget-message" }, message)); }
    panel.appendChild(el("h3", {}, "Rewards"));
    var list = el("ul", { "data-testid": "widget-rewards" });
    state.rewards.forEach(function (reward) {
      var item = el("li");
      item.appendChild(el("span", {}, reward.name + " · " + reward.points + " points"));
      var button = el("button", { type: "button", class: "act" }, "Redeem");
      if (!reward.affordable || state.blocked) { button.disabled = true; }
      button.addEventListener("click", function () { ask(reward); });
      item.appendChild(button);
      list.appendChild(item);
    });
    if (!state.rewards.length) { list.appendChild(el("li", {}, "No rewards yet.")); }
    panel.appendChild(list);
    panel.appendChild(el("h3", {}, "Invite a friend"));
    var link = el("input", { type: "text", readonly: "", value: state.referral_link, "aria-label": "Your referral link",
      "data-testid": "widget-referral" });
    panel.appendChild(link);
  }

  function ask(reward) {
    draw();
    var box = el("div", { class: "confirm", role: "group", "aria-label": "Confirm the redemption" });
    box.appendChild(el("p", {}, "Redeem " + reward.name + " for " + reward.points + " points?"));
    var yes = el("button", { type: "button", class: "act", "data-testid": "widget-confirm" }, "Yes, redeem");
    var no = el("button", { type: "button", class: "act plain" }, "Cancel");
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
      if (!answer.ok) { draw(answer.body.message || "The reward could not be redeemed."); return; }
      return load().then(function () { draw("Your code for " + answer.body.reward + ": " + answer.body.code); });
    }).catch(function () { draw("The reward could not be redeemed."); });
  }

  function load() {
    return call("state/").then(function (answer) {
      if (!answer.ok) { state = null; return; }
      state = answer.body;
      launcher.textContent = "★ " + state.balance.active + " points";
    });
  }

  launcher.addEventListener("click", function () {
    var open = panel.hidden;
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) { draw(); }
  });
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) { panel.hidden = true; launcher.setAttribute("aria-expanded", "false"); launcher.focus(); }
  });
  (document.body || document.documentElement).appendChild(host);
  load().catch(function () { state = null; });
})();
