// Draws each chart of a report page with Chart.js (installed by scripts/bootstrap from npm) from the
// report's own tables (the JSON in #rp-report), so the chart, the table view, the CSV and the API agree.
(function () {
  "use strict";
  // "Table view" opens the table's <details> before jumping to it.
  document.querySelectorAll('a[href^="#table-"]').forEach((link) => {
    link.addEventListener("click", () => {
      const target = document.getElementById(link.getAttribute("href").slice(1));
      if (target) target.open = true;
    });
  });
  const source = document.getElementById("rp-report");
  if (!source || typeof window.Chart === "undefined") return;
  const report = JSON.parse(source.textContent);
  const tables = Object.fromEntries(report.tables.map((table) => [table.name, table]));
  const palette = ["#417690", "#e8a33d", "#79aec8", "#ba2121", "#5b8c5a", "#8e6bb5", "#c47f9b", "#6d6d6d"];
  const number = (value) => (value === null || value === undefined || value === "" ? null : Number(value));
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const chart = report.charts[Number(canvas.dataset.chart)];
    const table = tables[chart.table];
    if (!chart || !table) return;
    const labels = Object.fromEntries(table.columns.map((column) => [column.key, column.label]));
    new window.Chart(canvas, {
      type: chart.kind,
      data: {
        labels: table.rows.map((row) => String(row[chart.x] ?? "")),
        datasets: chart.series.map((key, index) => ({
          label: labels[key] || key,
          data: table.rows.map((row) => number(row[key])),
          backgroundColor: palette[index % palette.length],
          borderColor: palette[index % palette.length],
          borderWidth: chart.kind === "line" ? 2 : 0,
          pointRadius: table.rows.length > 60 ? 0 : 2,
          spanGaps: true,
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" } },
        scales: {
          x: { stacked: chart.stacked, ticks: { maxRotation: 0, autoSkip: true } },
          y: { stacked: chart.stacked, beginAtZero: true },
        },
      },
    });
    canvas.dataset.drawn = "true";
  });
})();
