// The Rounds page: per objective, each round's reward-model accuracy on the fixed evaluation set and its PPO
// policy's held-out normalized reward, one line per objective across rounds (json_script "rounds-chart"; null
// where a round has no figure yet, drawn as a gap). Colours and names from static/js/palette.js.
(function () {
  "use strict";
  const palette = window.mormPalette;
  const chart = JSON.parse(document.getElementById("rounds-chart").textContent);

  function draw(canvasId, series, yTitle, yBounds) {
    new Chart(document.getElementById(canvasId), {
      type: "line",
      data: {
        labels: chart.rounds.map((number) => `round ${number}`),
        datasets: Object.keys(series).map((key) => ({
          label: palette.label(key), data: series[key], spanGaps: false,
          borderColor: palette.color(key), backgroundColor: palette.color(key),
        })),
      },
      options: {
        animation: false,
        plugins: { legend: { position: "bottom" } },
        scales: { y: { ...yBounds, title: { display: true, text: yTitle } } },
      },
    });
  }

  draw("chart-round-accuracy", chart.accuracy, "pairwise accuracy", { min: 0, max: 1 });
  draw("chart-round-reward", chart.policy_reward, "normalized reward", {});
})();
