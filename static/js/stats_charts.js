// The statistics page: each objective's human labels over the 7-point scale, one bar per objective and point,
// in the objective's colour (static/js/palette.js). The counts come from the page (json_script
// "label-distribution"), the same as the table above it.
(function () {
  "use strict";
  const palette = window.mormPalette;
  const distribution = JSON.parse(document.getElementById("label-distribution").textContent);
  new Chart(document.getElementById("chart-distribution"), {
    type: "bar",
    data: {
      labels: distribution.scale_points,
      datasets: distribution.objectives.map((objective) => ({
        label: palette.label(objective.key), data: objective.counts,
        backgroundColor: palette.color(objective.key), borderColor: palette.color(objective.key),
      })),
    },
    options: {
      animation: false,
      plugins: { legend: { position: "bottom" } },
      scales: {
        x: { title: { display: true, text: "label (negative: A better, positive: B better)" } },
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "judgments" } },
      },
    },
  });
})();
