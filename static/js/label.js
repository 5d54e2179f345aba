// Keyboard-first labeling. The form works without this script; it only adds keys.
(function () {
  "use strict";
  const form = document.getElementById("judgment-form");
  if (!form) return;
  const objectives = Array.from(form.querySelectorAll("fieldset.objective"));
  const started = performance.now();
  const missingMessage = document.getElementById("missing-message");
  let active = 0;
  // "a" or "b" waits for a digit: that response's flag to toggle.
  let flagSide = null;

  function toggleFlag(side, digit) {
    const boxes = form.querySelectorAll(`.flag-side[data-side="${side}"] input[type=checkbox]`);
    const box = boxes[digit - 1];
    if (box) box.checked = !box.checked;
  }

  function setActive(index) {
    active = Math.max(0, Math.min(objectives.length - 1, index));
    objectives.forEach((fieldset, i) => fieldset.classList.toggle("active", i === active));
    objectives[active].scrollIntoView({ block: "nearest" });
  }

  function firstUnanswered() {
    return objectives.findIndex((fieldset) => !fieldset.querySelector("input[type=radio]:checked"));
  }

  function unansweredNames() {
    return objectives.filter((fieldset) => !fieldset.querySelector("input[type=radio]:checked"))
      .map((fieldset) => fieldset.dataset.name);
  }

  // The server says the same when the form arrives without a judgment (JudgmentForm.clean).
  function showMissing() {
    const names = unansweredNames();
    missingMessage.textContent = names.length ? `Missing a judgment for: ${names.join(", ")}.` : "";
  }

  function submit() {
    const missing = firstUnanswered();
    if (missing !== -1) {
      setActive(missing);
      objectives.forEach((fieldset) => {
        if (!fieldset.querySelector("input[type=radio]:checked")) fieldset.classList.add("missing");
      });
      showMissing();
      return;
    }
    form.querySelector("input[name=time_spent_ms]").value = Math.round(performance.now() - started);
    // Not form.submit(): the button with id="submit" shadows that method on the form element.
    HTMLFormElement.prototype.submit.call(form);
  }

  objectives.forEach((fieldset, i) => {
    fieldset.addEventListener("click", () => setActive(i));
    fieldset.addEventListener("change", () => {
      fieldset.classList.remove("missing");
      if (missingMessage.textContent) showMissing();
    });
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.matches("textarea, input[type=text], select");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // Letter keys work with Shift or Caps Lock too.
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const side = flagSide;
    flagSide = null;
    if (side && /^[1-9]$/.test(key)) {
      toggleFlag(side, Number(key)); event.preventDefault();
    } else if ((key === "a" || key === "b") && form.querySelector(".flag-side")) {
      flagSide = key.toUpperCase(); event.preventDefault();
    } else if (/^[1-7]$/.test(key)) {
      const radios = objectives[active].querySelectorAll("input[type=radio]");
      radios[Number(key) - 1].checked = true;
      objectives[active].classList.remove("missing");
      if (missingMessage.textContent) showMissing();
      if (active < objectives.length - 1) setActive(active + 1);
      event.preventDefault();
    } else if (key === "ArrowDown" || key === "j") {
      setActive(active + 1); event.preventDefault();
    } else if (key === "ArrowUp" || key === "k") {
      setActive(active - 1); event.preventDefault();
    } else if (key === "r") {
      objectives[active].querySelector("textarea").focus(); event.preventDefault();
    } else if (key === "Enter") {
      event.preventDefault(); submit();
    } else if (key === "s" && document.getElementById("skip-form")) {
      event.preventDefault(); document.getElementById("skip-form").submit();
    } else if (key === "Backspace" && form.dataset.backUrl) {
      event.preventDefault(); window.location.assign(form.dataset.backUrl);
    } else if (key === "n" && form.dataset.forwardUrl) {
      event.preventDefault(); window.location.assign(form.dataset.forwardUrl);
    }
  });

  form.addEventListener("submit", () => {
    form.querySelector("input[name=time_spent_ms]").value = Math.round(performance.now() - started);
  });
  setActive(Math.max(0, firstUnanswered()));
})();
