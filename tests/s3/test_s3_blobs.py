"""The S3 blob store against a real SeaweedFS gateway: objects as written, multipart for large
blobs (one part at a time), ranged reads, the sweep's listing, and every failure of the service
as a StoreError."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from mailserver.errors import NotFound, StoreError
from mailserver.store.blobs import new_blob_key
from mailserver.store.crypto import new_data_key
from mailserver.store.s3blobs import MIN_PART, S3BlobStore, S3Settings
from mailserver.store.sealed_stream import open_stream, seal_stream
from tests.s3.conftest import aiter_bytes
from tests.s3.weed import ACCESS_KEY, BUCKET, SECRET_KEY, Weed


@pytest.fixture
async def s3(weed: Weed, prefix: str) -> AsyncIterator[S3BlobStore]:
    store = S3BlobStore(S3Settings(bucket=BUCKET, prefix=prefix, endpoint=weed.endpoint,
                                   access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                                   multipart_threshold=MIN_PART))
    await store.start()
    try:
        yield store
    finally:
        await store.close()
        await store.close()  # idempotent


async def _etag(weed: Weed, name: str) -> str:
    async with weed.client() as c:
        return str((await c.head_object(Bucket=BUCKET, Key=name))["ETag"]).strip('"')


async def _old(store: S3BlobStore, cutoff: float) -> list[str]:
    return [key async for batch in store.old_keys(cutoff) for key in batch]


async def test_put_get_delete(s3: S3BlobStore, prefix: str) -> None:
    key = new_blob_key()
    await s3.put(key, b"sealed bytes")
    assert s3.name(key) == f"{prefix}/{key[:2]}/{key[2:4]}/{key}"
    assert await s3.get(key) == b"sealed bytes"
    await s3.check_ready()
    await s3.delete(key)
    with pytest.raises(NotFound):
        await s3.get(key)
    await s3.delete(key)  # deleting twice is harmless (a retried erasure)
    with pytest.raises(StoreError):
        await s3.put("../etc/passwd", b"x")


async def test_large_blob_goes_up_in_parts(s3: S3BlobStore, weed: Weed) -> None:
    key = new_blob_key()
    data = os.urandom(2 * MIN_PART + 12345)
    await s3.put(key, data)
    assert await s3.get(key) == data
    assert (await _etag(weed, s3.name(key))).endswith("-3")  # a multipart object, 3 parts
    pieces = [p async for p in s3.read_chunks(key, 100_000)]
    assert b"".join(pieces) == data and max(map(len, pieces)) <= 100_000


async def test_sealed_stream_written_and_read_in_pieces(s3: S3BlobStore, weed: Weed) -> None:
    """A prepared export's path: sealed records streamed up (multipart), streamed back."""
    content_key, key = new_data_key(), new_blob_key()
    plain = [os.urandom(256 * 1024) for _ in range(48)]  # 12 MiB

    async def pieces() -> AsyncIterator[bytes]:
        for p in plain:
            yield p

    size = await s3.put_chunks(key, seal_stream(content_key, b"aad", pieces()))
    assert size > 12 * 1024 * 1024
    assert (await _etag(weed, s3.name(key))).endswith("-3")
    back = [p async for p in open_stream(content_key, b"aad", s3.read_chunks(key))]
    assert back == plain
    small = new_blob_key()  # a short stream is one PUT
    assert await s3.put_chunks(small, aiter_bytes(b"ab", b"cd")) == 4
    assert await s3.get(small) == b"abcd"
    assert not (await _etag(weed, s3.name(small))).count("-")
    empty = new_blob_key()
    assert await s3.put_chunks(empty, aiter_bytes()) == 0
    assert [p async for p in s3.read_chunks(empty)] == []


async def test_failed_stream_leaves_nothing(s3: S3BlobStore) -> None:
    key = new_blob_key()

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(MIN_PART + 1)
        yield os.urandom(MIN_PART + 1)
        raise ValueError("the archive failed halfway")

    with pytest.raises(ValueError, match="halfway"):
        await s3.put_chunks(key, broken())
    with pytest.raises(NotFound):
        await s3.get(key)
    assert await s3.remove_stale_temp(time.time() + 60, dry_run=True) == 0  # aborted


async def test_sweep_listing(s3: S3BlobStore) -> None:
    old = new_blob_key()
    await s3.put(old, b"x")
    dangling = await s3.client.create_multipart_upload(Bucket=BUCKET, Key=s3.name(new_blob_key()))
    time.sleep(1.1)
    cutoff = time.time()
    time.sleep(1.1)  # LastModified is in whole seconds
    young = new_blob_key()
    await s3.put(young, b"y")
    assert await _old(s3, cutoff) == [old]
    assert set(await _old(s3, time.time() + 5)) == {old, young}
    assert await s3.remove_stale_temp(cutoff, dry_run=True) == 1
    assert await s3.remove_stale_temp(cutoff) == 1
    assert await s3.remove_stale_temp(cutoff) == 0
    assert dangling["UploadId"]


async def test_unreachable_store_is_a_store_error(prefix: str) -> None:
    closed = S3BlobStore(S3Settings(bucket=BUCKET, prefix=prefix, endpoint="http://127.0.0.1:9",
                                    access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                                    connect_timeout=1.0))
    await closed.start()
    try:
        for attempt in (closed.put(new_blob_key(), b"x"), closed.get(new_blob_key()),
                        closed.check_ready(), _old(closed, time.time())):
            with pytest.raises(StoreError) as info:
                await attempt
            assert not isinstance(info.value, NotFound)
    finally:
        await closed.close()


async def test_wrong_credentials_are_a_store_error(weed: Weed, prefix: str) -> None:
    wrong = S3BlobStore(S3Settings(bucket=BUCKET, prefix=prefix, endpoint=weed.endpoint,
                                   access_key_id=ACCESS_KEY, secret_access_key="not-it"))  # noqa: S106
    await wrong.start()
    try:
        with pytest.raises(StoreError, match="S3 error"):
            await wrong.check_ready()
        with pytest.raises(StoreError, match="S3 error"):
            await wrong.put(new_blob_key(), b"x")
    finally:
        await wrong.close()
