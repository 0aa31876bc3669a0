"""One production server (`tollgate demo`, then `reflex run --env prod --single-port`, as `make run`) for the
security tests that need the pages or the live updates' WebSocket.

Several modules use it, so it is started on first use and stopped when the session ends; a session-scoped
fixture defined in each module would start one per module.
"""

from __future__ import annotations

import socket
import subprocess
from contextlib import ExitStack

from tests.browser.conftest import Demo
from tests.identity.servers import BIN, ROOT, free_port, running, tollgate_env

_started: Demo | None = None


def demo_reflex_server(tmp_path_factory, config) -> Demo:
    global _started
    if _started is None:
        workdir = tmp_path_factory.mktemp("security-reflex")
        port = free_port()
        env = tollgate_env(workdir / "tollgate.db", port, TOLLGATE_DATA_DIR=str(workdir), REFLEX_USE_SYSTEM_BUN="1")
        env["PATH"] = f"{ROOT / '.tools' / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
        subprocess.run([BIN / "tollgate", "demo"], env=env, check=True, capture_output=True, timeout=300)
        cmd = [str(BIN / "reflex"), "run", "--env", "prod", "--single-port", "--frontend-port", str(port),
               "--backend-port", str(port)]
        stack = ExitStack()
        server = stack.enter_context(running(cmd, env, port, workdir / "reflex.log", 240))
        config.add_cleanup(stack.close)
        _started = Demo(server.base_url, "demo@tollgate.dev", (workdir / "demo-password.txt").read_text().strip(),
                        (workdir / "demo-key.txt").read_text().strip(), env)
    return _started


def raw_request(base_url: str, request: str) -> str:
    """Send one raw HTTP/1.1 request (a WebSocket handshake, a Host of our choosing) and return the
    status line and headers of the answer."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.replace("\n", "\r\n").encode() + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")


def websocket_handshake(base_url: str, origin: str | None) -> str:
    """The status line of a socket.io WebSocket handshake on /_event carrying this Origin."""
    host = base_url.removeprefix("http://")
    lines = ["GET /_event/?EIO=4&transport=websocket HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return raw_request(base_url, "\n".join(lines) + "\n").split("\r\n", 1)[0]
