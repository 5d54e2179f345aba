// Scatter of finished PPO runs on two objectives, the reference policy marked, the Pareto front ringed and joined.
(function () {
  "use strict";
  const palette = window.mormPalette;  // static/js/palette.js: runs take colours no objective uses
  const points = JSON.parse(document.getElementById("tradeoff-points").textContent);
  const front = JSON.parse(document.getElementById("tradeoff-front").textContent);
  const form = document.getElementById("axes");
  const x = form.querySelector("select[name=x]").value;
  const y = form.querySelector("select[name=y]").value;
  const reference = points.length ? [{ x: points[0].ref_x, y: points[0].ref_y }] : [];
  new Chart(document.getElementById("tradeoff"), {
    type: "scatter",
    data: {
      datasets: [
        { label: "reference policy", data: reference, pointStyle: "crossRot", pointRadius: 10, borderColor: palette.color("", 1) },
        ...points.map((p, i) => ({
          label: "run " + p.run + " (" + p.label + ")",
          data: [{ x: p.x, y: p.y }],
          pointRadius: 7,
          backgroundColor: palette.color("", i + 2),
        })),
        // Drawn last, over the runs: a line through the front (by increasing x) and a ring around each of its points.
        { label: "Pareto front", data: front, showLine: true, borderColor: palette.color("", 0), borderWidth: 2,
          pointRadius: 11, pointBorderWidth: 2, pointBackgroundColor: "transparent", pointBorderColor: palette.color("", 0) },
      ],
    },
    options: {
      animation: false,
      scales: { x: { title: { display: true, text: palette.label(x) + " (normalized)" } },
                y: { title: { display: true, text: palette.label(y) + " (normalized)" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
})();
