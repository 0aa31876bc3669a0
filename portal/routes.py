"""Every page path in one place."""

HOME = "/"
API_DOCS = "/api/docs"
