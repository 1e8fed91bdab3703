// The dashboard's own script: "Open the trace in Perfetto" hands the job's trace to the
// Perfetto UI by postMessage (its documented way to open a trace from another page), so the
// trace never needs to be reachable from Perfetto itself. Nothing runs until the click.
(function () {
  "use strict";
  var PERFETTO = "https://ui.perfetto.dev";

  function openInPerfetto(button) {
    fetch(button.dataset.trace, { credentials: "same-origin" })
      .then(function (answer) { return answer.arrayBuffer(); })
      .then(function (buffer) {
        var target = window.open(PERFETTO);
        var timer = setInterval(function () { target.postMessage("PING", PERFETTO); }, 100);
        window.addEventListener("message", function onMessage(event) {
          if (event.source !== target || event.data !== "PONG") { return; }
          clearInterval(timer);
          window.removeEventListener("message", onMessage);
          target.postMessage({ perfetto: { buffer: buffer, title: document.title } }, PERFETTO);
        });
      });
  }

  // A click (or Enter) on a node of a job's graph fetches that node's panel with htmx.
  function showNode(node) {
    var box = node.closest("[data-nodes]");
    if (!box) { return; }
    var url = box.dataset.nodes + encodeURIComponent(node.dataset.node);
    htmx.ajax("GET", url, { target: "#node-panel", swap: "innerHTML" });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.perfetto");
    if (button) { openInPerfetto(button); }
    var node = event.target.closest("svg.graph g.node");
    if (node) { showNode(node); }
  });
  document.addEventListener("keydown", function (event) {
    var node = event.key === "Enter" && event.target.closest && event.target.closest("svg.graph g.node");
    if (node) { showNode(node); }
  });
})();
