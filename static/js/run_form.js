// A dashboard run form shows the settings of the selected mode only: a field whose input carries data-modes
// (from the config schema) is hidden and disabled, so it is not sent, under the other modes. The mode is the
// form's select marked data-mode-select (the reward model's mode, PPO's scalarization).
// Without this script every field shows, and the server ignores the ones the mode does not read.
(function () {
  "use strict";
  document.querySelectorAll("select[data-mode-select]").forEach((mode) => {
    const form = mode.form;

    function showModeFields() {
      form.querySelectorAll("[data-modes]").forEach((input) => {
        const applies = input.dataset.modes.split(" ").includes(mode.value);
        input.disabled = !applies;
        input.closest(".field").hidden = !applies;
      });
    }

    mode.addEventListener("change", showModeFields);
    showModeFields();
  });
})();
