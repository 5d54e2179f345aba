// Scatter of finished PPO runs on two objectives, the reference policy marked.
(function () {
  "use strict";
  const points = JSON.parse(document.getElementById("tradeoff-points").textContent);
  const form = document.getElementById("axes");
  const x = form.querySelector("select[name=x]").value;
  const y = form.querySelector("select[name=y]").value;
  const reference = points.length ? [{ x: points[0].ref_x, y: points[0].ref_y }] : [];
  new Chart(document.getElementById("tradeoff"), {
    type: "scatter",
    data: {
      datasets: [
        { label: "reference policy", data: reference, pointStyle: "crossRot", pointRadius: 10, borderColor: "#555" },
        ...points.map((p, i) => ({
          label: "run " + p.run + " (" + p.label + ")",
          data: [{ x: p.x, y: p.y }],
          pointRadius: 7,
          backgroundColor: ["#2956c8", "#c8292f", "#1e9e5a", "#b8860b", "#7b3fc8", "#0f8b8d"][i % 6],
        })),
      ],
    },
    options: {
      animation: false,
      scales: { x: { title: { display: true, text: x + " (normalized)" } },
                y: { title: { display: true, text: y + " (normalized)" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
})();
