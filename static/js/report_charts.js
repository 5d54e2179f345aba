// The reward-model report on the run page: accuracy with its interval, reliability diagram, agreement with the
// annotators next to their agreement with each other, reward against response length; and the colours of the
// between-head correlation table. The figures come from the page (json_script "report-data"), computed by the
// worker (rm_worker/training/report.py).
(function () {
  "use strict";
  const palette = window.mormPalette;  // static/js/palette.js: each objective's colour, as in every chart
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const names = Object.keys(report.objectives);
  const figures = names.map((name) => report.objectives[name]);
  const labels = names.map(palette.label);
  const objectiveColors = names.map((name) => palette.color(name));
  const base = { animation: false, plugins: { legend: { position: "bottom" } } };
  const share = { min: 0, max: 1 };

  // Accuracy per objective (points) over its 95% Wilson interval (floating bars); n in the tooltip.
  new Chart(document.getElementById("report-accuracy"), {
    type: "bar",
    data: {
      labels: labels,
      datasets: [
        { type: "bar", label: "95% interval", backgroundColor: objectiveColors.map((c) => c + "40"), order: 2,
          data: figures.map((f) => (f.accuracy.n ? [f.accuracy.low, f.accuracy.high] : null)) },
        { type: "line", label: "accuracy", showLine: false, pointRadius: 6, borderColor: objectiveColors, order: 1,
          backgroundColor: objectiveColors, data: figures.map((f) => f.accuracy.rate) },
      ],
    },
    options: { ...base, scales: { y: share },
      plugins: { ...base.plugins, tooltip: { callbacks: {
        footer: (items) => "n = " + figures[items[0].dataIndex].accuracy.n } } } },
  });

  // Reliability: per objective, each non-empty bin's mean predicted P(A) against the share labeled A.
  const reliability = names.map((name, i) => ({
    label: labels[i], showLine: true, borderColor: objectiveColors[i], backgroundColor: objectiveColors[i],
    data: report.objectives[name].calibration.bins.filter((b) => b.count)
      .map((b) => ({ x: b.mean_predicted, y: b.observed, count: b.count })),
  }));
  new Chart(document.getElementById("report-reliability"), {
    type: "scatter",
    data: { datasets: [{ label: "perfectly calibrated", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true,
      borderDash: [4, 4], borderColor: palette.color("", 1), pointRadius: 0 }, ...reliability] },
    options: { ...base, aspectRatio: 1, scales: {
      x: { ...share, title: { display: true, text: "predicted P(A preferred) = σ(r_A − r_B)" } },
      y: { ...share, title: { display: true, text: "share labeled A" } } },
      plugins: { ...base.plugins, tooltip: { callbacks: {
        footer: (items) => (items[0].raw.count ? items[0].raw.count + " pairs" : "") } } } },
  });

  const rate = (p) => p.rate;
  new Chart(document.getElementById("report-agreement"), {
    type: "bar",
    data: { labels: labels, datasets: [
      { label: "model–annotators", backgroundColor: palette.color("", 0),
        data: figures.map((f) => rate(f.agreement.model_annotator)) },
      { label: "model, pairs two annotators judged", backgroundColor: palette.color("", 4),
        data: figures.map((f) => rate(f.agreement.model_annotator_same_pairs)) },
      { label: "annotator–annotator (ceiling)", backgroundColor: palette.color("", 1),
        data: figures.map((f) => rate(f.agreement.annotator_annotator)) },
    ] },
    options: { ...base, scales: { y: share } },
  });

  new Chart(document.getElementById("report-length"), {
    type: "bar",
    data: { labels: labels, datasets: [
      { label: "Pearson r", backgroundColor: palette.color("", 0), data: figures.map((f) => f.length_correlation.pearson) },
      { label: "Spearman ρ", backgroundColor: palette.color("", 1),
        data: figures.map((f) => f.length_correlation.spearman) },
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
