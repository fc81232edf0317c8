// Starts Swagger UI on /docs: FastAPI's own page does this in an inline script, which a CSP of
// script-src 'self' refuses.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  // No badge from the validator's site: the page loads nothing from elsewhere.
  validatorUrl: null,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
