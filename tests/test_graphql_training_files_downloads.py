"""downloadUrl end to end: the links it hands out, what they serve, and links that were
tampered with or have expired."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jsonschema
import pytest

from graphql_api.config import Settings
from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.links import LinkSigner
from graphql_api.storage.local import LocalStorage

from .conftest import TRAINING_FILE_SCHEMA
from .sources import Source, ids_of
from .training_file_graphql import create, download, import_thirty

SCHEMA = TRAINING_FILE_SCHEMA


@pytest.fixture
async def imported(
    db: Database, owner_writers: WriterPool, storage: LocalStorage, tmp_path: Path
) -> list[Source]:
    return await import_thirty(owner_writers, storage, tmp_path)


async def test_download_json(client: httpx.AsyncClient, imported: list[Source]) -> None:
    created = await create(client, "lora_json_check", ids_of(imported[6:10]))
    before = datetime.now(UTC)
    payload, response = await download(client, created["id"], "JSON")
    after = datetime.now(UTC)

    assert payload["filename"] == "lora_json_check.json"
    assert payload["expiresInSeconds"] == 3600
    # An hour from when the link was made (whole seconds: the link carries a unix time).
    expires_at = datetime.fromisoformat(payload["expiresAt"])
    assert before.replace(microsecond=0) + timedelta(hours=1) <= expires_at
    assert expires_at <= after + timedelta(hours=1)
    assert urlsplit(payload["url"]).path.startswith("/downloads/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="lora_json_check.json"'
    assert int(response.headers["content-length"]) == created["jsonFileSize"]
    full = response.json()
    jsonschema.Draft202012Validator(SCHEMA).validate(full)
    assert full["training_file_metadata"]["file_name"] == "lora_json_check"
    assert full["training_file_metadata"]["total_conversations"] == 4


async def test_download_jsonl(client: httpx.AsyncClient, imported: list[Source]) -> None:
    chosen = imported[10:14]
    created = await create(client, "lora_jsonl_check", ids_of(chosen))
    payload, response = await download(client, created["id"], "JSONL")

    assert payload["filename"] == "lora_jsonl_check.jsonl"
    assert payload["expiresInSeconds"] == 3600
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert (
        response.headers["content-disposition"] == 'attachment; filename="lora_jsonl_check.jsonl"'
    )
    assert response.text.endswith("\n")
    lines = [json.loads(line) for line in response.text.splitlines()]
    meta = lines[0]["_meta"]
    assert len(lines) == meta["total_pairs"] + 1 == created["trainablePairCount"] + 1
    meta_schema = {"$ref": "#/$defs/jsonl_meta_line", "$defs": SCHEMA["$defs"]}
    line_schema = {"$ref": "#/$defs/jsonl_pair_line", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(meta_schema).validate(lines[0])
    for line in lines[1:]:
        jsonschema.Draft202012Validator(line_schema).validate(line)
    # One line per trainable pair of the source files, in file order.
    assert [(line["conversation_id"], line["turn_number"]) for line in lines[1:]] == [
        (str(s.id), pair["turn_number"])
        for s in chosen
        for pair in s.document["training_pairs"]
        if pair.get("target_response") is not None
    ]


async def test_tampered_or_expired_download_links_are_refused(
    client: httpx.AsyncClient, settings: Settings, imported: list[Source]
) -> None:
    created = await create(client, "guarded", ids_of(imported[:2]))
    payload, response = await download(client, created["id"], "JSON")
    assert response.status_code == 200
    url = urlsplit(payload["url"])
    params = dict(parse_qsl(url.query))

    def with_params(**changes: str) -> str:
        return f"{url.path}?{urlencode({**params, **changes})}"

    signature = params["signature"]
    forged = "0" if signature[-1] != "0" else "1"
    tampered = [
        with_params(signature=signature[:-1] + forged),
        with_params(filename="other.json"),
        with_params(type="application/x-ndjson"),
        with_params(expires=str(int(params["expires"]) + 3600)),
        url.path.replace("training.json", "training.jsonl") + "?" + url.query,
        url.path,
    ]
    for link in tampered:
        refused = await client.get(link)
        assert refused.status_code == 403, link
        assert "content-disposition" not in refused.headers

    bucket, key = url.path.removeprefix("/downloads/").split("/", 1)
    expired = LinkSigner(settings.jwt_secret).sign(
        bucket,
        key,
        filename="guarded.json",
        content_type="application/json",
        ttl_seconds=3600,
        base_url="http://testserver",
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    refused = await client.get(expired.url)
    assert refused.status_code == 403
    assert "expired" in refused.json()["error"]
