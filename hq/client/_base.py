"""The client's transport: one httpx connection pool to HQ (bearer token), one without a token
for presigned URLs, errors mapped back to ``hq.errors``, query parameters and request bodies
each made one way. Every resource's calls (``hq.client.jobs`` and siblings) build on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from hq import errors

M = TypeVar("M", bound=BaseModel)
CHUNK_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0

QueryValue = str | int | float | bool | datetime | Enum | Sequence[str] | None
Params = dict[str, str | int | float | bool]


def raise_for_response(response: httpx.Response) -> None:
    """Turn an error response into the matching ``HQError`` subclass."""
    if response.is_success or response.is_redirect:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code", ""))
    message = str(body.get("message") or response.text or response.reason_phrase)
    cls = errors.error_for(code=code, status_code=response.status_code)
    raise cls(message, field=body.get("field"), details=body.get("details"))


def build(model: type[M], fields: dict[str, Any]) -> M:
    """A request model built here fails as the server would: ValidationFailed naming the field
    (a bare pydantic error would reach the CLI as a traceback)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        raise errors.ValidationFailed(message, field=field) from exc


def query(**values: QueryValue) -> Params:
    """Query parameters, in the order given: None is left out, a datetime is ISO 8601, an enum
    its value and a list comma-separated (as every HQ listing takes several values)."""
    params: Params = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            params[key] = value.isoformat()
        elif isinstance(value, Enum):
            params[key] = str(value.value)
        elif isinstance(value, str | int | float | bool):
            params[key] = value
        else:
            params[key] = ",".join(value)
    return params


def sha256_stream(fh: BinaryIO) -> str:
    """The sha256 hex digest of what is left in ``fh``, read in chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_stream(fh)


class BaseClient:
    """One HQ server, one bearer token: the plumbing every resource's calls share."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        # Presigned URLs carry their own authority: never send the bearer token with them.
        self._raw = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self._http.close()
        self._raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests to HQ ----------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: Params | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call to HQ; ``body`` is sent as its JSON (every field, set or not)."""
        if body is not None:
            kwargs["json"] = body.model_dump(mode="json", exclude_unset=False)
        if params is not None:
            kwargs["params"] = params
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.TransportError(f"cannot reach HQ at {self.url}: {exc}") from exc
        raise_for_response(response)
        return response

    def _json(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._decode(self._request(method, path, **kwargs)))

    def _list(self, path: str, model: type[M], **kwargs: Any) -> list[M]:
        return [model.model_validate(x) for x in self._decode(self._request("GET", path, **kwargs))]

    def _location(self, path: str) -> str:
        """Where a redirecting route (a download) points: a presigned URL."""
        return str(self._request("GET", path).headers["location"])

    def _decode(self, response: httpx.Response) -> Any:
        """The JSON of an HQ answer; anything else means ``url`` is not the HQ API."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise errors.TransportError(
                f"{self.url} answered {response.status_code} with {kind}, not the HQ API: "
                "set HQ_URL to the API's address (make run prints it as 'HQ API'), "
                "not the Dash app's"
            ) from None

    def _stream_text(self, path: str, *, params: Params) -> Iterator[str]:
        """A streamed answer's text as it arrives (no read timeout: it may idle for long)."""
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(10.0, read=None)
            ) as response:
                if not response.is_success:
                    response.read()
                    raise_for_response(response)
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise errors.TransportError(f"cannot reach HQ at {self.url}: {exc}") from exc

    # -- presigned URLs (no bearer token) ----------------------------------------------------
    def download_url(self, url: str, dest: Path, *, sha256: str | None = None) -> None:
        """Stream a presigned GET to ``dest`` (written to a temp name, then renamed). With
        ``sha256``, bytes that hash otherwise raise IntegrityError and leave no file behind."""
        tmp = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        try:
            with self._raw.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise_for_response(response)
                with tmp.open("wb") as fh:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        digest.update(chunk)
                        fh.write(chunk)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise errors.IntegrityError(
                    f"the download of {dest.name} has sha256 {digest.hexdigest()} but HQ "
                    f"recorded {sha256}; nothing was kept"
                )
            tmp.replace(dest)
        except httpx.TransportError as exc:
            raise errors.TransportError(f"download failed: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def upload_url(self, url: str, path: Path) -> None:
        """PUT a file to a presigned URL, streaming it."""
        size = path.stat().st_size
        try:
            with path.open("rb") as fh:
                response = self._raw.put(
                    url, content=_iter_file(fh), headers={"Content-Length": str(size)}
                )
        except httpx.TransportError as exc:
            raise errors.TransportError(f"upload failed: {exc}") from exc
        raise_for_response(response)


def _iter_file(fh: BinaryIO) -> Iterator[bytes]:
    yield from iter(lambda: fh.read(CHUNK_BYTES), b"")
