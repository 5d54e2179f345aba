// The reward-model report on the run page: accuracy with its interval, reliability diagram, agreement with the
// annotators next to their agreement with each other, reward against response length; and the colours of the
// between-head correlation table. The figures come from the page (json_script "report-data"), computed by the
// worker (rm_worker/training/report.py).
(function () {
  "use strict";
  const COLORS = ["#2956c8", "#c8292f", "#1e9e5a", "#b8860b", "#7b3fc8", "#0f8b8d", "#d2691e"];
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const names = Object.keys(report.objectives);
  const figures = names.map((name) => report.objectives[name]);
  const base = { animation: false, plugins: { legend: { position: "bottom" } } };
  const share = { min: 0, max: 1 };

  // Accuracy per objective (points) over its 95% Wilson interval (floating bars); n in the tooltip.
  new Chart(document.getElementById("report-accuracy"), {
    type: "bar",
    data: {
      labels: names,
      datasets: [
        { type: "bar", label: "95% interval", backgroundColor: "#c9d3ee", order: 2,
          data: figures.map((f) => (f.accuracy.n ? [f.accuracy.low, f.accuracy.high] : null)) },
        { type: "line", label: "accuracy", showLine: false, pointRadius: 6, borderColor: "#2956c8", order: 1,
          backgroundColor: "#2956c8", data: figures.map((f) => f.accuracy.rate) },
      ],
    },
    options: { ...base, scales: { y: share },
      plugins: { ...base.plugins, tooltip: { callbacks: {
        footer: (items) => "n = " + figures[items[0].dataIndex].accuracy.n } } } },
  });

  // Reliability: per objective, each non-empty bin's mean predicted P(A) against the share labeled A.
  const reliability = names.map((name, i) => ({
    label: name, showLine: true, borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length],
    data: report.objectives[name].calibration.bins.filter((b) => b.count)
      .map((b) => ({ x: b.mean_predicted, y: b.observed, count: b.count })),
  }));
  new Chart(document.getElementById("report-reliability"), {
    type: "scatter",
    data: { datasets: [{ label: "perfectly calibrated", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true,
      borderDash: [4, 4], borderColor: "#999", pointRadius: 0 }, ...reliability] },
    options: { ...base, aspectRatio: 1, scales: {
      x: { ...share, title: { display: true, text: "predicted P(A preferred) = σ(r_A − r_B)" } },
      y: { ...share, title: { display: true, text: "share labeled A" } } },
      plugins: { ...base.plugins, tooltip: { callbacks: {
        footer: (items) => (items[0].raw.count ? items[0].raw.count + " pairs" : "") } } } },
  });

  const rate = (p) => p.rate;
  new Chart(document.getElementById("report-agreement"), {
    type: "bar",
    data: { labels: names, datasets: [
      { label: "model–annotators", backgroundColor: COLORS[0],
        data: figures.map((f) => rate(f.agreement.model_annotator)) },
      { label: "model, pairs two annotators judged", backgroundColor: "#8fa7e3",
        data: figures.map((f) => rate(f.agreement.model_annotator_same_pairs)) },
      { label: "annotator–annotator (ceiling)", backgroundColor: "#555",
        data: figures.map((f) => rate(f.agreement.annotator_annotator)) },
    ] },
    options: { ...base, scales: { y: share } },
  });

  new Chart(document.getElementById("report-length"), {
    type: "bar",
    data: { labels: names, datasets: [
      { label: "Pearson r", backgroundColor: COLORS[2], data: figures.map((f) => f.length_correlation.pearson) },
      { label: "Spearman ρ", backgroundColor: COLORS[3], data: figures.map((f) => f.length_correlation.spearman) },
    ] },
    options: { ...base, scales: { y: { min: -1, max: 1, title: { display: true,
      text: "r with length (" + report.length_unit + ")" } } } },
  });

  // Correlation cells: blue for positive, red for negative, stronger as |r| grows.
  document.querySelectorAll("#head-correlation td[data-value]").forEach((cell) => {
    if (cell.dataset.value === "") return;
    const r = Number(cell.dataset.value);
    cell.style.backgroundColor = (r >= 0 ? "rgba(41, 86, 200, " : "rgba(200, 41, 47, ") + Math.abs(r) * 0.5 + ")";
  });
})();
