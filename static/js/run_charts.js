// Live per-objective curves for reward-model runs (the run page and the compare page).
// Polls the metrics API for points after the last step seen, until the run has finished. The API
// answers in bounded chunks of whole steps: while a response has a `next`, ask again at once.
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

  // The metric keys a canvas draws: those under its data-prefix and those listed in data-keys.
  function keysFor(canvas, metrics) {
    const prefix = canvas.dataset.prefix;
    const listed = (canvas.dataset.keys || "").split(",").filter(Boolean);
    return Object.keys(metrics).filter((key) => (prefix && key.startsWith(prefix)) || listed.includes(key)).sort();
  }

  // Append [step, value] points of each canvas's keys, one line per (run, key).
  function addPoints(metrics, runLabel, colorOffset) {
    document.querySelectorAll("canvas[data-prefix], canvas[data-keys]").forEach((canvas) => {
      const chart = chartFor(canvas);
      const prefix = canvas.dataset.prefix || "";
      keysFor(canvas, metrics).forEach((key, i) => {
        const name = prefix && key.startsWith(prefix) ? key.slice(prefix.length) : key;
        const label = (runLabel ? runLabel + " · " : "") + name;
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

  // The last step in a chunk of metrics, or `since` when the chunk is empty.
  function lastStep(metrics, since) {
    Object.values(metrics).forEach((points) => points.forEach(([step]) => { since = Math.max(since, step); }));
    return since;
  }

  // PPO sample generations, the newest 30; text set with textContent (model output is untrusted).
  async function showSamples(url) {
    const page = await fetchJSON(url + "?page_size=30");
    const body = document.querySelector("#samples tbody");
    body.replaceChildren(...page.results.map((sample) => {
      const row = document.createElement("tr");
      const rewards = Object.entries(sample.rewards).map(([k, v]) => k + " " + v.toFixed(2)).join("\n");
      [String(sample.step), sample.prompt.slice(0, 300), sample.response, rewards, sample.combined.toFixed(2)]
        .forEach((text, i) => {
          const cell = document.createElement("td");
          cell.textContent = text;
          if (i > 0) cell.className = "text";
          row.appendChild(cell);
        });
      return row;
    }));
  }

  // The run page: status, progress with ETA, error, curves, final figures.
  async function followRun(section) {
    let since = -1;
    const started = Date.now();
    let firstStep = null;
    for (;;) {
      const body = await fetchJSON(section.dataset.metricsUrl + "?since=" + since);
      addPoints(body.metrics, "", 0);
      showAccuracy(document.querySelectorAll("#final-accuracy td[data-objective]"), body.metrics);
      since = lastStep(body.metrics, since);
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
      if (body.next) continue;
      if (section.dataset.samplesUrl && !section.dataset.finished) await showSamples(section.dataset.samplesUrl);
      if (FINISHED.includes(body.status)) {
        // Server-rendered figures (before/after, samples) appear with one reload at the end.
        if (section.dataset.reloadOnFinish && !section.dataset.finished) { window.location.reload(); return; }
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
      let since = -1;
      let body;
      do {
        body = await fetchJSON(row.dataset.metricsUrl + "?since=" + since);
        addPoints(body.metrics, "run " + row.dataset.run, i * 3);
        showAccuracy(row.querySelectorAll("td[data-objective]"), body.metrics);
        since = lastStep(body.metrics, since);
      } while (body.next);
    }
    // Every run's points are drawn (assistive technology, and tests, can tell loading from loaded).
    const loading = document.getElementById("compare-charts");
    if (loading) loading.removeAttribute("aria-busy");
  }

  const section = document.getElementById("run-status");
  if (section) followRun(section);
  if (document.getElementById("compare-charts")) compareRuns(Array.from(document.querySelectorAll("tr.compare-run")));
})();
