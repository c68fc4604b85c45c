// Progressive enhancement only: every journey works without this file.
// Moves keyboard focus to the error summary, or to the "sent" confirmation, so screen readers
// announce it (without JS, the confirmation's autofocus attribute and the #confirmation
// fragment do the same).
document.addEventListener("DOMContentLoaded", function () {
  var target = document.getElementById("erreurs") || document.getElementById("confirmation");
  if (target) { target.focus(); }
  keepUnsentReply();
});

// A reply posted after the session expired comes back on its own page (data-brouillon-pour).
// Keep it in this tab's sessionStorage until it is sent: after the new login, the
// conversation's form gets it back and the conversation list links to it.
function keepUnsentReply() {
  var store;
  try { store = window.sessionStorage; } catch (e) { return; }
  if (!store) { return; }
  var prefix = "brouillon:";
  var kept = document.querySelector("[data-brouillon-pour]");
  if (kept) {
    store.setItem(prefix + kept.getAttribute("data-brouillon-pour"), kept.value);
    return;
  }
  if (/[?&]info=deconnecte\b/.test(location.search)) {  // logged out: forget every draft
    for (var i = store.length - 1; i >= 0; i--) {
      var k = store.key(i);
      if (k && k.indexOf(prefix) === 0) { store.removeItem(k); }
    }
    return;
  }
  var key = prefix + location.pathname;
  if (document.getElementById("confirmation")) { store.removeItem(key); return; }
  var draft = store.getItem(key);
  var box = document.getElementById("message");
  if (draft && box && box.tagName === "TEXTAREA") {
    if (!box.value) { box.value = draft; }
    var note = document.createElement("p");
    note.className = "alerte info";
    note.setAttribute("role", "status");
    note.textContent = "Votre réponse non envoyée a été remise ici : relisez-la, puis envoyez-la.";
    box.parentNode.insertBefore(note, box);
    return;
  }
  if (location.pathname === "/conversations") {
    for (var j = 0; j < store.length; j++) {
      var name = store.key(j);
      if (name && name.indexOf(prefix + "/conversations/") === 0) {
        var alert = document.createElement("div");
        alert.className = "alerte info";
        alert.setAttribute("role", "status");
        var link = document.createElement("a");
        link.href = name.slice(prefix.length) + "#reponse";
        link.textContent = "la reprendre et l'envoyer";
        var p = document.createElement("p");
        p.appendChild(document.createTextNode("Une réponse n'a pas été envoyée avant l'expiration de votre session : "));
        p.appendChild(link);
        alert.appendChild(p);
        var h1 = document.querySelector("main h1");
        if (h1) { h1.parentNode.insertBefore(alert, h1.nextSibling); }
        break;
      }
    }
  }
}
