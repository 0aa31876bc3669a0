"""What keeps a browser's session to this app's own origin: the Host, Origin and proxy checks and the
security headers (middleware.py), installed around the whole app (reflex_app.py) and the API alone.

origin.py imports only the standard library and settings, so rxconfig.py can read the allowed origins
without building the app.
"""
