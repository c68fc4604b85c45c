"""Blobs in an S3 bucket (``[store] blob_url = "s3://bucket/prefix"``), through aiobotocore.

The same contract as :class:`~mailserver.store.blobs.LocalBlobStore`: callers seal before
``put`` (only ciphertext leaves the process, so nothing in the bucket is readable without the
data keys, and shredding a key still cuts a blob off), a ``put`` returns once the service has
stored the object (before the row naming it commits), keys are random and never rewritten, a
blob is deleted after the row that named it is gone. Blobs over ``multipart_threshold`` go up
in parts of that size (one part in memory at a time); reads of a long blob are ranged GETs of
one part each, handed on in slices. Objects are named ``<prefix>/ab/cd/<key>``.

Any failure of the service or of the way to it (refused connection, timeout, 5xx, access
denied) is a :class:`StoreError`: the SMTP client gets a 4xx and no row names a blob that was
not stored. One client per process: :meth:`start` at start-up, :meth:`close` at stop.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from mailserver.errors import MssanteError, NotFound, StoreError
from mailserver.store.blobs import READ_SLICE, check_key, is_blob_name
from mailserver.store.s3parts import chain, rechunk, rechunk_bytes

__all__ = ["S3Settings", "S3BlobStore", "MIN_PART"]

log = logging.getLogger(__name__)

MIN_PART = 5 * 1024 * 1024
"""S3's smallest part (all but the last) of a multipart upload."""

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    """``http://host:port`` of the gateway; None: AWS's own endpoints."""
    region: str = "us-east-1"
    access_key_id: str | None = None
    """None: the usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, profiles...)."""
    secret_access_key: str | None = None
    multipart_threshold: int = 8 * 1024 * 1024
    """Blobs over this size are uploaded in parts of this size (at least 5 MiB)."""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Every failure of the client becomes a StoreError (NotFound for a missing object)."""
    try:
        yield
    except MssanteError:
        raise
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise NotFound("blob not found") from None
        raise StoreError(f"blob {what} failed: S3 error {code}") from exc
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, payload errors...
        raise StoreError(f"blob {what} failed: {type(exc).__name__}") from exc


class S3BlobStore:
    """A :class:`~mailserver.store.blobs.BlobBackend` on the S3 API."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix.strip("/") + "/" if settings.prefix.strip("/") else ""
        self.part_size = max(MIN_PART, settings.multipart_threshold)
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    async def start(self) -> None:
        """Create the process's one client (no request is made: a bucket that is down now
        fails the first write with a 4xx, and ``/readyz`` says so)."""
        if self._client is not None:
            return
        s = self.settings
        config = AioConfig(connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
                           retries={"max_attempts": 2, "mode": "standard"},
                           s3={"addressing_style": "path"})
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=s.endpoint, region_name=s.region, config=config,
            aws_access_key_id=s.access_key_id, aws_secret_access_key=s.secret_access_key))
        self._stack = stack
        log.info("blobs: S3 bucket %s, prefix %r, endpoint %s", self.bucket, self.prefix,
                 s.endpoint or "AWS")

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise StoreError("blob store not started")
        return self._client

    def name(self, key: str) -> str:
        """The object name of blob ``key``."""
        check_key(key)
        return f"{self.prefix}{key[:2]}/{key[2:4]}/{key}"

    # -- the data path ---------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        if len(data) > self.part_size:
            await self._multipart(key, rechunk_bytes(data, self.part_size))
            return
        with _errors("write"):
            await self.client.put_object(Bucket=self.bucket, Key=self.name(key), Body=data)

    async def get(self, key: str) -> bytes:
        with _errors("read"):
            response = await self.client.get_object(Bucket=self.bucket, Key=self.name(key))
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data

    async def delete(self, key: str) -> None:
        with _errors("delete"):
            await self.client.delete_object(Bucket=self.bucket, Key=self.name(key))

    async def put_chunks(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """A blob from pieces: one PUT when it stays within a part, else a multipart upload
        (aborted if the pieces fail: nothing is left under ``key``)."""
        parts = rechunk(chunks, self.part_size)
        first = await anext(parts, b"")
        second = await anext(parts, None)
        if second is None:
            await self.put(key, first)
            return len(first)
        return await self._multipart(key, chain((first, second), parts))

    async def read_chunks(self, key: str, size: int = READ_SLICE) -> AsyncIterator[bytes]:
        """A blob in slices of at most ``size`` bytes: one ranged GET per part, so a slow
        reader never holds one request open for a whole archive."""
        name = self.name(key)
        with _errors("read"):
            head = await self.client.head_object(Bucket=self.bucket, Key=name)
        total = int(head["ContentLength"])
        offset = 0
        while offset < total:
            end = min(offset + self.part_size, total) - 1
            with _errors("read"):
                response = await self.client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={offset}-{end}")
            async with response["Body"] as body:
                while True:
                    with _errors("read"):
                        piece: bytes = await body.read(size)
                    if not piece:
                        break
                    offset += len(piece)
                    yield piece
            if offset <= end:
                raise StoreError("blob read failed: object cut short")

    async def _multipart(self, key: str, parts: AsyncIterator[bytes]) -> int:
        name = self.name(key)
        with _errors("write"):
            upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=name)
        upload_id = upload["UploadId"]
        done: list[dict[str, Any]] = []
        total = 0
        try:
            async for part in parts:
                with _errors("write"):
                    answer = await self.client.upload_part(
                        Bucket=self.bucket, Key=name, UploadId=upload_id,
                        PartNumber=len(done) + 1, Body=part)
                done.append({"ETag": answer["ETag"], "PartNumber": len(done) + 1})
                total += len(part)
            with _errors("write"):
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id,
                    MultipartUpload={"Parts": done})
        except BaseException:
            await self._abort(name, upload_id)
            raise
        return total

    async def _abort(self, name: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                     UploadId=upload_id)
        except Exception:  # noqa: BLE001 - the sweep aborts it later
            log.warning("blobs: a multipart upload could not be aborted (the sweep will)")

    # -- the operator's side ---------------------------------------------------------------

    async def check_ready(self) -> None:
        """HeadBucket: the gateway answers and the bucket exists with our credentials."""
        with _errors("probe"):
            await self.client.head_bucket(Bucket=self.bucket)

    async def old_keys(self, cutoff: float) -> AsyncIterator[list[str]]:
        """ListObjectsV2 under the prefix: the blobs last written before ``cutoff``, a page
        (up to 1000) at a time."""
        pages = aiter(self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix))
        while True:
            with _errors("listing"):
                page = await anext(pages, None)
            if page is None:
                return
            yield [name for obj in page.get("Contents", ())
                   if is_blob_name(name := str(obj["Key"]).rpartition("/")[2])
                   and obj["LastModified"].timestamp() < cutoff]

    async def remove_stale_temp(self, cutoff: float, *, dry_run: bool = False) -> int:
        """Abort the multipart uploads begun before ``cutoff`` (a crash during a write)."""
        stale = []
        with _errors("listing"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix)
            async for page in pages:
                stale += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", ())
                          if u["Initiated"].timestamp() < cutoff]
        if not dry_run:
            for name, upload_id in stale:
                with _errors("abort"):
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload_id)
        return len(stale)

