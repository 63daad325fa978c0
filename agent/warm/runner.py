"""The program a warm container runs: preload, wait for one job, run it as ``python script.py``.

This file is copied into the agent's work folder and mounted read-only in the container at
``/hq/.runner/runner.py``; it runs on the image's own interpreter, so it uses only the standard
library (Python 3.9 or later). Its control folder ``/hq/.warm`` (private to this container)
holds ``config.json`` (what to preload, written by the agent), ``handover`` (a FIFO), and the
files it writes: ``ready`` once the preload is done, ``failed`` if a listed module would not
import (the agent then runs the script cold).

The hand-over is one JSON object read from the FIFO: ``argv`` (the job's command after the
manifest's substitutions, ``argv[0]`` the interpreter), ``env`` (the per-job variables) and
``end``, the marker that says on stdout and stderr that the job is over (its status is in
``exit`` by then). Having said it, the runner stays, frozen, until the agent removes the
container (``linger``): a container's exit costs the engine CPU just when the agent reports
the job.
From there it is ``python script.py args...``: ``sys.argv``, ``sys.path[0]`` the script's
folder, ``__name__ == "__main__"``, ``sys.exit`` codes and uncaught exceptions (traceback on
stderr, exit 1) as the interpreter gives them. One container runs one job and then ends.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import contextlib
import faulthandler
import gc
import importlib
import importlib.machinery
import importlib.util
import io
import json
import os
import signal
import sys
import traceback
import types
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

CONTROL = Path(os.environ.get("HQ_WARM_CONTROL", "/hq/.warm"))
PRELOAD_FAILED_EXIT = 70
LINGER_SECONDS = 30  # at most, after the end (config.json's ``linger_s``)
_pause: Callable[[], object] | None = None
try:  # libc's pause(), called without giving up the GIL: no other thread runs while it waits
    import ctypes

    _pause = ctypes.PyDLL(None).pause
except (ImportError, OSError, AttributeError):  # an interpreter without ctypes: no linger
    pass
_watchdog_out: list[io.TextIOWrapper] = []  # where the linger's watchdog writes, kept open
# Files open once the preload is done: ``finish`` flushes them with those the job opened. After
# the preload the collector's objects are frozen (``gc.freeze``), so that the end's look for the
# job's open files sees only what the job made: a scan of every object with pandas and
# scikit-learn loaded took 40 ms, most of a warm job's own time.
_preloaded_files: weakref.WeakSet[io.IOBase] = weakref.WeakSet()


def freeze_preloaded() -> None:
    """Remember the files open now, then move every object the preload made out of the
    collector's sight (never collected, never scanned again: a container runs one job)."""
    _preloaded_files.update(o for o in gc.get_objects() if isinstance(o, io.IOBase))
    gc.freeze()


