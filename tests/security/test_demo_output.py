"""Issue 12 #9: `tollgate demo` (which `make run` runs on every start, into its log) says where the demo's
password and account key are kept, in files only their owner reads, and never prints either one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..live_server import ROOT, TOLLGATE


def _demo(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(TOLLGATE), "demo", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_the_demo_prints_where_its_secrets_are_kept_never_the_secrets(tmp_path: Path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
           "TOLLGATE_DATA_DIR": str(tmp_path), "TOLLGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    first = _demo(env)
    again = _demo(env, "--if-missing")
    key_file, password_file = tmp_path / "demo-key.txt", tmp_path / "demo-password.txt"
    key, password = key_file.read_text().strip(), password_file.read_text().strip()
    assert key.startswith("ak_live_") and len(password) >= 12
    for out in (first, again):
        assert key not in out and key[-12:] not in out and password not in out
        assert str(key_file) in out and str(password_file) in out
    assert key_file.stat().st_mode & 0o777 == 0o600 and password_file.stat().st_mode & 0o777 == 0o600
