"""Scripts and their versions: list them, and publish one (the CI path)."""

from __future__ import annotations

from typing import Any

from hq.client._base import BaseClient
from hq.schemas.manifest import Manifest
from hq.schemas.scripts import ScriptRead, ScriptVersionPublish, ScriptVersionRead


class ScriptsClient(BaseClient):
    def list_scripts(self) -> list[ScriptRead]:
        return self._list("/api/v1/scripts", ScriptRead)

    def get_script(self, name: str) -> ScriptRead:
        return self._json("GET", f"/api/v1/scripts/{name}", ScriptRead)

    def publish_script_version(
        self, *, name: str, image: str, digest: str, manifest: Manifest | dict[str, Any]
    ) -> ScriptVersionRead:
        """A new version of script ``name``; a manifest given as a dict is judged by HQ."""
        body = ScriptVersionPublish(
            image=image,
            digest=digest,
            manifest=manifest.model_dump(mode="json")
            if isinstance(manifest, Manifest)
            else manifest,
        )
        return self._json("POST", f"/api/v1/scripts/{name}/versions", ScriptVersionRead, body=body)
