"""The LLM gateway's pure heart: request/response translation, token estimates and hold arithmetic (no I/O)."""
