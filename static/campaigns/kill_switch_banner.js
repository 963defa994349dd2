// The global kill switch banner on every admin page: asks for the state after the page loads (no query on
// the page itself) and shows a red notice while the switch is on.
(function () {
  var slot = document.getElementById("kill-switch-slot");
  if (!slot) { return; }
  fetch(slot.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : null; }).then(function (state) {
    if (!state || !state.on) { return; }
    var banner = document.createElement("div");
    banner.className = "errornote";
    banner.setAttribute("role", "alert");
    banner.dataset.testid = "kill-switch-banner";
    banner.style.margin = "10px 40px 0";
    banner.style.fontWeight = "bold";
    banner.textContent = "Global kill switch ON since " + state.at + ": every incentive is refused (" + state.reason + "). ";
    var link = document.createElement("a");
    link.href = slot.dataset.page;
    link.textContent = "Turn it off";
    banner.appendChild(link);
    slot.appendChild(banner);
  });
})();
