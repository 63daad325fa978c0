"""How the agent turns a container's end into a job's, and how it builds itself from flags and
the environment (``agent.main``). No I/O: nothing here reaches Docker or HQ."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.final import Final, final_from_exit
from agent.main import AgentError, load_settings, parser, run
from agent.settings import AgentSettings
from hq.schemas.common import JobStatus


@pytest.mark.parametrize(
    ("exit_code", "oom_killed", "killed_for", "expected"),
    [
        (0, False, None, Final(JobStatus.succeeded, 0, None)),
        (3, False, None, Final(JobStatus.failed, 3, "exit code 3", "exit")),
        (-1, False, None, Final(JobStatus.failed, -1, "exit code -1", "exit")),
        (137, True, None, Final(JobStatus.failed, 137, "out-of-memory", "oom")),
        (137, True, JobStatus.cancelled, Final(JobStatus.cancelled, 137, "cancelled")),
        (137, False, JobStatus.timed_out, Final(JobStatus.timed_out, 137, "timeout", "timeout")),
        (0, False, JobStatus.cancelled, Final(JobStatus.cancelled, 0, "cancelled")),
    ],
)
def test_a_container_end_maps_to_one_final_status(
    exit_code: int, oom_killed: bool, killed_for: JobStatus | None, expected: Final
) -> None:
    got = final_from_exit(exit_code=exit_code, oom_killed=oom_killed, killed_for=killed_for)
    assert got == expected


def test_python_m_agent_flags_name_settings_fields() -> None:
    args = ["--capacity", "3", "--work-dir", "/srv/agent", "--labels", "gpu", "--name", "w1"]
    flags = vars(parser().parse_args(args))
    assert flags.pop("log_level") == "INFO"
    assert set(flags) <= set(AgentSettings.model_fields)
    settings = load_settings(overrides=flags)
    assert (settings.agent_capacity, settings.work_dir, settings.labels, settings.agent_name) == (
        3,
        Path("/srv/agent"),
        ["gpu"],
        "w1",
    )


def test_invalid_settings_are_one_line_errors_not_tracebacks() -> None:
    with pytest.raises(AgentError, match="invalid agent settings"):
        load_settings(overrides={"agent_capacity": 0})
    with pytest.raises(AgentError, match="an agent token is needed"):
        run(settings=AgentSettings(token=None))
