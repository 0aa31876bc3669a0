"""A server process freezes what it has built and collects its young generation less often (portal/heap.py).
Checked in fresh interpreters, so this test process's own collector is left as it is."""

import os
import subprocess
import sys

from portal.heap import YOUNG_THRESHOLD


def _run(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_settle_freezes_and_raises_only_the_young_threshold():
    before_young, middle, old = _run("import gc; print(*gc.get_threshold())")
    assert int(before_young) < YOUNG_THRESHOLD
    after = _run("import gc; from portal.heap import settle; settle(); print(*gc.get_threshold(), gc.get_freeze_count())")
    assert after[:3] == [str(YOUNG_THRESHOLD), middle, old]
    assert int(after[3]) > 1000  # the modules imported so far are frozen


def test_the_api_server_module_settles_the_heap(tmp_path):
    code = "import gc, portal.api.asgi; print(gc.get_threshold()[0], gc.get_freeze_count())"
    young, frozen = _run(code, TOLLGATE_ENV="dev", TOLLGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'heap.db'}")
    assert int(young) == YOUNG_THRESHOLD and int(frozen) > 10_000
