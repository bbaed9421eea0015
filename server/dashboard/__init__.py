"""GET /dashboard: one self-contained page for people, and the JSON it polls.

`page.html` and the vendored uPlot (MIT, its licence beside it in assets/) are served by
the app itself: no CDN, no web font, works with no internet. `service.Dashboard` builds
the JSON; `server.routes.dashboard` serves both.
"""
