// The reward-model form shows the settings of the selected mode only: a field whose input carries
// data-modes (from the config schema) is hidden and disabled, so it is not sent, under the other modes.
// Without this script every field shows, and the server ignores the ones the mode does not read.
(function () {
  "use strict";
  const form = document.getElementById("train-form");
  if (!form) return;
  const mode = form.querySelector("select[name=mode]");

  function showModeFields() {
    form.querySelectorAll("[data-modes]").forEach((input) => {
      const applies = input.dataset.modes.split(" ").includes(mode.value);
      input.disabled = !applies;
      input.closest("div").hidden = !applies;
    });
  }

  mode.addEventListener("change", showModeFields);
  showModeFields();
})();
