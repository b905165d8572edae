"""The whole product on S3 (moto on 127.0.0.1): import, GraphQL, presigned downloads of plain
files, the app's own downloads of composites (extended files), health."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from graphql_api.app import create_app
from graphql_api.config import ConfigError, Settings
from graphql_api.conversations.importer import ConversationImporter, Outcome
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.demo import write_demo_set
from graphql_api.runtime import Pools
from graphql_api.services import Services
from graphql_api.storage.base import TRAINING_BUCKET, read_all
from graphql_api.storage.links import LinkSigner
from graphql_api.storage.s3 import S3Storage

from .conftest import USER, bearer
from .s3_servers import MotoServer

CREATE = """
mutation($ids: [ID!]!) {
  createTrainingFile(input: {name: "on s3", conversationIds: $ids}) {
    trainingFile { id jsonFileSize }
    userErrors { code message }
  }
}
"""
DOWNLOAD = """
mutation($id: ID!) {
  downloadUrl(input: {trainingFileId: $id, format: JSONL}) { url filename expiresInSeconds }
}
"""
ADD = """
mutation($id: ID!, $ids: [ID!]!) {
  addConversations(input: {trainingFileId: $id, conversationIds: $ids}) {
    trainingFile { id conversationCount }
    userErrors { code message }
  }
}
"""
DOWNLOAD_JSON = """
mutation($id: ID!) {
  downloadUrl(input: {trainingFileId: $id, format: JSON}) { url filename }
}
"""


@pytest.fixture
async def s3(moto: MotoServer) -> AsyncIterator[S3Storage]:
    backend = await S3Storage.open(moto.config())
    yield backend
    await backend.close()


async def test_import_build_and_presigned_download_on_s3(
    db: Database,
    owner_writers: WriterPool,
    pools: Pools,
    s3: S3Storage,
    settings: Settings,
    tmp_path: Path,
) -> None:
    importer = ConversationImporter(owner_writers, s3)
    results = [await importer.import_file(p) for p in write_demo_set(tmp_path, 3, seed=8)]
    assert [r.outcome for r in results] == [Outcome.IMPORTED] * 3

    app = create_app(settings, Services.of(settings, pools, s3))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        client.headers.update(bearer(settings, USER))
        ids = [str(r.conversation_id) for r in results]
        created = (
            await client.post("/graphql", json={"query": CREATE, "variables": {"ids": ids}})
        ).json()
        file_id = created["data"]["createTrainingFile"]["trainingFile"]["id"]
        link = (
            await client.post("/graphql", json={"query": DOWNLOAD, "variables": {"id": file_id}})
        ).json()["data"]["downloadUrl"]
        health = await client.get("/healthz")

    assert link["filename"] == "on s3.jsonl" and link["expiresInSeconds"] == 3600
    assert link["url"].startswith(s3.config.endpoint_url)  # the browser talks to the store
    async with httpx.AsyncClient() as browser:  # no credentials: the signature is the grant
        response = await browser.get(link["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert 'filename="on s3.jsonl"' in response.headers["content-disposition"]
    async with db.session() as conn:
        key = await conn.fetchval(
            "SELECT jsonl_file_path FROM training_files WHERE id = $1", file_id
        )
    assert response.content == await read_all(s3, TRAINING_BUCKET, key)
    lines = response.text.splitlines()
    assert len(lines) == json.loads(lines[0])["_meta"]["total_pairs"] + 1
    assert health.json() == {"status": "ok", "database": "ok", "storage": "ok"}


async def test_health_reports_missing_buckets(
    db: Database, pools: Pools, moto: MotoServer, settings: Settings
) -> None:
    s3 = await S3Storage.open(
        moto.config(
            create_buckets=False,
            buckets={"conversation-files": "not-created-a", "training-files": "not-created-b"},
        )
    )
    try:
        app = create_app(settings, Services.of(settings, pools, s3))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/healthz")
    finally:
        await s3.close()
    assert response.status_code == 503
    assert response.json()["storage"] == "unreachable"


async def test_an_extended_file_is_a_composite_the_app_serves_itself(
    db: Database,
    owner_writers: WriterPool,
    pools: Pools,
    moto: MotoServer,
    settings: Settings,
    tmp_path: Path,
) -> None:
    # As `make serve` opens it: composite links signed with the key the download route checks.
    s3 = await S3Storage.open(moto.config(), link_signer=LinkSigner(settings.jwt_secret))
    try:
        importer = ConversationImporter(owner_writers, s3)
        results = [await importer.import_file(p) for p in write_demo_set(tmp_path, 45, seed=81)]
        ids = [str(r.conversation_id) for r in results]
        app = create_app(settings, Services.of(settings, pools, s3))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.headers.update(bearer(settings, USER))

            async def graphql(query: str, **variables: object) -> dict[str, object]:
                answer = await client.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                return answer.json()["data"]  # type: ignore[no-any-return]

            created = await graphql(CREATE, ids=ids[:40])
            file_id = created["createTrainingFile"]["trainingFile"]["id"]  # type: ignore[index]
            added = await graphql(ADD, id=file_id, ids=ids[40:])
            assert added["addConversations"]["trainingFile"]["conversationCount"] == 45  # type: ignore[index]
            link = (await graphql(DOWNLOAD_JSON, id=file_id))["downloadUrl"]
            url = link["url"]  # type: ignore[index]
            client.headers.pop("authorization")  # the signature is the grant
            whole = await client.get(url)
            part = await client.get(url, headers={"Range": "bytes=1000-2999999"})
    finally:
        await s3.close()

    assert url.startswith(f"http://testserver/downloads/{TRAINING_BUCKET}/{file_id}/v2/")
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    document = json.loads(whole.content)
    assert sorted(
        c["conversation_metadata"]["conversation_id"] for c in document["conversations"]
    ) == sorted(ids)
    assert part.status_code == 206 and part.content == whole.content[1000:3_000_000]
    async with db.session() as conn:
        key = await conn.fetchval(
            "SELECT json_file_path FROM training_files WHERE id = $1", file_id
        )
    raw = moto.raw_client()
    stored = raw.head_object(Bucket=TRAINING_BUCKET, Key=key)
    raw.close()
    assert stored["Metadata"] == {"tf-composite": "v1", "tf-size": str(len(whole.content))}
    assert stored["ContentLength"] < 10_000  # only the manifest is at the key


def test_s3_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "DATA_DIR": str(tmp_path),
        "STORAGE_URL": "s3://",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "minioadmin",
        "AWS_SECRET_ACCESS_KEY": "minioadmin",
        "S3_TRAINING_BUCKET": "lora-files",
        "S3_KEY_PREFIX": "prod",
    }
    s3 = Settings.from_env(env).s3
    assert s3 is not None
    assert (s3.endpoint_url, s3.region, s3.key_prefix) == (
        "http://127.0.0.1:9000",
        "eu-west-1",
        "prod/",
    )
    assert s3.buckets["training-files"] == "lora-files"
    assert s3.composite_objects is True
    no_composites = Settings.from_env({**env, "S3_COMPOSITE_OBJECTS": "false"}).s3
    assert no_composites is not None and no_composites.composite_objects is False
    assert Settings.from_env({"DATA_DIR": str(tmp_path)}).s3 is None

    for name, value in [
        ("S3_ENDPOINT_URL", "ftp://x"),
        ("S3_TRAINING_BUCKET", "Bad_Name"),
        ("S3_KEY_PREFIX", "../x"),
        ("AWS_REGION", "a b"),
        ("S3_CREATE_BUCKETS", "maybe"),
        ("S3_COMPOSITE_OBJECTS", "sometimes"),
    ]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({**env, name: value})
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY"):
        Settings.from_env({k: v for k, v in env.items() if k != "AWS_SECRET_ACCESS_KEY"})
    with pytest.raises(ConfigError, match="STORAGE_URL"):
        Settings.from_env({**env, "STORAGE_URL": "s3://some-bucket"})
