"""`hq script init`: argparse parsers -> draft manifests, read by running the script or its source.

Each parser is a real script in a temporary folder, read by the real probe (a subprocess) or by
the ast reader; the drafts are parsed back with the manifest's own validation. Tests marked
``needs_forms`` check drafts with switches, lists or optional groups against ``Manifest``: they
wait on the command forms of docs/manifest.md (hq/schemas/command.py, branch h14-cmd).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hq.cli import main as cli
from hq.imaging.init import init_script, render
from hq.imaging.init_mapping import map_actions
from hq.imaging.init_parser import parser_from_source, read_parser
from hq.imaging.init_requirements import resolve
from hq.imaging.manifest import parse_manifest

HAS_FORMS = importlib.util.find_spec("hq.schemas.command") is not None
needs_forms = pytest.mark.skipif(
    not HAS_FORMS, reason="waits on h14-cmd: the manifest's command forms (hq/schemas/command.py)"
)

EVERY_ACTION = """
import argparse

def main():
    parser = argparse.ArgumentParser(description="Every action kind")
    parser.add_argument("mode", choices=["fast", "slow"], help="how")
    parser.add_argument("extra", nargs="?", default="x")
    parser.add_argument("files", nargs="*")
    parser.add_argument("--n", type=int, default="5", help="count (default %(default)s)")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--maxiter", type=int)
    parser.add_argument("--plot", action="store_true", help="draw")
    parser.add_argument("--no-cache", action="store_false")
    parser.add_argument("--color", action=argparse.BooleanOptionalAction)
    parser.add_argument("--size", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pair", type=float, nargs=2)
    parser.add_argument("--tag", action="append")
    parser.add_argument("--fast", dest="speed", action="store_const", const="fast")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--version", action="version", version="1")
    parser.add_argument("--data", required=True, help="input CSV")
    parser.add_argument("--out", default="report.json")
    parser.add_argument("--results-dir")
    args = parser.parse_args()
    raise SystemExit("not reached: the probe stops at parse_args")

if __name__ == "__main__":
    main()
"""

EXPECTED_COMMAND: list[Any] = [
    "python",
    "every.py",
    "{params.mode}",
    "{params.extra}",
    {"list": "files"},
    "--n",
    "{params.n}",
    "--rate",
    "{params.rate}",
    ["--maxiter", "{params.maxiter}"],
    {"switch": "plot", "flag": "--plot"},
    {"switch": "cache", "off_flag": "--no-cache"},
    {"switch": "color", "flag": "--color", "off_flag": "--no-color"},
    {"list": "size", "flag": "--size"},
    {"list": "pair", "flag": "--pair"},
    {"list": "tag", "flag": "--tag", "repeat": True},
    {"switch": "speed_fast", "flag": "--fast"},
    "--data",
    "{inputs.data}",
    "--out",
    "/hq/outputs/report.json",
    "--results-dir",
    "/hq/outputs",
]


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def draft_of(script: Path, *, by_source: bool = False) -> dict[str, Any]:
    info = (
        parser_from_source(script.read_text())
        if by_source
        else read_parser(script, python=sys.executable)
    )
    assert info.how == ("source" if by_source else "run"), info.why_not_run
    data: dict[str, Any] = yaml.safe_load(
        render(script, "t-script", info, map_actions(info.actions))
    )
    return data


def test_every_action_kind_maps_to_its_form(tmp_path: Path) -> None:
    data = draft_of(write(tmp_path, "every.py", EVERY_ACTION))
    assert data["command"] == EXPECTED_COMMAND
    props = data["params"]["properties"]
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"], "description": "how"}
    assert props["n"] == {"type": "integer", "default": 5, "description": "count (default 5)"}
    assert props["rate"] == {"type": "number"}
    assert props["maxiter"] == {"type": "integer"}
    assert props["plot"] == {"type": "boolean", "default": False, "description": "draw"}
    assert props["cache"] == {"type": "boolean", "default": True}
    assert props["color"] == {"type": "boolean"}
    assert props["size"] == {
        "type": "array",
        "items": {"type": "integer"},
        "minItems": 1,
        "default": [1, 2],
    }
    assert props["pair"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
    }
    assert props["tag"] == {"type": "array", "items": {"type": "string"}}
    assert props["files"] == {"type": "array", "items": {"type": "string"}}
    assert set(data["params"]["required"]) == {"mode", "rate"}
    assert data["inputs"] == {"data": {"description": "input CSV", "required": True}}
    assert "verbose" not in props and "version" not in props
    text = (tmp_path / "every.py").read_text()
    assert text  # the script itself is untouched by the probe


def test_the_source_reader_gives_the_same_draft_as_running_it(tmp_path: Path) -> None:
    script = write(tmp_path, "every.py", EVERY_ACTION)
    by_run, by_source = draft_of(script), draft_of(script, by_source=True)
    assert by_source["command"] == by_run["command"]
    assert by_source["params"] == by_run["params"]
    assert by_source["inputs"] == by_run["inputs"]


@needs_forms
def test_the_every_action_draft_validates_as_a_manifest(tmp_path: Path) -> None:
    script = write(tmp_path, "every.py", EVERY_ACTION)
    result = init_script(script)
    assert result.problems is None, result.problems
    manifest = parse_manifest(result.manifest_path.read_text())
    assert len(manifest.command) == len(EXPECTED_COMMAND)


PLAIN = """
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True, help="CSV file")
parser.add_argument("--column", required=True)
parser.add_argument("--bins", type=int, default=5)
parser.add_argument("--method", choices=["mean", "median"], default="mean")
parser.add_argument("--output", default="stats.json")
args = parser.parse_args()
"""


def test_a_draft_without_switches_or_lists_passes_build_check(tmp_path: Path) -> None:
    script = write(tmp_path / "csv-stats", "stats.py", PLAIN)
    runner = CliRunner()
    done = runner.invoke(cli, ["script", "init", str(script)])
    assert done.exit_code == 0, done.output
    data = yaml.safe_load((script.parent / "hq.yaml").read_text())
    assert data["name"] == "csv-stats"
    assert data["command"] == [
        "python", "stats.py", "--input", "{inputs.input}", "--column", "{params.column}",
        "--bins", "{params.bins}", "--method", "{params.method}",
        "--output", "/hq/outputs/stats.json",
    ]  # fmt: skip
    assert "# HQ: confirm" in (script.parent / "hq.yaml").read_text()
    assert not (script.parent / "requirements.txt").exists()  # argparse only: nothing to install
    checked = runner.invoke(cli, ["script", "build", "--check", str(script.parent)])
    assert checked.exit_code == 0, checked.output
    assert "valid manifest of csv-stats" in checked.output


def test_an_existing_hq_yaml_is_kept_unless_force(tmp_path: Path) -> None:
    script = write(tmp_path / "plain", "stats.py", PLAIN)
    (script.parent / "hq.yaml").write_text("name: mine\n")
    runner = CliRunner()
    done = runner.invoke(cli, ["script", "init", str(script)])
    assert done.exit_code == 1 and "exists: pass --force" in done.output
    assert (script.parent / "hq.yaml").read_text() == "name: mine\n"
    assert sorted(p.name for p in script.parent.iterdir()) == ["hq.yaml", "stats.py"]
    done = runner.invoke(cli, ["script", "init", str(script), "--force"])
    assert done.exit_code == 0, done.output
    assert yaml.safe_load((script.parent / "hq.yaml").read_text())["name"] == "plain"


def test_build_check_refuses_a_bad_manifest(tmp_path: Path) -> None:
    (tmp_path / "hq.yaml").write_text("name: bad\ncommand: [python, x.py, '{params.nope}']\n")
    done = CliRunner().invoke(cli, ["script", "build", "--check", str(tmp_path)])
    assert done.exit_code == 1
    assert "params.properties has no 'nope'" in done.output or "no 'nope'" in done.output


def test_a_missing_import_falls_back_to_the_source(tmp_path: Path) -> None:
    script = write(tmp_path, "every.py", "import not_installed_anywhere_h14\n" + EVERY_ACTION)
    info = read_parser(script)
    assert info.how == "source"
    assert "not_installed_anywhere_h14" in (info.why_not_run or "")
    assert draft_of(script, by_source=True)["command"] == EXPECTED_COMMAND


def test_a_script_that_never_parses_or_hangs_falls_back(tmp_path: Path) -> None:
    never = write(tmp_path, "never.py", "import argparse\np = argparse.ArgumentParser()\n"
                  "p.add_argument('--k', type=int, default=3)\n")  # fmt: skip
    info = read_parser(never)
    assert info.how == "source" and "without calling" in (info.why_not_run or "")
    assert [a["dest"] for a in info.actions] == ["k"]
    hangs = write(tmp_path, "hangs.py", "import time\ntime.sleep(60)\n" + PLAIN)
    info = read_parser(hangs, timeout_s=1.0)
    assert info.how == "source" and "within 1 s" in (info.why_not_run or "")
    assert "input" in [a["dest"] for a in info.actions]


def test_a_script_run_to_its_end_writes_nothing_beside_itself(tmp_path: Path) -> None:
    script = write(tmp_path, "writes.py", "open('results.json', 'w').write('{}')\n")
    info = read_parser(script)
    assert info.how == "source" and "without calling" in (info.why_not_run or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["writes.py"]


def test_an_empty_default_list_is_no_default_of_a_non_empty_list(tmp_path: Path) -> None:
    source = "import argparse\np = argparse.ArgumentParser()\n"
    source += "p.add_argument('--size', type=int, nargs='+', default=[])\np.parse_args()\n"
    script = write(tmp_path, "sizes.py", source)
    size = draft_of(script)["params"]["properties"]["size"]
    assert size == {"type": "array", "items": {"type": "integer"}, "minItems": 1}


def test_an_unreadable_add_argument_is_listed_not_guessed() -> None:
    info = parser_from_source(
        "import argparse\np = argparse.ArgumentParser()\nNAME = '--x'\n"
        "p.add_argument(NAME)\np.add_argument('--y', type=int, default=2)\n"
    )
    assert [a["dest"] for a in info.actions] == ["y"]
    assert len(info.skipped) == 1 and "line 4" in info.skipped[0]


def test_requirements_map_imports_to_distributions(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    script = write(
        tmp_path,
        "job.py",
        """
        import os, json
        import numpy as np
        import yaml
        from sklearn.linear_model import Ridge
        from PIL import Image
        import helpers
        from mypkg import thing
        from . import sibling
        try:
            import no_such_dist_h14
        except ImportError:
            pass
        """,
    )
    found = resolve(script)
    numpy = importlib.metadata.version("numpy")
    pyyaml = importlib.metadata.version("PyYAML")
    assert found.lines[:2] == [f"numpy=={numpy}", f"PyYAML=={pyyaml}"]
    assert importlib.util.find_spec("sklearn") is None  # so it comes from the table, unpinned
    pillow = "Pillow"  # from the table, unless this interpreter has it (then pinned)
    if importlib.util.find_spec("PIL") is not None:
        dist = importlib.metadata.packages_distributions()["PIL"][0]
        pillow = f"{dist}=={importlib.metadata.version(dist)}"
    assert found.lines[2:] == ["scikit-learn", pillow]
    assert found.unresolved == ["no_such_dist_h14"]
    assert "# HQ: confirm: no distribution found for `import no_such_dist_h14`" in found.text()


def test_init_writes_requirements_beside_the_script(tmp_path: Path) -> None:
    script = write(tmp_path / "fit", "fit.py", "import numpy\n" + PLAIN)
    result = init_script(script)
    assert result.requirements_path == script.parent / "requirements.txt"
    assert result.requirements_path.read_text().startswith("numpy==")
    assert result.problems is None


def test_a_python_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    script = write(tmp_path / "plain", "stats.py", PLAIN)
    done = CliRunner().invoke(cli, ["script", "init", str(script), "--python", "/nope/python3"])
    assert done.exit_code == 1 and "--python /nope/python3 is not an interpreter" in done.output
    assert not (script.parent / "hq.yaml").exists()


CLICK = """
import click

