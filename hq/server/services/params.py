"""Params and keys: pure functions for validating a submission and hashing it.

The memoisation key and the Idempotency-Key request hash both hash *canonical* JSON (sorted keys,
no spaces), so equal requests hash equal whatever their key order.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from hq import errors
from hq.schemas.manifest import Manifest
from hq.schemas.params_schema import UnusableSchema, check_usable, params_validator


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(
    *, digest: str, params: dict[str, Any], input_shas: dict[str, str], repeat: int
) -> str:
    """The memoisation key: image digest, canonical params, input sha256s (and the repeat)."""
    return sha256_text(
        canonical({"digest": digest, "params": params, "inputs": input_shas, "repeat": repeat})
    )


def with_defaults(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for name, prop in (schema.get("properties") or {}).items():
        if name not in out and isinstance(prop, dict) and "default" in prop:
            out[name] = prop["default"]
    return out


def _non_finite(value: Any, path: list[str]) -> tuple[list[str], float] | None:
    """The path of the first NaN or infinity in a JSON value (Python's JSON parser admits them;
    JSON, PostgreSQL's JSONB and scripts do not)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = (
        value.items()
        if isinstance(value, dict)
        else (enumerate(value) if isinstance(value, list) else ())
    )
    for key, item in items:
        found = _non_finite(item, [*path, str(key)])
        if found is not None:
            return found
    return None


def validate_params(
    manifest: Manifest, params: dict[str, Any], *, where: str = "params"
) -> dict[str, Any]:
    """Params with defaults filled in, or a 422 naming the field and what it must be."""
    bad = _non_finite(params, [where])
    if bad is not None:
        name = ".".join(bad[0])
        raise errors.ValidationFailed(
            f"{name}: {bad[1]} is not a finite number; JSON numbers must be finite", field=name
        )
    full = with_defaults(manifest.params, params)
    try:
        check_usable(manifest.params)
    except UnusableSchema as exc:  # stored before HQ checked this at publish
        raise errors.ValidationFailed(
            f"this script version's params schema cannot be used: {exc}; publish a new version",
            field="script",
        ) from exc
    validator = params_validator(manifest.params)
    problems = sorted(validator.iter_errors(full), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        parts = [str(p) for p in first.absolute_path]
        wanted = first.validator_value
        if first.validator == "required" and isinstance(first.instance, dict):
            parts += (
                [r for r in wanted if r not in first.instance][:1]
                if isinstance(wanted, list)
                else []
            )
        name = ".".join([where, *parts])
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise errors.ValidationFailed(f"{name}: {first.message}{more}", field=name)
    return full
