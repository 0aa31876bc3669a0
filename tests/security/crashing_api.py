"""The API as `uvicorn portal.api.asgi:app` serves it, plus routes that fail the way a bug would, holding
secrets: for tests/security/test_form_nul_and_logs.py, which greps the server's log for them.

    uvicorn tests.security.crashing_api:app
"""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy import text

from billing_core.keys import ACCOUNT_KEY_PREFIX, HMAC_KEY_PREFIX, generate
from billing_core.passwords import hash_password
from portal.api.asgi import app

log = logging.getLogger("tollgate.api")
PASSWORD = "correct horse 1843"


@app.get("/test/crash/message")
def crash_with_secrets_in_the_message():
    password_hash = hash_password(PASSWORD)
    key, hmac_key = generate(ACCOUNT_KEY_PREFIX), generate(HMAC_KEY_PREFIX)
    raise RuntimeError(f"could not store {key} and {hmac_key} for a user hashed {password_hash}")


@app.get("/test/crash/sql")
def crash_with_a_hash_in_the_sql_parameters(request: Request):
    password_hash = hash_password(PASSWORD)
    with request.app.state.billing.engine.begin() as conn:
        conn.execute(text("INSERT INTO no_such_table (email, password_hash) VALUES (:email, :password_hash)"),
                     {"email": "someone@example.com", "password_hash": password_hash})


@app.get("/test/log/request")
def log_the_request(request: Request):
    # A debugging line left in: the headers (cookie, bearer key) and a form dump, in a message and its arguments.
    log.warning("request headers: %s", dict(request.headers))
    log.warning("form: %s", f"email=someone%40example.com&password={PASSWORD.replace(' ', '+')}&name=x")
    log.warning("webhook secret whsec_%s", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    return {"logged": True}
