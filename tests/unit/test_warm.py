"""Warm containers, the parts with no engine: which versions run warm, what gets preloaded, and
the manifest's ``warm:`` field. The behaviour on the real engine is tests/e2e/test_warm.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.warm.container import NotWarmable, check_warmable
from agent.warm.endmark import STREAMS, EndMarks, new_marker
from agent.warm.runner import top_level_imports
from hq import errors, imaging
from hq.schemas.agents import Lease
from hq.schemas.manifest import Manifest

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"


def lease(command: list[str], **manifest: Any) -> Lease:
    return Lease(
        job_id="j",
        lease_token="t",
        attempt=1,
        lease_expires_at=datetime.now(UTC),
        image="hq/x",
        digest="sha256:" + "0" * 64,
        manifest=Manifest.model_validate({"name": "xx", "command": command, **manifest}),
        params={},
        inputs=[],
        timeout_s=60,
    )


@pytest.mark.parametrize(
    "command",
    [["python", "fit.py"], ["python3", "a.py", "--x"], ["/opt/venv/bin/python3.11", "m.py"]],
)
def test_a_python_script_file_runs_warm(command: list[str]) -> None:
    check_warmable(lease(command))


@pytest.mark.parametrize(
    ("command", "manifest", "why"),
    [
        (["python3", "-c", "print(1)"], {}, "Python script file"),
        (["Rscript", "fit.R"], {}, "not a python interpreter"),
        (["python"], {}, "not a python interpreter"),
        (["python", "fit.py"], {"warm": {"enabled": False}}, "turns warm containers off"),
        (["python", "fit.py"], {"resources": {"gpus": 1}}, "GPUs"),
    ],
)
def test_anything_else_runs_cold_and_says_why(
    command: list[str], manifest: dict[str, Any], why: str
) -> None:
    with pytest.raises(NotWarmable, match=why):
        check_warmable(lease(command, **manifest))


def test_the_preload_default_is_what_the_script_imports_at_its_top_level(tmp_path: Path) -> None:
    imports = top_level_imports(SCRIPTS_DIR / "linear-fit" / "fit.py")
    for name in ("numpy", "pandas", "scipy", "scipy.stats", "sklearn.linear_model"):
        assert name in imports
    assert "__future__" not in imports
    script = tmp_path / "s.py"
    script.write_text("import os\ndef f():\n    import late\nfrom . import rel\n")
    assert top_level_imports(script) == ["os"]  # not inside functions, not relative


def test_a_preload_entry_that_is_not_a_module_name_is_refused() -> None:
    text = 'name: xx\ncommand: ["python", "a.py"]\nwarm: {preload: ["pandas", "os; rm"]}\n'
    with pytest.raises(errors.ValidationFailed, match="module name"):
        imaging.parse_manifest(text)
    ok = imaging.parse_manifest(
        'name: xx\ncommand: ["python", "a.py"]\nwarm: {preload: [pandas.io]}\n'
    )
    assert ok.warm.preload == ["pandas.io"]


def test_the_end_markers_are_cut_out_of_any_chunking_and_end_the_job_once_on_both_streams() -> None:
    marker = new_marker()
    output = {"stdout": b"rows 3\nno newline at the end", "stderr": b"\x1e a lone separator\n"}
    for size in (1, 2, 5, len(marker) - 1, len(marker), 1000):  # the marker split anywhere
        marks = EndMarks(marker)
        got = dict.fromkeys(STREAMS, b"")
        for name in STREAMS:
            data = output[name] + marker + b"after the marker: not the job's"
            for at in range(0, len(data), size):
                got[name] += marks.feed(name, data[at : at + size])
            assert marks.done == (name == "stderr")
        assert got == output, size
    marks = EndMarks(marker)  # killed before the runner wrote it: all is output, never done
    held = marks.feed("stdout", b"partial" + marker[:5])
    assert held + marks.rest("stdout") == b"partial" + marker[:5] and not marks.done


def hand_over_when_ready(proc: subprocess.Popen[Any], control: Path, script: Path) -> None:
    """Once the runner in ``proc`` is ready, hand it ``python script`` with the end marker END."""
    deadline = time.monotonic() + 30
    while not (control / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the runner never got ready"
        time.sleep(0.01)
    with open(control / "handover", "w") as fifo:
        fifo.write(json.dumps({"argv": ["python", str(script)], "env": {}, "end": "END"}))


def test_the_runner_flushes_files_the_preload_and_the_job_left_open(tmp_path: Path) -> None:
    """The runner freezes what the preload made (so the end scans only the job's objects) and
    still flushes, like the interpreter's exit, a file a preloaded module opened and the job
    wrote, and a file the job opened and never closed. Run on this interpreter, no engine."""

    from agent.warm import runner

    app, control, out = tmp_path / "app", tmp_path / "control", tmp_path / "out"
    for folder in (app, control, out):
        folder.mkdir()
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "opener.py").write_text(f"LOG = open({str(out / 'preloaded.txt')!r}, 'w')\n")
    (app / "job.py").write_text(
        "import gc, opener\n"
        "opener.LOG.write('from the job')\n"
        f"mine = open({str(out / 'mine.txt')!r}, 'w')\n"
        "mine.write('never closed')\n"
        "print('frozen', gc.get_freeze_count() > 0)\n"
    )
    (control / "config.json").write_text(json.dumps({"preload": ["opener"]}))
    os.mkfifo(control / "handover")
    env = {**os.environ, "HQ_WARM_CONTROL": str(control), "PYTHONPATH": str(lib)}
    proc = subprocess.Popen(
        [sys.executable, runner.__file__], env=env, stdout=subprocess.PIPE, text=True
    )
    hand_over_when_ready(proc, control, app / "job.py")
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "frozen True" in stdout
    assert (out / "preloaded.txt").read_text() == "from the job"
    assert (out / "mine.txt").read_text() == "never closed"


def test_after_its_job_the_runner_stays_frozen_until_removed_or_its_linger_is_over(
    tmp_path: Path,
) -> None:
    """A container's exit costs the engine CPU just when the agent reports the job, so the
    runner, as the container's first process, stays once it has announced the end: the job's
    other processes killed first (as the kernel does when the first process exits), its threads
    never run again. It ends when removed (SIGKILL), or after ``linger_s``. Run as
    PID 1 of a new PID namespace (``unshare``), no engine."""

    from agent.warm import runner

    app, control, out = tmp_path / "app", tmp_path / "control", tmp_path / "out"
    for folder in (app, control, out):
        folder.mkdir()
    (app / "job.py").write_text(
        "import subprocess, sys, threading, time\n"
        f"subprocess.Popen(['sh', '-c', 'sleep 0.5; touch {out}/child.txt'])\n"
        "late = lambda: (time.sleep(0.5), open("
        + repr(f"{out}/thread.txt")
        + ", 'w').write('x'))\n"
        "threading.Thread(target=late, daemon=True).start()\n"
        "sys.exit(3)\n"
    )
    (control / "config.json").write_text(json.dumps({"preload": [], "linger_s": 2}))
    os.mkfifo(control / "handover")
    env = {**os.environ, "HQ_WARM_CONTROL": str(control)}
    command = ["unshare", "--pid", "--fork", "--kill-child", sys.executable, runner.__file__]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
    hand_over_when_ready(proc, control, app / "job.py")
    handed = time.monotonic()
    assert proc.stdout is not None
    assert proc.stdout.read(3) == b"END"  # the end, announced at once
    assert (control / "exit").read_text() == "3"
    time.sleep(1)  # past the child's and the thread's writes
    assert proc.poll() is None, "the runner did not stay"
    assert proc.wait(timeout=30) == 1  # its linger is over (the status is in `exit`)
    assert time.monotonic() - handed >= 1.9
    assert not (out / "child.txt").exists(), "the job's child process ran on after its end"
    assert not (out / "thread.txt").exists(), "the job's thread ran on after its end"
