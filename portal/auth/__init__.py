"""Signing in to the portal: the session cookie, the /auth HTTP routes, OpenID Connect, the native forms."""
