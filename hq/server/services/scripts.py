"""Scripts and their immutable versions."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import NAME_HELP, NAME_RE, is_number
from hq.schemas.scripts import ScriptRead, ScriptVersionCreate, ScriptVersionRead
from hq.server.db.models import Script, ScriptVersion


async def publish_version(
    session: AsyncSession, *, name: str, body: ScriptVersionCreate
) -> tuple[ScriptVersionRead, bool]:
    """A new version, or the latest one when it is the same image digest and manifest.

    Returns the version and whether it was created.
    """
    if not NAME_RE.fullmatch(name):
        raise errors.ValidationFailed(f"invalid script name {name!r}: {NAME_HELP}", field="name")
    if body.manifest.name != name:
        raise errors.ValidationFailed(
            f"manifest.name is {body.manifest.name!r} but the URL names {name!r}; make them equal",
            field="manifest.name",
        )
    script = await session.get(Script, name, with_for_update=True)
    manifest = body.manifest.model_dump(mode="json")
    if script is None:
        script = Script(name=name, description=body.manifest.description)
        session.add(script)
        await session.flush()
    else:
        script.description = body.manifest.description
        latest = await session.scalar(
            select(ScriptVersion)
            .where(ScriptVersion.script_name == name)
            .order_by(ScriptVersion.version.desc())
            .limit(1)
        )
        if (
            latest is not None
            and latest.digest == body.digest
            and latest.manifest == manifest
            and latest.image == body.image
        ):
            return ScriptVersionRead.model_validate(latest), False
    number = (
        await session.scalar(
            select(func.max(ScriptVersion.version)).where(ScriptVersion.script_name == name)
        )
        or 0
    ) + 1
    row = ScriptVersion(
        script_name=name, version=number, image=body.image, digest=body.digest, manifest=manifest
    )
    session.add(row)
    await session.flush()
    return ScriptVersionRead.model_validate(row), True


async def list_scripts(session: AsyncSession) -> list[ScriptRead]:
    latest = (
        select(ScriptVersion.script_name, func.max(ScriptVersion.version).label("v"))
        .group_by(ScriptVersion.script_name)
        .subquery()
    )
    rows = await session.execute(
        select(Script, latest.c.v)
        .outerjoin(latest, latest.c.script_name == Script.name)
        .order_by(Script.name)
    )
    return [ScriptRead.from_row(s, latest_version=v) for s, v in rows]


async def get_script(session: AsyncSession, *, name: str) -> ScriptRead:
    script = await session.get(Script, name)
    if script is None:
        raise errors.NotFound(f"script {name!r} not found; see GET /api/v1/scripts")
    versions = (
        await session.scalars(
            select(ScriptVersion)
            .where(ScriptVersion.script_name == name)
            .order_by(ScriptVersion.version.desc())
        )
    ).all()
    return ScriptRead.from_row(
        script,
        latest_version=versions[0].version if versions else None,
        versions=[ScriptVersionRead.model_validate(v) for v in versions],
    )


# Every submission resolves its script: built once (building a statement costs more than the
# cache lookup that finds it compiled), the name and version bound per call.
_LATEST = (
    select(ScriptVersion)
    .where(ScriptVersion.script_name == bindparam("name"))
    .order_by(ScriptVersion.version.desc())
    .limit(1)
)
_NUMBERED = select(ScriptVersion).where(
    ScriptVersion.script_name == bindparam("name"), ScriptVersion.version == bindparam("version")
)


async def resolve(session: AsyncSession, *, ref: str) -> ScriptVersion:
    """``name`` or ``name@version`` to a stored version's row (for submissions)."""
    name, _, version_text = ref.partition("@")
    if version_text:
        if not is_number(version_text) or not 1 <= int(version_text) < 2**31:
            raise errors.ValidationFailed(
                f"script {ref!r}: the version after '@' must be a number from 1", field="script"
            )
        row = await session.scalar(_NUMBERED, {"name": name, "version": int(version_text)})
    else:
        row = await session.scalar(_LATEST, {"name": name})
    if row is None:
        known = (await session.scalars(select(Script.name).order_by(Script.name).limit(20))).all()
        if name in known:
            raise errors.NotFound(f"script {name!r} has no version {version_text}", field="script")
        hint = f"; published scripts: {', '.join(known)}" if known else "; none is published yet"
        raise errors.NotFound(f"unknown script {name!r}{hint}", field="script")
    return row
