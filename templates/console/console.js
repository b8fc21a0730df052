// Kairos console: validate the rules as they are typed (progressive: the
// page works without this file). It posts the editor's form to the same
// validate action the Validate button uses (CSRF token included) and shows
// the answer's problems, each at its line, above the editor.
(function () {
  "use strict";
  var form = document.getElementById("editor");
  var text = document.getElementById("text");
  if (!form || !text || !window.fetch || !window.DOMParser) { return; }
  var status = document.createElement("p");
  status.id = "live";
  status.setAttribute("aria-live", "polite");
  text.parentNode.insertBefore(status, text);
  var timer = null;
  var asked = 0;

  function show(found) {
    var old = document.getElementById("problems");
    if (old) { old.parentNode.removeChild(old); }
    if (found) { text.parentNode.insertBefore(document.importNode(found, true), status); }
  }

  function check() {
    var seq = ++asked;
    var body = new URLSearchParams(new FormData(form));
    body.set("action", "validate");
    status.textContent = "Checking…";
    // getAttribute: `form.action` is the buttons named "action".
    fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        if (seq !== asked) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var found = doc.getElementById("problems");
        show(found);
        var notice = doc.getElementById("notice") || doc.getElementById("error");
        status.textContent = found ? "Problems found while typing:" : (notice ? notice.textContent : "");
      })
      .catch(function () { if (seq === asked) { status.textContent = "Could not check (press Validate)."; } });
  }

  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
})();

// A sample file for the backtest: read into the form's events field
// (progressive: without this file, paste the events there).
(function () {
  "use strict";
  var file = document.getElementById("sample-file");
  var sample = document.getElementById("sample");
  if (!file || !sample || !window.FileReader) { return; }
  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    if (!chosen) { return; }
    var reader = new FileReader();
    reader.onload = function () { sample.value = String(reader.result); };
    reader.readAsText(chosen);
  });
})();
