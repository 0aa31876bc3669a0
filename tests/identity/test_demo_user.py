"""`tollgate demo` gives the demo account a user whose password it keeps beside the key and says where."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone

import pytest

from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.context import Billing
from billing_core.services.identity import MemoryRateLimiter, sign_in

from .conftest import TTL
from .servers import BIN

pytestmark = pytest.mark.slow


def test_the_demo_keeps_a_password_that_signs_in(tmp_path):
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
           "TOLLGATE_DATABASE_URL": database, "TOLLGATE_ENV": "dev", "TOLLGATE_DATA_DIR": str(tmp_path)}
    out = subprocess.run([BIN / "tollgate", "demo"], env=env, capture_output=True, text=True, timeout=180,
                         check=True, cwd=tmp_path).stdout
    password_file = tmp_path / "demo-password.txt"
    password = password_file.read_text().strip()
    assert str(password_file) in out and "/sign-in" in out and password_file.stat().st_mode & 0o777 == 0o600
    engine = make_engine(database)
    try:
        started = sign_in(Billing(engine=engine, catalog=load_catalog()), MemoryRateLimiter(),
                          email="demo@tollgate.dev", password=password, ip="127.0.0.1", user_agent="test",
                          now=datetime.now(timezone.utc), ttl=TTL)
    finally:
        engine.dispose()
    assert started.user.email == "demo@tollgate.dev"
    again = subprocess.run([BIN / "tollgate", "demo", "--if-missing"], env=env, capture_output=True, text=True,
                           timeout=60, check=True, cwd=tmp_path).stdout
    assert str(password_file) in again and password not in again
