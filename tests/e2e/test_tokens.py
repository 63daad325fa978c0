"""Tokens: revoke one and it stops working at once, on this server and on every replica, even
though servers remember who a token belongs to between requests."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from hq import errors
from hq.client import HQClient
from tests.fixtures.server import LiveServer, ServerFactory, free_port

REPLICA_DEADLINE_SECONDS = 5.0


def test_a_revoked_token_gets_401_on_its_next_request(live_server: LiveServer) -> None:
    admin = live_server.client()
    created = admin.create_token(name="ci", role="viewer")
    with HQClient(live_server.url, created.token) as ci:
        assert ci.whoami().name == "ci"
        ci.list_scripts()  # now remembered by the server
        revoked = admin.revoke_token(created.id)
        assert revoked.id == created.id and revoked.revoked_at is not None
        with pytest.raises(errors.NotAuthenticated, match="invalid or revoked token"):
            ci.list_scripts()
    again = admin.revoke_token(created.id)  # a no-op that answers the same
    assert again.revoked_at == revoked.revoked_at
    listed = {t.id: t for t in admin.list_tokens()}
    assert listed[created.id].revoked_at == revoked.revoked_at
    with pytest.raises(errors.NotFound, match="hq token list"):
        admin.revoke_token("no-such-token")


def test_the_last_admin_token_cannot_be_revoked(live_server: LiveServer) -> None:
    admin = live_server.client()
    [bootstrap] = [t for t in admin.list_tokens() if t.role == "admin"]
    with pytest.raises(errors.Conflict, match="create another admin token first"):
        admin.revoke_token(bootstrap.id)
    second = admin.create_token(name="admin-2", role="admin")
    admin.revoke_token(bootstrap.id)
    with pytest.raises(errors.NotAuthenticated):
        admin.list_tokens()
    with HQClient(live_server.url, second.token) as admin_2:
        assert {t.id for t in admin_2.list_tokens() if t.revoked_at is None} >= {second.id}
        with pytest.raises(errors.Conflict):
            admin_2.revoke_token(second.id)


def test_a_revoked_env_admin_token_stays_revoked_after_a_restart(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(db="sqlite")
    with HQClient(server.url, server.admin_token) as admin:
        second = admin.create_token(name="admin-2", role="admin")
        [bootstrap] = [t for t in admin.list_tokens() if t.name == "admin"]
        admin.revoke_token(bootstrap.id)
    server.stop()
    server.start()  # HQ_ADMIN_TOKEN still names the revoked token: no crash, no resurrection
    answer = httpx.get(
        f"{server.url}/api/v1/tokens", headers={"Authorization": f"Bearer {server.admin_token}"}
    )
    assert answer.status_code == 401
    with HQClient(server.url, second.token) as admin_2:
        assert len(admin_2.list_tokens()) == 2
    assert "HQ_ADMIN_TOKEN names a revoked token" in server.log_path.read_text()


@pytest.mark.postgresql
def test_a_revoke_on_one_replica_is_heard_by_another(
    server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two servers on one PostgreSQL database: the second hears the revoke through NOTIFY."""
    first = server_factory(db="postgresql")
    home = tmp_path_factory.mktemp("hq-replica")
    port = free_port()
    replica = dataclasses.replace(
        first,
        url=f"http://127.0.0.1:{port}",
        home=home,
        env={**first.env, "HQ_HOME": str(home), "HQ_PORT": str(port)},
        log_path=home / "server.log",
        process=None,
        _clients=[],
    )
    replica.start()
    try:
        created = first.client().create_token(name="ci", role="viewer")
        with HQClient(replica.url, created.token) as on_replica:
            on_replica.list_scripts()  # remembered by the replica
            first.client().revoke_token(created.id)
            deadline = time.monotonic() + REPLICA_DEADLINE_SECONDS
            while True:
                try:
                    on_replica.list_scripts()
                except errors.NotAuthenticated:
                    break
                assert time.monotonic() < deadline, "the replica still accepts a revoked token"
                time.sleep(0.02)
    finally:
        replica.stop()