@click.command(help="Fit a model")
@click.argument("table")
@click.option("--alpha", type=float, default=0.5, help="regularisation")
@click.option("--folds", type=int, required=True)
@click.option("--model", type=click.Choice(["ridge", "lasso"]), default="ridge")
@click.option("--plot", is_flag=True)
@click.option("--cache/--no-cache", default=True)
@click.option("--tag", multiple=True)
@click.option("--size", type=int, nargs=2)
@click.option("--out", default="fit.json")
def main(table, alpha, folds, model, plot, cache, tag, size, out):
    raise SystemExit("not reached")

if __name__ == "__main__":
    main()
"""


def test_a_click_command_maps_like_argparse(tmp_path: Path) -> None:
    data = draft_of(write(tmp_path, "fit.py", CLICK))
    assert data["description"] == "Fit a model"
    assert data["command"] == [
        "python", "fit.py", "{inputs.table}", "--alpha", "{params.alpha}",
        "--folds", "{params.folds}", "--model", "{params.model}",
        {"switch": "plot", "flag": "--plot"},
        {"switch": "cache", "flag": "--cache", "off_flag": "--no-cache"},
        {"list": "tag", "flag": "--tag", "repeat": True},
        {"list": "size", "flag": "--size"},
        "--out", "/hq/outputs/fit.json",
    ]  # fmt: skip
    props = data["params"]["properties"]
    assert props["alpha"] == {"type": "number", "default": 0.5, "description": "regularisation"}
    assert props["model"] == {"type": "string", "enum": ["ridge", "lasso"], "default": "ridge"}
    assert props["cache"] == {"type": "boolean", "default": True}
    assert props["size"]["minItems"] == props["size"]["maxItems"] == 2
    assert set(data["params"]["required"]) == {"folds"}
    assert data["inputs"] == {"table": {"description": "", "required": True}}


def test_a_click_script_that_cannot_run_says_nothing_was_read(tmp_path: Path) -> None:
    script = write(tmp_path / "fit", "fit.py", "import not_installed_anywhere_h14\n" + CLICK)
    result = init_script(script)
    assert result.parser.how == "source" and result.parser.actions == []
    assert result.notes == ["no argparse add_argument call found in the source"]
    text = result.manifest_path.read_text()
    assert "# Not mapped: no argparse add_argument call found in the source" in text
    assert yaml.safe_load(text)["command"] == ["python", "fit.py"]
    assert result.problems is None