def top_level_imports(script: Path) -> list[str]:
    """The modules a script imports at its top level (``import a.b``, ``from a import b``)."""
    try:
        tree = ast.parse(script.read_bytes(), filename=str(script))
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)  # and each name, in case it is a submodule
            names.extend(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
    return [n for n in dict.fromkeys(names) if n.split(".")[0] != "__future__"]


def _outside(name: str, folder: Path) -> bool:
    """True when ``name`` is importable and not the script's own module (which must not run
    before the job: it may read the job's environment at import time)."""
    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    origin = spec.origin or ""
    locations = list(spec.submodule_search_locations or [])
    return not any(str(p).startswith(str(folder) + os.sep) for p in [origin, *locations])


def preload(config: dict[str, object]) -> str | None:
    """Import the listed modules (an error is a reason), or what the script imports at its top
    level (one that fails is simply not preloaded); None when done."""
    listed = config.get("preload")
    if isinstance(listed, list):
        for name in listed:
            try:
                importlib.import_module(str(name))
            except BaseException as exc:  # any failure means a cold start
                return f"preload {name}: {type(exc).__name__}: {exc}"
        return None
    script = Path(str(config.get("script", ""))).absolute()
    folder = script.parent
    for name in top_level_imports(script):
        if _outside(name, folder) and importlib.util.find_spec(name.split(".")[0]):
            try:
                importlib.import_module(name)
            except BaseException:  # not a module (a name in one), or it fails cold as well
                continue
    return None


def _write(name: str, text: str) -> None:
    tmp = CONTROL / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(CONTROL / name)


def wait_for_job() -> dict[str, object]:
    with open(CONTROL / "handover", "rb") as fifo:
        data = json.loads(fifo.read().decode("utf-8"))
    if not isinstance(data, dict):
        raise SystemExit("hq warm runner: the hand-over is not a JSON object")
    return data


def _script_frames(tb: TracebackType | None, script: str) -> TracebackType | None:
    """The traceback from the script's first frame on, as ``python script.py`` shows it."""
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    return tb


def exec_as_main(script: str) -> None:
    """Run ``script`` as the interpreter runs ``python script.py``: a fresh ``__main__`` module
    with the script's absolute ``__file__`` (``runpy.run_path`` would rewrite ``argv[0]``)."""
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    main.__dict__.update(__cached__=None, __builtins__=builtins)
    sys.modules["__main__"] = main
    with open(script, "rb") as fh:
        code = compile(fh.read(), script, "exec", dont_inherit=True)
    exec(code, main.__dict__)  # the job's own script, as python would run it


def run_job(job: dict[str, object]) -> int:
    """Run the handed-over job; its exit status."""
    argv, env = job.get("argv"), job.get("env")
    if not isinstance(argv, list) or len(argv) < 2 or not isinstance(env, dict):
        raise SystemExit("hq warm runner: the hand-over needs argv and env")
    argv = [str(a) for a in argv]
    os.environ.update({str(k): str(v) for k, v in env.items()})
    script = os.path.abspath(argv[1])
    sys.argv = argv[1:]
    sys.path[0] = os.path.dirname(script)
    try:
        exec_as_main(script)
    except SystemExit as exc:
        return exit_status(exc)
    except BaseException as exc:  # as the interpreter reports an uncaught one
        tb = _script_frames(exc.__traceback__, script) or exc.__traceback__
        traceback.print_exception(type(exc), exc, tb)
        return 1
    return 0


def exit_status(exc: SystemExit) -> int:
    """The status ``sys.exit(code)`` gives: None 0, an int itself, anything else printed, 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def finish(status: int, end: str | None = None, linger_s: int = LINGER_SECONDS) -> None:
    """Exit as the interpreter does, as far as a script can see: non-daemon threads joined,
    ``atexit`` handlers run, every file still open flushed, then stdio; then at once, without
    the interpreter's teardown of its modules (seconds, with pandas and scikit-learn loaded)."""
    shutdown = getattr(sys.modules.get("threading"), "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for obj in [*_preloaded_files, *gc.get_objects()]:
        if isinstance(obj, io.IOBase) and obj not in (sys.stdout, sys.stderr):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:  # as teardown would, ignore a file that cannot be flushed
                continue
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or broken stdio, as at normal exit
            continue
    first = os.getpid() == 1 and _pause is not None
    if first:  # the job's other processes end with it, as at the first process's exit
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
    if end and announce_end(status & 0xFF, end.encode("utf-8")) and first:
        linger(seconds=linger_s)
    os._exit(status & 0xFF)


def announce_end(status: int, marker: bytes) -> bool:
    """The exit status in ``exit``, then ``marker`` on stdout and stderr: the agent has the
    whole job once it has seen both (agent/warm/endmark.py). A stdio the script closed stops
    this (False); the agent then waits for the container's exit as for a cold job."""
    try:
        _write("exit", str(status))
        for fd in (1, 2):
            view = memoryview(marker)
            while view:
                view = view[os.write(fd, view) :]
    except OSError:
        return False
    return True


def linger(*, seconds: int) -> None:
    """Stay until the agent removes the container (it does once it has reported the job: a
    container's exit costs the engine CPU just then), at most ``seconds``. Nothing of the job
    runs meanwhile: its other processes are gone, and the main thread waits in libc's pause()
    holding the GIL with every signal blocked, so no Python thread runs again. The cap is
    faulthandler's watchdog, a C thread that ends the process without the GIL (exit 1; the
    job's status is in ``exit``)."""
    _watchdog_out.append(open(os.devnull, "w"))  # noqa: SIM115 (open while the watchdog is)
    faulthandler.dump_traceback_later(max(1, seconds), exit=True, file=_watchdog_out[0])
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    assert _pause is not None
    while True:
        _pause()


def main() -> None:
    config = json.loads((CONTROL / "config.json").read_text())
    problem = preload(config)
    if problem is not None:
        _write("failed", problem)
        raise SystemExit(PRELOAD_FAILED_EXIT)
    freeze_preloaded()
    _write("ready", "")
    job = wait_for_job()
    end, linger_s = job.get("end"), config.get("linger_s", LINGER_SECONDS)
    finish(
        run_job(job),
        end if isinstance(end, str) else None,
        linger_s if isinstance(linger_s, int) else LINGER_SECONDS,
    )


if __name__ == "__main__":
    main()
