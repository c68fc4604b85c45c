// Progressive enhancement only: every journey works without this file.
// Moves keyboard focus to the error summary so screen readers announce it.
document.addEventListener("DOMContentLoaded", function () {
  var errors = document.getElementById("erreurs");
  if (errors) { errors.focus(); }
});
