// A run page while the run is in progress: reload every few seconds so the counters and the customers it
// changed stay current; stops when the run is finished (the server omits this script) or while the
// marketer is typing a search.
(() => {
  const marker = document.getElementById("wf-run-refresh");
  if (!marker) return;
  const seconds = Number(marker.dataset.refreshSeconds || 3);
  setInterval(() => {
    const active = document.activeElement;
    if (active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA")) return;
    window.location.reload();
  }, seconds * 1000);
})();
