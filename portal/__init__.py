"""Tollgate's portal: the Reflex app, the HTTP API and the CLI."""
