"""Instructions per usage event through the whole ASGI app, counted by valgrind's callgrind.

    .venv/bin/python bench/instructions.py sqlite [--batch 1000] [--requests 3]
    .venv/bin/python bench/instructions.py postgresql --batch 1 --requests 200

CPU time on a shared virtual machine moves by a third from one minute to the next for the same work (see
docs/benchmarks.md); an instruction count does not. This runs profile_asgi's requests in-process under
callgrind with counting switched on only around the measured requests (not start-up, not the warm-up), so
two versions of the code can be compared to a fraction of a percent. For PostgreSQL only this process's
instructions are counted, not the server's. Needs valgrind (apt-get install -y valgrind); takes about half
a minute for three 1000-event batches.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

from common import PY, ROOT, arg_value, parse_dbs, run_id

CHILD = "TOLLGATE_BENCH_UNDER_CALLGRIND"


def measure(kind: str, batch: int, n: int) -> None:
    """Runs inside callgrind: set up, warm up, then count only the measured requests."""
    from ingest import setup
    from profile_asgi import app_for, call, run_inline, usage_body

    db, acc, projects = setup(kind)
    app = app_for(db)
    run_inline()  # one thread, counted the same way every run
    prefix = run_id()
    bodies = [usage_body(prefix, i, batch, projects) for i in range(n + 3)]

    async def run() -> None:
        for body in bodies[:3]:
            status, out = await call(app, "POST", "/api/v1/usage", acc.api_key, body)
            assert status == 200, out[:300]
        subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)
        for body in bodies[3:]:
            status, out = await call(app, "POST", "/api/v1/usage", acc.api_key, body)
            assert status == 200, out[:300]
        subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)

    asyncio.run(run())


def main(argv: list[str]) -> int:
    kind = parse_dbs(argv)[0]
    batch, n = int(arg_value(argv, "--batch", "1000")), int(arg_value(argv, "--requests", "3"))
    if os.environ.get(CHILD):
        measure(kind, batch, n)
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is needed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                               PY, __file__, kind, "--batch", str(batch), "--requests", str(n)],
                              cwd=ROOT, env={**os.environ, CHILD: "1"}, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(out):
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        totals = [line for line in open(out) if line.startswith("totals:")]
        total = int(totals[-1].split()[1])
    events = batch * n
    print(f"{kind} usage batch={batch}: {total:,} instructions for {n} requests; "
          f"{total // n:,} per request, {total // events:,} per event")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
