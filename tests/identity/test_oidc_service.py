"""What a verified OpenID Connect identity may do: sign in, link a user, claim an empty account, create one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.identity import User
from billing_core.errors import Conflict, Invalid
from billing_core.services import accounts
from billing_core.services.identity import BadCredentials, sign_in, sign_in_with_oidc, sign_up

from ..conftest import T0
from .conftest import PASSWORD, TTL, UA_FIREFOX

ISSUER = "https://id.example.com"


def _oidc(billing, subject="sub-1", email="grace@example.com", verified=True, issuer=ISSUER):
    return sign_in_with_oidc(billing, issuer=issuer, subject=subject, email=email, email_verified=verified,
                             name="Grace Hopper", ip="203.0.113.9", user_agent=UA_FIREFOX, now=T0, ttl=TTL)


def _user(billing, email):
    with read_session(billing.engine) as session:
        return session.execute(select(User).where(User.email == email)).scalar_one()


def test_a_first_sign_in_creates_an_account_and_a_passwordless_user(billing):
    started = _oidc(billing)
    user = _user(billing, "grace@example.com")
    assert (user.oidc_issuer, user.oidc_subject, user.password_hash) == (ISSUER, "sub-1", None)
    assert started.user.account_id == user.account_id and started.user.name == "Grace Hopper"
    assert _oidc(billing).user == started.user  # the next sign-in finds the same user by its subject


def test_an_unverified_email_cannot_create_or_link(billing):
    with pytest.raises(Invalid) as refused:
        _oidc(billing, verified=False)
    assert refused.value.code == "oidc_email_unverified"


def test_a_verified_email_links_the_existing_password_user(billing, limiter):
    signed_up = sign_up(billing, limiter, email="grace@example.com", password=PASSWORD, ip="", user_agent="",
                        now=T0, ttl=TTL)
    assert _oidc(billing).user.user_id == signed_up.user.user_id
    assert _user(billing, "grace@example.com").oidc_subject == "sub-1"


def test_a_user_linked_to_one_identity_is_not_relinked_to_another(billing):
    _oidc(billing)
    with pytest.raises(Conflict):
        _oidc(billing, subject="sub-2")


def test_an_operator_made_account_without_users_is_claimed_by_its_verified_owner(billing):
    created = accounts.create_account(billing, email="grace@example.com", now=T0)
    assert _oidc(billing).user.account_id == created.account_id


def test_an_oidc_only_user_cannot_sign_in_with_a_password(billing, limiter):
    _oidc(billing)
    with pytest.raises(BadCredentials):
        sign_in(billing, limiter, email="grace@example.com", password="", ip="", user_agent="", now=T0, ttl=TTL)
