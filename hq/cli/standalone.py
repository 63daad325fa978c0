"""`hq standalone`: the API, one local agent and the Dash app in one command, for one machine.

Each part runs as a child process (`hq server`, the agent's own `python -m agent`, which is what
`hq agent` runs too, and `hq dash`) on the embedded defaults:
SQLite and a local folder under ``$HQ_HOME`` (default ``~/.hq``). The agent gets a fresh agent
token minted with the admin token that the server wrote to ``$HQ_HOME/admin.token``. SIGINT or
SIGTERM is forwarded: the agent drains first (a second signal, a second or more later, stops
it at once), then the Dash app and the server stop. Children's logs go to ``$HQ_HOME/logs/``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import click

from hq.cli.common import get_settings

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
SIGNAL_REPEAT_SECONDS = 1.0


class Child:
    """One supervised ``python -m <module> <args>``, its own session so that only we forward
    signals."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.signalled = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.signalled += 1
            self.process.send_signal(signum)

    def stop(self, timeout: float | None = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM (unless already sent), wait, then kill after ``timeout``."""
        if not self.signalled:
            self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def _wait_healthy(url: str, server: Child) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not server.alive():
            raise click.ClickException(f"hq server exited:\n{server.tail()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise click.ClickException(f"hq server did not answer at {url}:\n{server.tail()}")


def _admin_token(home: Path, env: dict[str, str]) -> str:
    if env.get("HQ_ADMIN_TOKEN"):
        return env["HQ_ADMIN_TOKEN"]
    path = home / "admin.token"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # written on first start
        token = path.read_text().strip() if path.exists() else ""
        if token:
            return token
        time.sleep(0.05)
    raise click.ClickException(
        f"{path} is missing and HQ already has an admin token: set HQ_ADMIN_TOKEN"
    )


def _check_port_free(host: str, port: int, option: str) -> None:
    with socket.socket() as sock:
        # As uvicorn binds: a port in TIME_WAIT from the last run is free, a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"{host}:{port} is not free ({exc.strerror}): pass another {option} "
                "(with make run: make run PORT=N DASH_PORT=M)"
            ) from exc


def _publish_examples(url: str, token: str, examples: Path) -> None:
    """Publish each example script's local image and upload its example data as datasets."""
    from hq import errors, imaging
    from hq.client import HQClient

    docker_client = imaging.get_docker_client()
    with HQClient(url, token) as client:
        for folder in sorted(p for p in examples.iterdir() if (p / "hq.yaml").exists()):
            ref = f"hq/{folder.name}:latest"
            found = imaging.find_image(client=docker_client, ref=ref)
            if found is None:
                click.echo(f"  {ref} is not built (make images): skipped", err=True)
                continue
            version = client.publish_script_version(
                name=folder.name,
                image=ref,
                digest=imaging.local_digest(client=docker_client, ref=ref),
                manifest=imaging.manifest_from_image(found),
            )
            click.echo(f"  script {version.script} v{version.version}", err=True)
            for data in sorted((folder / "example").glob("*.csv")):
                try:
                    client.get_dataset(data.stem)
                except errors.NotFound:
                    client.upload_dataset(name=data.stem, path=data)
                    click.echo(f"  dataset {data.stem} ({data.name})", err=True)
    docker_client.close()


@click.command("standalone")
@click.option("--host", default="127.0.0.1", show_default=True, help="API bind address")
@click.option("--port", type=int, default=8080, show_default=True, help="API port")
@click.option("--dash-port", type=int, default=8050, show_default=True, help="Dash app port")
@click.option("--no-dash", is_flag=True, help="run without the Dash app")
@click.option(
    "--capacity",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="jobs the local agent runs at once",
)
@click.option(
    "--publish-examples",
    is_flag=True,
    help="publish the built example script images and upload their example data",
)
@click.option(
    "--examples-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("scripts"),
    show_default=True,
)
def standalone(
    host: str,
    port: int,
    dash_port: int,
    no_dash: bool,
    capacity: int,
    publish_examples: bool,
    examples_dir: Path,
) -> None:
    """Run HQ on this machine: the API, one local agent and the Dash app (Ctrl-C stops them)."""
    home = get_settings().home.expanduser()
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{host}:{port}"
    env = {**os.environ, "HQ_HOME": str(home), "HQ_HOST": host, "HQ_PORT": str(port), "HQ_URL": url}
    _check_port_free(host, port, "--port")
    if not no_dash:
        _check_port_free(host, dash_port, "--dash-port")
    children: list[Child] = []
    stopping = _Forwarder(children)
    signal.signal(signal.SIGINT, stopping.forward)
    signal.signal(signal.SIGTERM, stopping.forward)
    try:
        server = Child("server", ["hq", "server"], env=env, log_dir=log_dir)
        children.append(server)
        _wait_healthy(url, server)
        admin = _admin_token(home, env)
        agent_token = _agent_token(url, admin)
        if publish_examples and examples_dir.is_dir():
            click.echo("publishing the examples:", err=True)
            _publish_examples(url, admin, examples_dir)
        agent_env = {**env, "HQ_TOKEN": agent_token, "HQ_AGENT_CAPACITY": str(capacity)}
        children.append(Child("agent", ["agent"], env=agent_env, log_dir=log_dir))
        if not no_dash:
            dash_args = ["hq", "dash", "--host", host, "--port", str(dash_port)]
            children.append(Child("dash", dash_args, env=env, log_dir=log_dir))
        dash_url = None if no_dash else f"http://{host}:{dash_port}"
        _print_banner(url=url, dash_url=dash_url, admin=admin, home=home, log_dir=log_dir)
        _supervise(children, stopping)
    finally:
        for name in ("agent", "dash", "server"):  # the agent reports its jobs before HQ stops
            for child in children:
                if child.name == name:
                    child.stop(timeout=None if name == "agent" else STOP_TIMEOUT_SECONDS)
    if not stopping.signals:
        sys.exit(1)


class _Forwarder:
    """Passes Ctrl-C and SIGTERM on to the agent (a drain; a second one stops it at once)."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.signals = 0
        self._at = 0.0

    def forward(self, signum: int, _: Any) -> None:
        # One Ctrl-C can arrive twice (from the terminal and from `make` passing it on): a
        # repeat within SIGNAL_REPEAT_SECONDS is the same request, not a second one.
        now = time.monotonic()
        if self.signals and now - self._at < SIGNAL_REPEAT_SECONDS:
            return
        self.signals += 1
        self._at = now
        agent = next((c for c in self.children if c.name == "agent"), None)
        if agent is not None:
            agent.signal(signal.SIGTERM)


def _agent_token(url: str, admin: str) -> str:
    """A fresh agent token for the local agent, minted with the admin token."""
    from hq.client import HQClient

    with HQClient(url, admin) as client:
        return client.create_token(name="standalone-agent", role="agent").token


def _print_banner(*, url: str, dash_url: str | None, admin: str, home: Path, log_dir: Path) -> None:
    click.echo(f"\nHQ API:    {url}  (OpenAPI at {url}/docs)")
    if dash_url is not None:
        click.echo(f"Dash app:  {dash_url}  (log in with the token below)")
    click.echo(f"Token:     {admin}")
    click.echo(f"           export HQ_URL={url} HQ_TOKEN=$(cat {home / 'admin.token'})")
    click.echo(f"Logs:      {log_dir}/\nCtrl-C stops HQ (running jobs finish first).\n")


def _supervise(children: list[Child], stopping: _Forwarder) -> None:
    """Wait for a signal or for a child to exit; say which exited, and how."""
    while not stopping.signals and all(c.alive() for c in children):
        time.sleep(0.2)
    for child in children:
        if child.alive():
            continue
        code = child.process.returncode
        tail = f":\n{child.tail()}" if code else ""  # a clean exit needs no log excerpt
        click.echo(f"hq {child.name} exited ({code}){tail}", err=True)
