"""Secrets an install keeps on its own disk when none is configured: made once at first start, 0600, reused.

Nothing here has a default in the code: a missing secret key or keyring is generated from the operating
system's random source into `data_dir`, so two installs never share one, and a database dump alone opens
nothing. Production refuses to start without them configured (portal/settings.py), so this is for dev and
test installs, `make run` first among them.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import tempfile
from contextlib import suppress
from pathlib import Path

from billing_core.crypto import new_key_spec

SECRET_KEY_FILE = "secret-key"
ENCRYPTION_KEYS_FILE = "encryption-keys"
SANDBOX_WEBHOOK_SECRET_FILE = "sandbox-webhook-secret"
PRIVATE_MODE = 0o600


def _create_once(path: Path, text: str) -> None:
    """Write `text` to `path` unless it exists; of two processes racing at first start, one wins whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        with suppress(FileExistsError):  # another process made it first: theirs is the one kept
            os.link(tmp, path)  # atomic, and never replaces an existing file
    finally:
        os.unlink(tmp)


def read_or_create(path: Path, make) -> str:
    """The secret kept in `path`, made with `make()` at first use; a file others could read is tightened."""
    if not path.exists():
        _create_once(path, make())
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, PRIVATE_MODE)
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"{path} is empty: delete it to have a new one made, or restore it from a backup")
    return value


def local_secret_key(data_dir: Path) -> str:
    return read_or_create(Path(data_dir) / SECRET_KEY_FILE, lambda: secrets.token_urlsafe(48))


def local_encryption_keys(data_dir: Path) -> str:
    return read_or_create(Path(data_dir) / ENCRYPTION_KEYS_FILE, lambda: new_key_spec(f"k{secrets.token_hex(4)}"))


def local_sandbox_webhook_secret(data_dir: Path) -> str:
    """The sandbox provider's Standard Webhooks secret (whsec_ + base64 of 32 random bytes)."""
    return read_or_create(Path(data_dir) / SANDBOX_WEBHOOK_SECRET_FILE,
                          lambda: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
