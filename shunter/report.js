// The run report's only script: hovering a subtask in the plan highlights its lane in the
// timeline (and back). It reads no run data as code. When it has run, <body data-ok="1"> says so;
// a script error is written into <body data-errors>, so a headless browser's DOM dump shows it.
(function () {
  "use strict";
  window.addEventListener("error", function (e) {
    var b = document.body, was = b.getAttribute("data-errors") || "";
    b.setAttribute("data-errors", was + (e.message || "error") + " (line " + (e.lineno || "?") + "); ");
  });
  function mark(lane, on) {
    document.querySelectorAll('[data-lane]').forEach(function (el) {
      if (el.getAttribute("data-lane") === lane && (el.classList.contains("node") || el.classList.contains("lane"))) {
        el.classList.toggle("hl", on);
      }
    });
  }
  document.querySelectorAll("svg.plan .node, svg.timeline .lane").forEach(function (el) {
    var lane = el.getAttribute("data-lane");
    el.addEventListener("mouseenter", function () { mark(lane, true); });
    el.addEventListener("mouseleave", function () { mark(lane, false); });
  });
  var bars = document.querySelectorAll("svg.timeline rect.bar");
  document.body.setAttribute("data-bars", String(bars.length));
  document.body.setAttribute("data-ok", "1");
})();
