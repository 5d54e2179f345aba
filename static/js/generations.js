// The generations page keeps its unfinished rows live: each row with a data-detail-url asks the API for its
// generation every few seconds and shows the status, stage, progress and counts; once every row has finished
// the page reloads (Cancel buttons go, errors show) and polling stops. Without this script, reload by hand.
(function () {
  "use strict";
  const POLL_MS = 3000;
  const FINISHED = ["succeeded", "failed", "cancelled"];

  async function refresh(row) {
    const response = await fetch(row.dataset.detailUrl, { headers: { Accept: "application/json" },
                                                          credentials: "same-origin" });
    if (!response.ok) return false;
    const generation = await response.json();
    const stage = generation.status === "running" && generation.stage ? " · " + generation.stage : "";
    const status = generation.cancel_requested && !FINISHED.includes(generation.status) ? "cancelling…"
      : generation.status;
    row.querySelector(".status").textContent = status + stage;
    const progress = row.querySelector("progress");
    progress.max = generation.total_steps || 1;
    progress.value = generation.step;
    row.querySelector(".step").textContent = generation.step + " / " + generation.total_steps;
    row.querySelector(".created").textContent = generation.created;
    row.querySelector(".skipped").textContent = generation.skipped;
    return FINISHED.includes(generation.status);
  }

  const rows = Array.from(document.querySelectorAll("#generations tr[data-detail-url]"));
  if (!rows.length) return;
  const timer = setInterval(async () => {
    const finished = await Promise.all(rows.map((row) => refresh(row).catch(() => false)));
    if (finished.every(Boolean)) {
      clearInterval(timer);
      window.location.reload();
    }
  }, POLL_MS);
})();
