// The one palette of the app's charts: each objective keeps one colour in every chart (the colour follows the
// objective's order in the project, from the page's json_script "chart-objectives": [{key, name}, ...]); series
// that are not an objective (combined reward, KL, losses, runs) take colours no objective uses. Also the legend
// names of metric keys and the integer step axis. Load it before any chart script.
(function () {
  "use strict";
  const OBJECTIVE_COLORS = ["#2956c8", "#d9731a", "#1e9e5a", "#b8329e", "#8c6d1f", "#0f8b8d", "#7b3fc8", "#c8292f"];
  const OTHER_COLORS = ["#222222", "#8a8a8a", "#5b4636", "#a3a33a", "#4a6670"];
  // Legend names of the metric keys that are not objectives.
  const LABELS = {
    combined: "combined reward",
    "train/loss": "loss (weighted sum)",
    "ppo/kl": "KL to the reference",
    "ppo/kl_coef": "KL coefficient",
    "ppo/lagrange_multiplier": "Lagrange multiplier λ",
    "ppo/policy_loss": "policy loss",
    "ppo/value_loss": "value loss",
    "ppo/clip_fraction": "clipped share",
    "ppo/eos_fraction": "share ending with EOS",
  };
  const source = document.getElementById("chart-objectives");
  const objectives = source ? JSON.parse(source.textContent) : [];
  const order = objectives.map((o) => o.key);

  function isObjective(key) {
    return order.includes(key);
  }

  // The objective's colour; any other series gets the i-th colour no objective uses.
  function color(key, i) {
    const at = order.indexOf(key);
    if (at >= 0) return OBJECTIVE_COLORS[at % OBJECTIVE_COLORS.length];
    return OTHER_COLORS[(i || 0) % OTHER_COLORS.length];
  }

  // A legend name: the objective's name, a known metric's, else the key's last part in words.
  function label(key) {
    const objective = objectives.find((o) => o.key === key);
    if (objective) return objective.name;
    if (LABELS[key]) return LABELS[key];
    return key.split("/").pop().replace(/_/g, " ");
  }

  // Objectives sort in project order, the other series after them.
  function compareKeys(a, b) {
    const rank = (key) => (isObjective(key) ? order.indexOf(key) : order.length);
    return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
  }

  // A step axis shows whole steps only (no 1.5).
  function stepAxis() {
    return { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } };
  }

  window.mormPalette = { objectives, isObjective, color, label, compareKeys, stepAxis };
})();
