/*
 * Landing pages: the countdown block ticks every second. The server renders the time left when the page was
 * drawn (the text without JavaScript) and `data-remaining` in seconds; the deadline is counted from this
 * device's clock at load, so a device whose clock is wrong still counts the right time. At zero the block
 * shows its "ended" text (a role=status paragraph, so screen readers hear it once). A file from our origin:
 * allowed by the Content-Security-Policy (no inline script).
 */
(function () {
  "use strict";

  function start(block) {
    var remaining = parseInt(block.getAttribute("data-remaining"), 10);
    if (!(remaining >= 0)) { return; }
    var deadline = Date.now() + remaining * 1000;
    var live = block.querySelector("[data-countdown-live]");
    var ended = block.querySelector("[data-countdown-ended]");
    var units = {};
    ["days", "hours", "minutes", "seconds"].forEach(function (unit) {
      units[unit] = block.querySelector("[data-unit='" + unit + "']");
    });
    var dayLabel = block.querySelector("[data-label='days']");
    var timer = null;

    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      if (left === 0) {
        if (timer !== null) { clearInterval(timer); }
        if (live) { live.hidden = true; }
        if (ended) { ended.hidden = false; }
        block.setAttribute("data-state", "ended");
        return;
      }
      var days = Math.floor(left / 86400);
      var hours = Math.floor((left % 86400) / 3600);
      var minutes = Math.floor((left % 3600) / 60);
      var seconds = left % 60;
      var values = { days: days, hours: hours, minutes: minutes, seconds: seconds };
      Object.keys(units).forEach(function (unit) {
        if (units[unit]) { units[unit].textContent = String(values[unit]); }
      });
      if (dayLabel) { dayLabel.textContent = dayLabel.getAttribute(days === 1 ? "data-one" : "data-many"); }
      block.setAttribute("data-state", "ticking");
    }

    tick();
    if (block.getAttribute("data-state") !== "ended") { timer = setInterval(tick, 1000); }
  }

  var blocks = document.querySelectorAll("[data-countdown]");
  for (var i = 0; i < blocks.length; i += 1) { start(blocks[i]); }
})();
