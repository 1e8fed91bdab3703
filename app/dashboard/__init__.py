"""The web dashboard: templates, vendored browser assets and the pure helpers pages use
(the graph layout, its SVG, the session cookie). Its routes are HTTP mapping in ``app/api``."""
