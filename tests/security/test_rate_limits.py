"""Issue 12 #4: attempts are counted atomically before the password (or the device code) is checked, the
counts are shared by every process, and a stranger's failures cannot lock an owner out of their account."""

from __future__ import annotations

import itertools
import os
import random
import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.cookies import SimpleCookie

import httpx
import pytest
import redis
from itsdangerous import URLSafeTimedSerializer

from billing_core.crypto import new_key_spec
from billing_core.services.identity import (CODE_ENTRY_PER_USER, SIGN_IN_PER_EMAIL, SIGN_IN_PER_EMAIL_IP,
                                            SIGN_IN_PER_IP, RateLimited, code_entry_attempt)
from portal.auth.device_cookie import DEVICE_COOKIE, read_device
from portal.auth.limits import LimiterUnavailable, SharedRateLimiter
from portal.settings import Settings

from ..conftest import IN_CI, T0
from ..live_server import copy_sqlite_template, run_api_server

REDIS_URL = os.environ.get("TOLLGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
PASSWORD = "correct horse 1843"
JSON = {"Accept": "application/json"}
PARALLEL = 40
_addresses = itertools.count(random.randrange(1, 60_000))


def require_redis() -> None:
    """Skip without Redis, with the reason; in CI, fail instead."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is not reachable: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(f"{reason} (CI must exercise Redis)")
        pytest.skip(reason)


def an_address() -> str:
    """A client address of its own (uvicorn believes X-Forwarded-For from 127.0.0.1)."""
    n = next(_addresses)
    return f"198.18.{n // 250 % 256}.{n % 250 + 1}"


def an_email() -> str:
    return f"limits-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(base_url: str, email: str, ip: str) -> tuple[httpx.Client, httpx.Response]:
    """A browser (a cookie jar) that signed up to `email`, and the answer; the caller closes the browser."""
    client = httpx.Client(base_url=base_url, timeout=30, headers={"X-Forwarded-For": ip})
    response = client.post("/auth/sign-up", data={"email": email, "password": PASSWORD}, headers=JSON)
    assert response.status_code == 200, response.text
    return client, response


def sign_in(base_url: str, email: str, password: str, ip: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        return client.post("/auth/sign-in", data={"email": email, "password": password},
                           headers={**JSON, "X-Forwarded-For": ip})


def in_parallel(n: int, attempt) -> list:
    """`attempt(i)` for i in 0..n-1, all released at once."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait(timeout=30)
        return attempt(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def assert_checked_at_most_the_limit(answers: list[httpx.Response]) -> None:
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(401) == SIGN_IN_PER_EMAIL_IP.attempts, statuses  # never more, and no fewer
    assert statuses.count(429) == len(answers) - SIGN_IN_PER_EMAIL_IP.attempts, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == "rate_limited"
            assert 0 < int(answer.headers["retry-after"]) <= 15 * 60


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_template):
    """One API process counting in its own memory."""
    workdir = tmp_path_factory.mktemp("limits-memory")
    with run_api_server(copy_sqlite_template(sqlite_template, workdir),
                        extra_env={"TOLLGATE_RATE_LIMIT_STORAGE": "memory://",
                                   "TOLLGATE_DATA_DIR": str(workdir)}) as live:
        yield live


def test_forty_parallel_wrong_passwords_from_one_address_get_five_checks(server):
    email, ip = an_email(), an_address()
    sign_up(server.base_url, email, an_address())[0].close()
    answers = in_parallel(PARALLEL, lambda i: sign_in(server.base_url, email, "wrong password 1", ip))
    assert_checked_at_most_the_limit(answers)


def test_two_processes_on_one_redis_share_the_count(tmp_path, sqlite_template):
    require_redis()
    database = copy_sqlite_template(sqlite_template, tmp_path)
    # One deployment: the same database, secret key and keyring in both processes (a fresh secret key per
    # test is also a fresh namespace in Redis, so runs never meet).
    shared = {"TOLLGATE_RATE_LIMIT_STORAGE": REDIS_URL, "TOLLGATE_SECRET_KEY": secrets.token_urlsafe(36),
              "TOLLGATE_ENCRYPTION_KEYS": new_key_spec("k1"), "TOLLGATE_DATA_DIR": str(tmp_path),
              "TOLLGATE_SCHEDULER_ENABLED": "false"}
    with ExitStack() as stack:
        servers = [stack.enter_context(run_api_server(database, extra_env=shared)) for _ in range(2)]
        email, ip = an_email(), an_address()
        sign_up(servers[0].base_url, email, an_address())[0].close()
        answers = in_parallel(PARALLEL, lambda i: sign_in(servers[i % 2].base_url, email, "wrong password 1", ip))
    assert_checked_at_most_the_limit(answers)


def test_a_stranger_failing_from_many_addresses_cannot_lock_out_the_owners_browser(server):
    email, owner_ip = an_email(), an_address()
    owner, signed_up = sign_up(server.base_url, email, owner_ip)
    try:
        header = next(v for v in signed_up.headers.get_list("set-cookie") if v.startswith(f"{DEVICE_COOKIE}="))
        device = SimpleCookie(header)[DEVICE_COOKIE]
        assert device["httponly"] and device["path"] == "/auth" and device["samesite"].lower() == "strict"
        assert int(device["max-age"]) == 365 * 86_400
        stranger = in_parallel(SIGN_IN_PER_EMAIL.attempts + 10,
                               lambda i: sign_in(server.base_url, email, "wrong password 1", an_address()))
        # The owner's browser signed in before: its session is long gone, its device cookie is not.
        owner.cookies.delete("tollgate_session")
        signed_in = owner.post("/auth/sign-in", data={"email": email.upper(), "password": PASSWORD}, headers=JSON)
        assert signed_in.status_code == 200, signed_in.text
        # The stranger got the email's share of guesses from browsers it does not know, no more ...
        assert [a.status_code for a in stranger].count(401) == SIGN_IN_PER_EMAIL.attempts
        # ... and so does anyone else's browser, even with the right password.
        assert sign_in(server.base_url, email, PASSWORD, an_address()).status_code == 429
    finally:
        owner.close()


def test_a_known_browser_signs_in_again_and_again_past_the_limits_of_unknown_browsers(server):
    """Its successes clear its own count; the address's and the email's are not spent by it (a shared office
    address, a test suite's many sign-ins)."""
    email, address = an_email(), an_address()
    owner, _ = sign_up(server.base_url, email, address)
    try:
        answers = []
        for _ in range(SIGN_IN_PER_IP.attempts + 5):
            owner.cookies.delete("tollgate_session")
            answers.append(owner.post("/auth/sign-in", data={"email": email, "password": PASSWORD},
                                      headers=JSON).status_code)
        assert answers == [200] * (SIGN_IN_PER_IP.attempts + 5)
        # The same address without the device cookie still meets the limits of a browser nobody knows.
        assert sign_in(server.base_url, email, "wrong password 1", address).status_code == 401
    finally:
        owner.close()


def test_a_forged_or_foreign_device_cookie_is_ignored():
    settings = Settings(secret_key=secrets.token_urlsafe(36))
    other = Settings(secret_key=secrets.token_urlsafe(36))
    forged = URLSafeTimedSerializer(other.secret_key, salt="tollgate.device-cookie").dumps({"d": "x", "e": []})
    session_like = URLSafeTimedSerializer(settings.secret_key, salt="tollgate.session-cookie").dumps("token")
    assert [read_device(settings, v) for v in (forged, session_like, "junk", "", None)] == [None] * 5
    genuine = URLSafeTimedSerializer(settings.secret_key, salt="tollgate.device-cookie").dumps({"d": "x", "e": []})
    assert read_device(settings, genuine).id == "x"


# -- device-code entry ------------------------------------------------------------------------------
def _entries_allowed(limiters: list, user_id: str) -> int:
    def attempt(i: int) -> bool:
        try:
            code_entry_attempt(limiters[i % len(limiters)], user_id=user_id, ip=f"10.9.{i // 250}.{i % 250}", now=T0)
            return True
        except RateLimited:
            return False

    return sum(in_parallel(PARALLEL, attempt))


def test_forty_parallel_code_entries_get_the_users_ten_in_one_process():
    limiter = SharedRateLimiter("memory://", secrets.token_urlsafe(36))
    assert _entries_allowed([limiter], "usr_memory") == CODE_ENTRY_PER_USER.attempts


def test_code_entries_are_counted_once_across_processes():
    require_redis()
    secret = secrets.token_urlsafe(36)  # two processes of one deployment: two clients of one Redis
    limiters = [SharedRateLimiter(REDIS_URL, secret), SharedRateLimiter(REDIS_URL, secret)]
    assert _entries_allowed(limiters, "usr_redis") == CODE_ENTRY_PER_USER.attempts


def test_an_unreachable_store_refuses_the_attempt_instead_of_letting_it_through():
    limiter = SharedRateLimiter("redis://127.0.0.1:1/0", secrets.token_urlsafe(36))
    with pytest.raises(LimiterUnavailable) as refused:
        code_entry_attempt(limiter, user_id="usr_1", ip="10.0.0.1", now=T0)
    assert refused.value.status == 503
