"""The portal's auth helpers: cookie signing, reading the Cookie header, `next` targets, page messages."""

from __future__ import annotations

import secrets
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from portal.auth.cookies import cookie_from_header, sign_token, unsign_token
from portal.auth.deps import safe_next
from portal.auth.messages import message_for
from portal.auth.oidc import button_label
from portal.settings import Settings


def _settings(**kw) -> Settings:
    kw.setdefault("secret_key", secrets.token_urlsafe(36))
    return Settings(env="test", **kw)


def test_a_signed_token_round_trips_and_a_tampered_one_does_not():
    settings = _settings()
    value = sign_token(settings, "the-token")
    assert "the-token" not in value and unsign_token(settings, value) == "the-token"
    payload, _, signature = value.partition(".")
    assert unsign_token(settings, payload.replace("InRo", "InRp", 1) + "." + signature) is None  # '"the' -> '"thi'
    assert unsign_token(settings, payload + "." + signature[:-3] + ("AAA" if signature[-3:] != "AAA" else "BBB")) is None
    assert unsign_token(_settings(), value) is None  # another secret key
    assert unsign_token(settings, None) is None and unsign_token(settings, "") is None


def test_a_value_signed_for_another_purpose_is_not_a_session_cookie():
    settings = _settings()
    other = URLSafeTimedSerializer(settings.secret_key).dumps("the-token")  # same key, no session salt
    assert unsign_token(settings, other) is None


class _TwoDaysAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 86_400


def test_a_cookie_older_than_a_session_is_refused():
    settings = _settings(session_days=1)
    old = URLSafeTimedSerializer(settings.secret_key, salt="tollgate.session-cookie", signer=_TwoDaysAgo)
    assert unsign_token(settings, old.dumps("the-token")) is None
    assert unsign_token(_settings(session_days=3, secret_key=settings.secret_key), old.dumps("t")) == "t"


@pytest.mark.parametrize("header, value", [
    ("tollgate_session=abc.def; other=1", "abc.def"),
    ('a=1; tollgate_session="q.r"', "q.r"),
    ("broken; ; tollgate_session=x", "x"),
    ("not_tollgate_session=x", None),
    ("", None),
])
def test_the_session_cookie_is_read_from_a_raw_cookie_header(header, value):
    assert cookie_from_header(header) == value


@pytest.mark.parametrize("target, expected", [
    ("/device?user_code=BCDF-GHJK", "/device?user_code=BCDF-GHJK"), ("/", "/"), (None, "/"), ("", "/"),
    ("https://evil.example", "/"), ("//evil.example", "/"), ("/\\evil.example", "/"), ("/auth/sign-out", "/"),
    ("/ok\r\nSet-Cookie: x", "/"), ("relative", "/"),
])
def test_next_is_a_path_on_this_site_or_home(target, expected):
    assert safe_next(target) == expected


def test_the_single_sign_on_button_shows_only_when_oidc_is_configured():
    assert button_label(_settings()) == ""
    assert button_label(_settings(oidc_issuer="https://id.example.com")) == ""
    configured = _settings(oidc_issuer="https://id.example.com", oidc_client_id="tollgate", oidc_name="Acme SSO")
    assert button_label(configured) == "Sign in with Acme SSO"


def test_pages_say_a_sentence_for_known_codes_and_a_generic_one_for_others():
    assert message_for("invalid_credentials") == "That email and password do not match an account."
    assert message_for("rate_limited", "61") == "Too many attempts. Try again in 2 minutes."
    assert message_for("rate_limited", "junk") == "Too many attempts. Try again in 15 minutes."
    assert message_for("<script>") == "Something went wrong. Try again."
    assert message_for(None) == "" and message_for("") == ""
