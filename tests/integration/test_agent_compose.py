"""compose/agent.yml is valid for Compose v2, mounts the work folder at the same path inside and
outside, and refuses to start without HQ's URL and an agent token."""

from __future__ import annotations

import pytest

from tests.integration.test_compose import ROOT, run_config

AGENT_ENV = {"HQ_URL": "http://hq.internal:8080", "HQ_AGENT_TOKEN": "hq_" + "a" * 40}


def test_agent_compose_is_valid_and_mounts_the_work_folder_at_the_same_path() -> None:
    result = run_config(
        ROOT / "compose" / "agent.yml", {**AGENT_ENV, "HQ_AGENT_WORK_DIR": "/srv/hq-agent"}
    )
    assert result.returncode == 0, result.stderr
    assert "source: /srv/hq-agent\n        target: /srv/hq-agent\n" in result.stdout
    assert "HQ_AGENT_WORK_DIR: /srv/hq-agent" in result.stdout
    assert "target: /var/run/docker.sock" in result.stdout


@pytest.mark.parametrize("missing", sorted(AGENT_ENV))
def test_agent_compose_refuses_to_start_without(missing: str) -> None:
    env = {k: v for k, v in AGENT_ENV.items() if k != missing}
    result = run_config(ROOT / "compose" / "agent.yml", env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_agent_compose_passes_the_free_host_rules_and_leaves_them_unset_by_default() -> None:
    free = {"HQ_AGENT_FREE_MAX_LOAD": "1.5", "HQ_AGENT_FREE_WINDOWS": "mon-fri 19:00-07:00"}
    result = run_config(ROOT / "compose" / "agent.yml", {**AGENT_ENV, **free})
    assert result.returncode == 0, result.stderr
    assert 'HQ_AGENT_FREE_MAX_LOAD: "1.5"' in result.stdout
    assert "HQ_AGENT_FREE_WINDOWS: mon-fri 19:00-07:00" in result.stdout
    default = run_config(ROOT / "compose" / "agent.yml", AGENT_ENV)
    assert default.returncode == 0, default.stderr
    assert "HQ_AGENT_WHEN_BUSY: finish" in default.stdout
    assert 'HQ_AGENT_FREE_MIN_MEMORY: ""' in default.stdout
