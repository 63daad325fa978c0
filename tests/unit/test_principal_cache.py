"""The in-process token cache: a lookup that raced a revoke is not stored; entries expire."""

from __future__ import annotations

import time

from hq.schemas.common import Role
from hq.server.auth import Principal, PrincipalCache

CI = Principal(token_id="t1", name="ci", role=Role.viewer)


def test_a_lookup_that_raced_a_clear_is_not_remembered() -> None:
    cache = PrincipalCache()
    generation = cache.generation  # read before the database lookup
    cache.clear()  # a revoke committed while the lookup ran
    cache.put("hash", CI, generation=generation)
    assert cache.get("hash") is None
    cache.put("hash", CI, generation=cache.generation)
    assert cache.get("hash") == CI
    cache.clear()
    assert cache.get("hash") is None


def test_entries_expire_and_the_cache_stays_bounded() -> None:
    cache = PrincipalCache(ttl_seconds=0.05, max_entries=2)
    cache.put("a", CI, generation=0)
    time.sleep(0.06)
    assert cache.get("a") is None
    for key in ("a", "b", "c"):
        cache.put(key, CI, generation=0)
    assert cache.get("c") == CI and cache.get("a") is None
