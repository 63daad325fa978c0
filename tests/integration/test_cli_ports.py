"""`hq standalone` checks its ports before it starts anything: a port still in TIME_WAIT from
the last run (which uvicorn can bind again) is free; one that something listens on is not."""

from __future__ import annotations

import socket

import click
import pytest

from hq.cli.standalone import _check_port_free


def test_a_port_left_in_time_wait_by_the_last_run_is_free() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server side closes first: its end of the port is in TIME_WAIT
        client.close()
    _check_port_free("127.0.0.1", port, "--port")


def test_a_port_something_listens_on_is_refused_with_how_to_change_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(click.ClickException, match=r"not free.*--port.*make run PORT="):
            _check_port_free("127.0.0.1", port, "--port")
