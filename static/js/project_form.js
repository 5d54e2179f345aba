// The New project form fills the slug from the name while the name is typed, until the slug is edited by
// hand. slugify() does what django.utils.text.slugify does, which the server uses for a blank slug, so what
// the page shows is what the server would make.
(function () {
  "use strict";
  const name = document.getElementById("id_name");
  const slug = document.getElementById("id_slug");
  if (!name || !slug) return;
  const maxLength = slug.maxLength > 0 ? slug.maxLength : 64;

  function slugify(text) {
    const ascii = text.normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
    // Python's \s also matches \x1c-\x1f, JavaScript's does not.
    const trim = (value) => value.replace(/^[-_]+|[-_]+$/g, "");
    const whole = trim(ascii.toLowerCase().replace(/[^\w\s\x1c-\x1f-]/g, "").replace(/[-\s\x1c-\x1f]+/g, "-"));
    return trim(whole.slice(0, maxLength));
  }

  // The slug follows the name while it is blank or still the name's slug (a form shown again after an error).
  let follows = slug.value === "" || slug.value === slugify(name.value);
  name.addEventListener("input", () => {
    if (follows) slug.value = slugify(name.value);
  });
  slug.addEventListener("input", () => {
    follows = slug.value === "";
  });
})();
