// The console's CSV import page while the import runs: poll its status every 1.5 s, move the progress bar,
// and reload once it has finished (the page then lists the outcome and the rejected rows).
(() => {
  const bar = document.getElementById("import-progress");
  if (!bar) return;
  const text = document.getElementById("import-progress-text");
  let polls = 0;
  const poll = async () => {
    polls += 1;
    try {
      const response = await fetch(bar.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const state = await response.json();
        bar.value = state.percent;
        bar.textContent = `${state.percent}%`;
        if (text) text.textContent = `${state.status_label}: ${state.done} of ${state.total || "?"} done.`;
        if (state.status === "done" || state.status === "failed") {
          window.location.assign(state.url);
          return;
        }
      }
    } catch (error) {
      // A dropped poll is retried at the next tick.
    }
    if (polls < 2400) setTimeout(poll, 1500); // bounded: an hour
  };
  setTimeout(poll, 300);
})();
