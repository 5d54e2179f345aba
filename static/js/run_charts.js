// Live per-objective curves for reward-model runs (the run page and the compare page).
// Polls the metrics API for points after the last step seen, until the run has finished.
(function () {
  "use strict";
  const FINISHED = ["succeeded", "failed", "cancelled"];
  const COLORS = ["#2956c8", "#c8292f", "#1e9e5a", "#b8860b", "#7b3fc8", "#0f8b8d", "#d2691e"];
  const charts = {};

  function chartFor(canvas) {
    if (!charts[canvas.id]) {
      charts[canvas.id] = new Chart(canvas, {
        type: "line",
        data: { datasets: [] },
        options: {
          animation: false, parsing: false, normalized: true,
          scales: { x: { type: "linear", title: { display: true, text: "step" } } },
          plugins: { legend: { position: "bottom" } },
        },
      });
    }
    return charts[canvas.id];
  }

  // Append [step, value] points of every key under each canvas's prefix, one line per (run, objective).
  function addPoints(metrics, runLabel, colorOffset) {
    document.querySelectorAll("canvas[data-prefix]").forEach((canvas) => {
      const chart = chartFor(canvas);
      const prefix = canvas.dataset.prefix;
      Object.keys(metrics).filter((key) => key.startsWith(prefix)).sort().forEach((key, i) => {
        const label = (runLabel ? runLabel + " · " : "") + key.slice(prefix.length);
        let dataset = chart.data.datasets.find((d) => d.label === label);
        if (!dataset) {
          const color = COLORS[(colorOffset + i) % COLORS.length];
          dataset = { label: label, data: [], borderColor: color, backgroundColor: color, pointRadius: 1 };
          chart.data.datasets.push(dataset);
        }
        metrics[key].forEach(([x, y]) => dataset.data.push({ x: x, y: y }));
      });
      chart.update();
    });
  }

  function lastValues(metrics, prefix) {
    const result = {};
    Object.keys(metrics).filter((k) => k.startsWith(prefix)).forEach((k) => {
      const points = metrics[k];
      if (points.length) result[k.slice(prefix.length)] = points[points.length - 1][1];
    });
    return result;
  }

  function showAccuracy(cells, metrics) {
    const values = lastValues(metrics, "eval/accuracy/");
    cells.forEach((cell) => {
      if (cell.dataset.objective in values) cell.textContent = values[cell.dataset.objective].toFixed(3);
    });
  }

  async function fetchJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  // The run page: status, progress with ETA, error, curves, final accuracies.
  async function followRun(section) {
    let since = -1;
    const started = Date.now();
    let firstStep = null;
    for (;;) {
      const body = await fetchJSON(section.dataset.metricsUrl + "?since=" + since);
      addPoints(body.metrics, "", 0);
      showAccuracy(document.querySelectorAll("#final-accuracy td[data-objective]"), body.metrics);
      Object.values(body.metrics).forEach((points) => points.forEach(([step]) => { since = Math.max(since, step); }));
      document.getElementById("status").textContent = body.status;
      const progress = document.getElementById("progress");
      progress.max = Math.max(body.total_steps, 1);
      progress.value = body.step;
      document.getElementById("step").textContent = body.step + " / " + body.total_steps;
      if (firstStep === null && body.step > 0) firstStep = { step: body.step, at: Date.now() };
      if (firstStep && body.step > firstStep.step && body.total_steps > body.step) {
        const perStep = (Date.now() - firstStep.at) / (body.step - firstStep.step);
        document.getElementById("eta").textContent = "· about " +
          Math.ceil((perStep * (body.total_steps - body.step)) / 1000) + " s left";
      }
      if (FINISHED.includes(body.status)) {
        document.getElementById("eta").textContent = "";
        const detail = await fetchJSON(section.dataset.detailUrl);
        document.getElementById("error").textContent = detail.error;
        const cancel = document.getElementById("cancel");
        if (cancel) cancel.remove();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Date.now() - started < 60000 ? 1000 : 3000));
    }
  }

  async function compareRuns(rows) {
    for (const [i, row] of rows.entries()) {
      const body = await fetchJSON(row.dataset.metricsUrl);
      addPoints(body.metrics, "run " + row.dataset.run, i * 3);
      showAccuracy(row.querySelectorAll("td[data-objective]"), body.metrics);
    }
  }

  const section = document.getElementById("run-status");
  if (section) followRun(section);
  const rows = Array.from(document.querySelectorAll("tr.compare-run"));
  if (rows.length) compareRuns(rows);
})();
