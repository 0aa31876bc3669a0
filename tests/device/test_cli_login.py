"""The real `tollgate` CLI in a subprocess: device-flow login, the reading commands, logout, and
one-line failures. Approval goes straight through approve_device on the server's database."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from datetime import datetime, timezone

import httpx
import pytest

from billing_core.keys import ACCOUNT_KEY_PREFIX, generate, is_well_formed
from billing_core.services.device import REGISTERED_CLIENTS, approve_device, deny_device
from portal.cli import customer_auth

from .conftest import free_port, read_user_code

LOGIN_TIMEOUT_S = 40  # one 5 s poll after approval, with room for a slow machine


def now() -> datetime:
    return datetime.now(timezone.utc)


def assert_one_line_failure(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and lines[0].startswith("tollgate: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def login(cli, server, account, *, approve: bool = True) -> subprocess.CompletedProcess:
    """Run `tollgate login`, read its user code, approve (or deny) it before the first poll."""
    proc = cli.start("login", "--url", server.url, umask=0)
    code, printed = read_user_code(proc)
    if approve:
        approve_device(server.billing, code, user_id="usr_cli", account_id=account.account_id, now=now())
    else:
        deny_device(server.billing, code, now=now())
    # Read through the same buffered file objects readline used: communicate() would bypass their buffers
    # and lose lines readline had already pulled in.
    proc.wait(timeout=LOGIN_TIMEOUT_S)
    out, err = proc.stdout.read(), proc.stderr.read()
    return subprocess.CompletedProcess(proc.args, proc.returncode, printed + out, err)


@pytest.fixture
def logged_in(cli, server, account):
    done = login(cli, server, account)
    assert done.returncode == 0, done.stderr
    return done


def test_the_cli_uses_a_registered_client_id():
    assert customer_auth.CLI_CLIENT_ID in REGISTERED_CLIENTS


def test_login_prints_where_to_go_and_stores_a_private_key(cli, server, account, logged_in):
    assert f"{server.url}/device" in logged_in.stdout
    assert "/device?user_code=" in logged_in.stdout
    assert "Logged in" in logged_in.stdout
    info = os.stat(cli.credentials)
    assert stat.S_IMODE(info.st_mode) == 0o600  # even under umask 000
    assert stat.S_IMODE(os.stat(cli.credentials.parent).st_mode) == 0o700
    stored = json.loads(cli.credentials.read_text())
    assert stored["url"] == server.url and is_well_formed(stored["api_key"], ACCOUNT_KEY_PREFIX)
    assert stored["api_key"] != account.api_key  # a fresh key, not the account's first
    assert stored["api_key"] not in logged_in.stdout + logged_in.stderr

    whoami = cli.run("whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert account.email in whoami.stdout and account.account_id in whoami.stdout and "hobby" in whoami.stdout

    keys = cli.run("keys")
    assert keys.returncode == 0, keys.stderr
    assert "(this CLI)" in keys.stdout and "CLI on" in keys.stdout and stored["api_key"] not in keys.stdout

    usage = cli.run("usage", "--group-by", "project")
    assert usage.returncode == 0, usage.stderr
    assert "Total" in usage.stdout and "0 s" in usage.stdout and "$0.00" in usage.stdout

    runs = cli.run("runs", "--limit", "5")
    if runs.returncode != 0:  # /api/v1/runs is being built beside this; until then, one clear line
        assert_one_line_failure(runs, "/api/v1/runs")


def test_logging_in_again_revokes_the_key_it_replaces(cli, server, account, logged_in):
    first = json.loads(cli.credentials.read_text())["api_key"]
    again = login(cli, server, account)
    assert again.returncode == 0, again.stderr
    assert "previous key" in again.stdout and "revoked" in again.stdout
    second = json.loads(cli.credentials.read_text())["api_key"]
    assert second != first
    for key, status in ((first, 401), (second, 200)):
        answer = httpx.get(f"{server.url}/api/v1/account", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == status


def test_logout_revokes_the_key_on_the_server_and_deletes_the_file(cli, server, account, logged_in):
    key = json.loads(cli.credentials.read_text())["api_key"]
    done = cli.run("logout")
    assert done.returncode == 0, done.stderr
    assert "revoked" in done.stdout and not cli.credentials.exists()
    refused = httpx.get(f"{server.url}/api/v1/account", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401
    # The revoked key put back by hand: refused by the server, said in one line.
    cli.credentials.write_text(json.dumps({"url": server.url, "api_key": key}))
    assert_one_line_failure(cli.run("whoami"), "refused", "tollgate login")


def test_a_denied_login_fails_in_one_line_and_stores_nothing(cli, server, account):
    done = login(cli, server, account, approve=False)
    assert_one_line_failure(done, "denied")
    assert not cli.credentials.exists()


def test_an_unreachable_server_is_one_line(cli):
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line_failure(cli.run("login", "--url", url), "cannot reach", url)
    cli.credentials.parent.mkdir(parents=True)
    cli.credentials.write_text(json.dumps({"url": url, "api_key": generate(ACCOUNT_KEY_PREFIX)}))
    for command in ("whoami", "keys"):
        assert_one_line_failure(cli.run(command), "cannot reach")


def test_a_corrupted_key_is_refused_without_contacting_the_server(cli):
    with socket.socket() as listener:  # a server that would notice any connection
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        good = generate(ACCOUNT_KEY_PREFIX)
        cli.credentials.parent.mkdir(parents=True)
        bad_checksum = good[:-1] + ("A" if good[-1] != "A" else "B")
        for bad, commands in ((bad_checksum, ("whoami", "keys", "usage")), ("ak_live_short", ("runs",)), (42, ("whoami",))):
            cli.credentials.write_text(json.dumps({"url": url, "api_key": bad}))
            for command in commands:
                assert_one_line_failure(cli.run(command), "malformed", "tollgate login")
        with pytest.raises(BlockingIOError):
            listener.accept()
        cli.credentials.write_text("{not json")
        assert_one_line_failure(cli.run("whoami"), "cannot read")
        done = cli.run("logout")  # an unusable file is simply removed
        assert done.returncode == 0 and not cli.credentials.exists()
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_not_logged_in_is_one_line(cli):
    for command in ("whoami", "usage", "runs", "keys", "logout"):
        assert_one_line_failure(cli.run(command), "not logged in")


@pytest.mark.parametrize(("args", "fragment"), [
    (("login", "--url", "ftp://example.com"), "--url"),
    (("login", "--url", "not a url"), "--url"),
    (("usage", "--group-by", "week"), "--group-by"),
    (("usage", "--from", "yesterday"), "--from"),
    (("runs", "--status", "sleeping"), "--status"),
])
def test_bad_arguments_are_one_line(cli, args, fragment):
    assert_one_line_failure(cli.run(*args), fragment)


def test_an_api_error_is_one_line_with_the_servers_message(cli, server, account):
    cli.credentials.parent.mkdir(parents=True)
    cli.credentials.write_text(json.dumps({"url": server.url, "api_key": account.api_key}))
    line = assert_one_line_failure(cli.run("usage", "--from", "2026-02-01", "--to", "2026-01-01"), "HTTP 422")
    assert "before" in line
    # The key is never sent to a server other than the one it was stored for.
    assert_one_line_failure(cli.run("whoami", "--url", "http://127.0.0.1:9"), "logged in to")


def test_keys_shows_names_as_plain_text_not_markup(cli, server, account):
    name = "[/bold] odd [name"
    created = httpx.post(f"{server.url}/api/v1/keys", json={"name": name},
                         headers={"Authorization": f"Bearer {account.api_key}"})
    assert created.status_code == 201, created.text
    cli.credentials.parent.mkdir(parents=True)
    cli.credentials.write_text(json.dumps({"url": server.url, "api_key": account.api_key}))
    shown = cli.run("keys")
    assert shown.returncode == 0, shown.stderr
    assert name in shown.stdout and created.json()["secret"] not in shown.stdout
