// Search suggestions as you type; everything else works without this script.
(function () {
  "use strict";
  var input = document.querySelector("[data-suggest]");
  if (!input) return;
  var list = document.getElementById("suggestions");
  var timer = null, active = -1, asked = 0;

  function close() {
    list.hidden = true;
    list.innerHTML = "";
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }
  function choose(text) {
    input.value = text;
    close();
    input.form.submit();
  }
  function show(words) {
    list.innerHTML = "";
    words.forEach(function (word, i) {
      var li = document.createElement("li");
      li.id = "suggestion-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.textContent = word;
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(word); });
      list.appendChild(li);
    });
    list.hidden = words.length === 0;
    input.setAttribute("aria-expanded", words.length ? "true" : "false");
  }
  function move(step) {
    var items = list.querySelectorAll("li");
    if (!items.length) return;
    if (active >= 0) items[active].setAttribute("aria-selected", "false");
    active = (active + step + items.length) % items.length;
    items[active].setAttribute("aria-selected", "true");
    input.setAttribute("aria-activedescendant", items[active].id);
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var prefix = input.value.trim();
    if (!prefix) { close(); return; }
    timer = setTimeout(function () {
      var mine = ++asked;
      fetch("/api/search/suggest?limit=6&prefix=" + encodeURIComponent(prefix))
        .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
        .then(function (body) { if (mine === asked) show(body.suggestions || []); })
        .catch(close);
    }, 120);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown") { e.preventDefault(); move(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); move(-1); }
    else if (e.key === "Escape") { close(); }
    else if (e.key === "Enter" && active >= 0) {
      e.preventDefault();
      choose(list.querySelectorAll("li")[active].textContent);
    }
  });
  input.addEventListener("blur", function () { setTimeout(close, 150); });
})();
