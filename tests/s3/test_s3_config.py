"""``[store] blob_url`` and the S3 keys: what is accepted, what is refused (all at once), and
the store the root builds from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.app import open_blobs
from mailserver.config import from_dict
from mailserver.errors import ConfigError
from mailserver.store.blobs import LocalBlobStore
from mailserver.store.s3blobs import S3BlobStore

BASE = {"domain": "hopital.mssante.test"}

REFUSED = [
    ({"blob_url": "s3://B/x"}, "blob_url"),
    ({"blob_url": "https://bucket/x"}, "blob_url"),
    ({"blob_url": "s3://bucket", "s3_endpoint": "127.0.0.1:8333"}, "s3_endpoint"),
    ({"blob_url": "s3://bucket", "s3_multipart_threshold": 1024}, "s3_multipart_threshold"),
    ({"blob_url": "s3://bucket", "s3_access_key_id": "k"}, "give both"),
]


@pytest.mark.parametrize(("store", "problem"), REFUSED)
def test_refused(store: dict[str, object], problem: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(tmp_path, {**BASE, "store": store})
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_location(tmp_path: Path) -> None:
    config = from_dict(tmp_path, {**BASE, "store": {
        "blob_url": "s3://mssante-blobs/prod/eu/", "s3_endpoint": "http://127.0.0.1:8333"}})
    assert config.store.s3_location == ("mssante-blobs", "prod/eu")
    assert from_dict(tmp_path, BASE).store.s3_location is None


async def test_the_root_builds_the_configured_store(tmp_path: Path) -> None:
    local = await open_blobs(from_dict(tmp_path, BASE))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "blobs"
    s3 = await open_blobs(from_dict(tmp_path, {**BASE, "store": {
        "blob_url": "s3://mssante-blobs/prod", "s3_endpoint": "http://127.0.0.1:9",
        "s3_multipart_threshold": 16 * 1024 * 1024}}))
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.part_size) == ("mssante-blobs", "prod/", 16 * 1024 * 1024)
    await s3.close()
