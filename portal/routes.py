"""Every page path in one place."""

HOME = "/"
API_DOCS = "/api/docs"

# Signed-in pages.
PROJECTS = "/projects"
PROJECT = "/projects/[project_id]"
RUNS = "/runs"
SCHEDULES = "/schedules"
USAGE = "/usage"
BILLING = "/billing"
SETTINGS = "/settings"
ADMIN = "/admin"  # operators only (users.is_operator)

# Identity: public pages, the device approval page, and the HTTP routes the forms post to.
SIGN_IN = "/sign-in"
SIGN_UP = "/sign-up"
DEVICE = "/device"
AUTH_SIGN_IN = "/auth/sign-in"
AUTH_SIGN_UP = "/auth/sign-up"
AUTH_SIGN_OUT = "/auth/sign-out"
AUTH_SESSION = "/auth/session"
OIDC_MOUNT = "/auth/oidc"
OIDC_START = "/auth/oidc/start"
OIDC_CALLBACK = "/auth/oidc/callback"
