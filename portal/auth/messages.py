"""What the sign-in and sign-up pages say for an error code the /auth routes put in the URL.

The URL carries a code, never the text: a link someone else crafted cannot make the page say anything.
"""

from __future__ import annotations

from billing_core.passwords import MAX_LENGTH, MIN_DISTINCT, MIN_LENGTH

MESSAGES = {
    "invalid_credentials": "That email and password do not match an account.",
    "invalid_email": "Give a valid email address, such as ada@example.com.",
    "email_taken": "That email already has an account. Sign in instead.",
    "password_too_short": f"Use at least {MIN_LENGTH} characters.",
    "password_too_long": f"Use at most {MAX_LENGTH} characters.",
    "password_one_kind": "Mix at least two kinds of character: lowercase, uppercase, digits, symbols or spaces.",
    "password_repetitive": f"Use at least {MIN_DISTINCT} different characters.",
    "password_contains_email": "Do not use your email address in your password.",
    "oidc_failed": "Single sign-on did not complete. Try again.",
    "oidc_unavailable": "Single sign-on is not available right now. Try again later or use your password.",
    "oidc_email_unverified": "Your provider did not confirm your email address, so it cannot be used to sign in.",
    "oidc_identity_conflict": "That email is already linked to another single sign-on identity.",
    "forbidden_origin": "That form came from another site; sign in from this page.",
    "rate_limit_unavailable": "Signing in is unavailable for a moment. Try again shortly.",
    "signed_out": "",
}


def message_for(code: str | None, retry_s: str | None = None) -> str:
    """The sentence for a code; rate limits say how long to wait. Unknown codes get a generic sentence."""
    if not code:
        return ""
    if code == "rate_limited":
        try:
            minutes = max(1, -(-int(retry_s or "0") // 60))
        except ValueError:
            minutes = 15
        return f"Too many attempts. Try again in {minutes} minute{'s' * (minutes != 1)}."
    return MESSAGES.get(code, "Something went wrong. Try again.")
