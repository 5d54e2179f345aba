// Live per-objective curves for reward-model runs (the run page and the compare page).
// Polls the metrics API for points after the last step seen, until the run has finished. The API
// answers in bounded chunks of whole steps: while a response has a `next`, ask again at once.
(function () {
  "use strict";
  const FINISHED = ["succeeded", "failed", "cancelled"];
  const palette = window.mormPalette;
  const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];
  const charts = {};

  function chartFor(canvas) {
    if (!charts[canvas.id]) {
      charts[canvas.id] = new Chart(canvas, {
        type: "line",
        data: { datasets: [] },
        options: {
          animation: false, parsing: false, normalized: true,
          scales: { x: palette.stepAxis() },
          plugins: { legend: { position: "bottom" } },
          // Few points (a short or cancelled run) show as dots; long curves as lines.
          elements: { point: { radius: (ctx) => (ctx.dataset.data.length <= 30 ? 3 : 0) } },
        },
      });
    }
    return charts[canvas.id];
  }

  // The metric keys a canvas draws: those under its data-prefix and those listed in data-keys.
  function keysFor(canvas, metrics) {
    const prefix = canvas.dataset.prefix;
    const listed = (canvas.dataset.keys || "").split(",").filter(Boolean);
    return Object.keys(metrics).filter((key) => (prefix && key.startsWith(prefix)) || listed.includes(key));
  }

  // Append [step, value] points of each canvas's keys, one line per (run, key): the objective's colour, and on
  // the compare page a dash pattern per run.
  function addPoints(metrics, run, runIndex) {
    document.querySelectorAll("canvas[data-prefix], canvas[data-keys]").forEach((canvas) => {
      const chart = chartFor(canvas);
      const prefix = canvas.dataset.prefix || "";
      keysFor(canvas, metrics).forEach((key) => {
        const name = prefix && key.startsWith(prefix) ? key.slice(prefix.length) : key;
        const id = run + "|" + key;
        let dataset = chart.data.datasets.find((d) => d.id === id);
        if (!dataset) {
          const others = chart.data.datasets.filter((d) => !palette.isObjective(d.name) && d.run === run).length;
          const color = palette.color(name, others);
          dataset = { id: id, run: run, name: name, label: (run ? "run " + run + " · " : "") + palette.label(name),
            data: [], borderColor: color, backgroundColor: color, borderDash: DASHES[runIndex % DASHES.length] };
          chart.data.datasets.push(dataset);
          chart.data.datasets.sort((a, b) => palette.compareKeys(a.name, b.name) || (a.run < b.run ? -1 : 1));
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

  // "about 40 s left", "about 3 min left", "about 2 h 5 min left"; "almost done" once the steps should be over
  // (a slow last step, or the evaluation and export after it: the stage line says which).
  function etaText(seconds) {
    if (seconds < 1) return "· almost done";
    const s = Math.ceil(seconds);
    if (s < 60) return "· about " + s + " s left";
    const minutes = Math.round(s / 60);
    if (minutes < 60) return "· about " + minutes + " min left";
    return "· about " + Math.floor(minutes / 60) + " h " + (minutes % 60) + " min left";
  }

  // Status, stage, progress and ETA as the server last reported them (the ETA is the server's: a moving
  // average of recent step times, so it does not drift while the page waits between polls).
  function showProgress(body) {
    const cancelling = body.cancel_requested && !FINISHED.includes(body.status);
    document.getElementById("status").textContent = cancelling ? "cancelling…" : body.status;
    document.getElementById("stage").textContent = body.stage ? body.stage + "…" : "";
    const progress = document.getElementById("progress");
    progress.max = Math.max(body.total_steps, 1);
    progress.value = body.step;
    document.getElementById("step").textContent = body.step + " / " + (body.total_steps || "?");
    document.getElementById("eta").textContent = body.eta_seconds === null ? "" : etaText(body.eta_seconds);
    // A "run queued" message is true only while the run waits.
    if (body.status !== "queued") document.querySelectorAll(".message.run-queued").forEach((m) => m.remove());
  }

  // Cancel at once on the page (the request goes on in the background; the polls then show the server's state).
  function cancelOnClick(form) {
    if (!form) return;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      button.textContent = "Cancelling…";
      document.getElementById("status").textContent = "cancelling…";
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then((response) => { if (!response.ok) throw new Error(String(response.status)); })
        .catch(() => { button.disabled = false; button.textContent = "Cancel"; });
    });
  }

  // The run page: status, progress with ETA, error, curves, final figures.
  async function followRun(section) {
    let since = -1;
    const started = Date.now();
    cancelOnClick(document.getElementById("cancel-form"));
    for (;;) {
      const body = await fetchJSON(section.dataset.metricsUrl + "?since=" + since);
      addPoints(body.metrics, "", 0);
      showAccuracy(document.querySelectorAll("#final-accuracy td[data-objective]"), body.metrics);
      since = lastStep(body.metrics, since);
      showProgress(body);
      if (body.next) continue;
      if (section.dataset.samplesUrl && !section.dataset.finished) await showSamples(section.dataset.samplesUrl);
      if (FINISHED.includes(body.status)) {
        // Server-rendered figures (before/after, samples) appear with one reload at the end.
        if (section.dataset.reloadOnFinish && !section.dataset.finished) { window.location.reload(); return; }
        const detail = await fetchJSON(section.dataset.detailUrl);
        document.getElementById("error").textContent = detail.error;
        const cancel = document.getElementById("cancel-form");
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
        addPoints(body.metrics, row.dataset.run, i);
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
