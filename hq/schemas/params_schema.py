"""Validating params against a script's JSON Schema safely: its regexes run on RE2 (linear time,
so no pattern can freeze the server) and no ``$ref`` is fetched from the network.

``check_usable`` is what publishing asks of a params schema; ``params_validator`` is the one
validator class the server and the web app validate params with.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import re2
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

# Values a schema holds as data, not as schemas: a "pattern" key inside them is no regex.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
_REF_KEYWORDS = ("$ref", "$dynamicRef")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported in the 422, not on stderr


class UnusableSchema(ValueError):
    """A params schema HQ cannot validate with: ``path`` is where, the message says why."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        self.path = path
        super().__init__(message)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2, or ``UnusableSchema`` saying why RE2 refuses it."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise UnusableSchema(
            (),
            f"pattern {pattern!r} cannot run on RE2, HQ's linear-time regex engine ({reason}); "
            "backreferences and lookaround are not supported",
        ) from None


def _walk(schema: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """(path, keyword, value) of every keyword in a schema tree, data keywords skipped."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from _walk(item, (*path, str(i)))
    elif isinstance(schema, dict):
        for key, value in schema.items():
            yield path, key, value
            if key not in _DATA_KEYWORDS:
                yield from _walk(value, (*path, key))


def _check(schema: dict[str, Any]) -> None:
    uses_patterns = unevaluated = False
    for path, key, value in _walk(schema, ()):
        if key in _REF_KEYWORDS and isinstance(value, str) and not value.startswith("#"):
            raise UnusableSchema(
                (*path, key),
                f"{key} {value!r} is not local: HQ resolves only references inside the schema "
                "('#/$defs/...'); copy the referenced schema into $defs",
            )
        if key == "pattern" and isinstance(value, str):
            _at(path, key, value)
        if key == "patternProperties" and isinstance(value, dict):
            uses_patterns = True
            for pattern in value:
                _at((*path, key), pattern, pattern)
        unevaluated = unevaluated or key == "unevaluatedProperties"
    if uses_patterns and unevaluated:
        raise UnusableSchema(
            (),
            "unevaluatedProperties together with patternProperties is not supported; "
            "use additionalProperties",
        )


def _at(path: tuple[str, ...], key: str, pattern: str) -> None:
    try:
        compile_pattern(pattern)
    except UnusableSchema as exc:
        raise UnusableSchema((*path, key), str(exc)) from None


@functools.lru_cache(maxsize=512)
def _check_canonical(canonical: str) -> None:
    _check(json.loads(canonical))


def check_usable(schema: dict[str, Any]) -> None:
    """``UnusableSchema`` if ``schema`` has a non-local ``$ref`` or a regex RE2 cannot run
    (remembered per schema: every submission asks again)."""
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        _check(schema)
        return
    _check_canonical(canonical)


def _pattern(validator: Any, pattern: str, instance: Any, _: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, _: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = compile_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    """Draft 2020-12's ``additionalProperties``, its ``patternProperties`` matched by RE2."""
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    regexes = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = sorted(
        key for key in instance if key not in properties and not any(r.search(key) for r in regexes)
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        verb = "was" if len(extras) == 1 else "were"
        listed = ", ".join(repr(e) for e in extras)
        yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


ParamsValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def _no_retrieval(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


_LOCAL_ONLY: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]


def params_validator(schema: dict[str, Any]) -> Validator:
    """A validator for params against ``schema`` (after ``check_usable``): RE2 regexes, no
    network. Remembered per schema (a validator keeps no state between calls): building one
    cost more than validating a sweep point with it."""
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return _build_validator(schema)
    return _validator_of(canonical)


@functools.lru_cache(maxsize=256)
def _validator_of(canonical: str) -> Validator:
    return _build_validator(json.loads(canonical))


def _build_validator(schema: dict[str, Any]) -> Validator:
    validator: Validator = ParamsValidator(schema, registry=_LOCAL_ONLY)
    return validator
