"""HQ_URL pointing at something that is not the HQ API (the Dash app's port, say: `make run`
prints both) gets a one-line error that says so, not a JSON decoding traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hq import errors
from hq.client import HQClient


class HtmlPages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><html><body>a web app</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def web_app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlPages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_says_the_address_is_not_the_hq_api(web_app: str) -> None:
    client = HQClient(web_app, "hq_some-token")
    with client, pytest.raises(errors.TransportError) as caught:
        client.list_scripts()
    assert "not the HQ API" in caught.value.message
    assert "text/html" in caught.value.message


def test_the_cli_prints_one_line_that_names_hq_url(web_app: str) -> None:
    env = {**os.environ, "HQ_URL": web_app, "HQ_TOKEN": "hq_some-token"}
    done = subprocess.run(
        [sys.executable, "-m", "hq", "script", "list"], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "not the HQ API" in done.stderr and "HQ_URL" in done.stderr
