"""``gensc studio``: a local web page that sends one image at a time through the sender and shows
what happened to it (see docs/studio.md).

Modules, top down: ``server`` (the command and the HTTP routes) > ``jobs`` (sessions, uploads,
sends and sweeps in worker threads; no HTTP) > ``settings`` (the studio's bounds, a send's
settings, the refusals) | ``views`` (a client record -> what the page shows; pure functions) >
``api`` (every gensc name the studio uses, imported in that one module).
``static/`` holds the page: plain HTML, CSS and JavaScript, nothing fetched from elsewhere.
"""
