// Starts Swagger UI on the page's #swagger-ui element, on the OpenAPI document its
// data-openapi attribute names. A file of its own, not an inline script, so /docs runs under a
// Content-Security-Policy whose script-src is 'self' only.
(function () {
  "use strict";
  var box = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: box.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // else Swagger UI sends the document to an outside validator
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
