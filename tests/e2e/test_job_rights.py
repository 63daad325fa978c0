"""Who may cancel a job, and the README's role table against the code's.

Jobs record the token that submitted them: a submitter cancels its own jobs, an admin any job,
and another submitter gets a 403 that says why. The route table in the README must say what
``tests/e2e/test_api_auth.py``'s ROLE_TABLE (which every route is checked against) says.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hq import errors
from tests.e2e.test_api_auth import ROLE_TABLE
from tests.fixtures.api import ROLES, publish_fake
from tests.fixtures.server import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def test_a_submitter_cancels_its_own_jobs_and_no_one_elses(sqlite_server: LiveServer) -> None:
    admin = sqlite_server.client("admin")
    script = publish_fake(admin).script
    alice = sqlite_server.client("submitter", name="alice")
    bob = sqlite_server.client("submitter", name="bob")
    mine, other, third = (alice.submit_job(script=script, params={"n": i}) for i in (1, 2, 3))

    with pytest.raises(errors.Forbidden, match="submitted with another token") as refused:
        bob.cancel_job(mine.id)
    assert "admin" in refused.value.message
    assert bob.get_job(mine.id).status == "queued"  # refused: nothing changed
    assert alice.cancel_job(mine.id).status == "cancelled"
    assert admin.cancel_job(other.id).status == "cancelled"  # an admin may cancel any job
    swept = bob.submit_sweep(script=script, grid={"n": [1, 2]})
    [first, *_] = bob.list_jobs(sweep=swept.id).items
    with pytest.raises(errors.Forbidden):
        alice.cancel_job(first.id)
    assert bob.cancel_job(first.id).status == "cancelled"  # a sweep's jobs are its submitter's
    with pytest.raises(errors.Forbidden, match="role 'publisher' may not do this"):
        sqlite_server.client("publisher").cancel_job(third.id)


def _readme_roles(who: str) -> frozenset[str]:
    readers = {"viewer", "submitter", "publisher"}
    if who == "any token":
        return frozenset(ROLES)
    names: set[str] = {"admin"}
    for word in re.split(r"[,\s]+", who.replace("(lease holder)", "")):
        names |= readers if word == "readers" else {word} if word else set()
    return frozenset(names)


def test_the_readme_role_table_says_what_the_code_does() -> None:
    rows = re.findall(r"^\| `(GET|POST) (/[^`\s\[|]+)` \| ([^|]+) \|", README.read_text(), re.M)
    checked = 0
    for method, path, who in rows:
        key = (method, re.sub(r"\{id\}", "{job_id}", path))
        if key not in ROLE_TABLE:
            continue
        assert _readme_roles(who.strip()) == ROLE_TABLE[key], (method, path, who)
        checked += 1
    assert checked >= 6  # the promote and cancel rows among them
    promote = next(r for r in rows if r[1] == "/api/v1/datasets/{name}/promote")
    assert _readme_roles(promote[2].strip()) == ROLE_TABLE[("POST", promote[1])]
