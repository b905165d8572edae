"""Offline GraphiQL playground: page rewriting, asset serving, SRI hashes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from strawberry.http.ides import get_graphql_ide_html

from graphql_api.graphql import playground
from graphql_api.graphql.playground import (
    ASSETS_URL_PATH,
    OfflineGraphQL,
    PlaygroundAssetsError,
    find_assets_dir,
    offline_graphiql_html,
    playground_routes,
    referenced_assets,
    vendor_assets,
)

ASSETS_DIR = find_assets_dir()
needs_assets = pytest.mark.skipif(
    ASSETS_DIR is None,
    reason=(
        "GraphiQL assets not installed (node_modules missing or incomplete): "
        "run `npm ci --ignore-scripts` in the project root (needs npm), "
        "or set PLAYGROUND_ASSETS_DIR to a node_modules directory holding them"
    ),
)


@strawberry.type
class Query:
    # A resolver, not `hello: str = "hi"`: without a root value the default resolver
    # would read `None.hello`.
    @strawberry.field
    def hello(self) -> str:
        return "hi"


SCHEMA = strawberry.Schema(query=Query)


class _Tag:
    def __init__(self, name: str, attrs: dict[str, str | None]) -> None:
        self.name = name
        self.url = attrs.get("src") if name == "script" else attrs.get("href")
        self.integrity = attrs.get("integrity")
        self.rel = attrs.get("rel")


class _ResourceParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[_Tag] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "link"):
            t = _Tag(tag, dict(attrs))
            if t.url is not None and not t.url.startswith("data:"):
                self.tags.append(t)


def external_resources(html: str) -> list[_Tag]:
    """<script src> and <link href> tags of the page (data: URLs excluded)."""
    parser = _ResourceParser()
    parser.feed(html)
    return parser.tags


def sri_sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def build_app(assets_dir: Path | None) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/graphql", OfflineGraphQL(SCHEMA, assets_url=ASSETS_URL_PATH)),
    ]
    if assets_dir is not None:
        routes += playground_routes(assets_dir)
    return Starlette(routes=routes)


async def _client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(build_app(ASSETS_DIR)):
        yield c


def write_fake_node_modules(root: Path, *, version_override: str | None = None) -> Path:
    """A node_modules layout holding every referenced file (with dummy content)."""
    node_modules = root / "node_modules"
    for asset in referenced_assets():
        file = node_modules / asset.node_modules_path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"/* {asset.package} {asset.path} */\n")
        manifest = {"name": asset.package, "version": version_override or asset.version}
        (node_modules / asset.package / "package.json").write_text(json.dumps(manifest))
    return node_modules


# --- rewriting (always runs, no npm needed) -------------------------------------------


def test_strawberry_page_uses_unpkg_with_integrity() -> None:
    # Guards the premise: if strawberry stops pinning unpkg files with SRI, revisit this.
    tags = external_resources(get_graphql_ide_html("graphiql"))
    assert tags
    assert all(t.url and t.url.startswith("https://unpkg.com/") for t in tags)
    assert all(t.integrity and t.integrity.startswith("sha384-") for t in tags)
    packages = {a.package: a.version for a in referenced_assets()}
    assert packages == {
        "react": "18.2.0",
        "react-dom": "18.2.0",
        "js-cookie": "3.0.5",
        "graphiql": "3.8.3",
        "@graphiql/plugin-explorer": "1.0.2",
    }


def test_package_json_pins_the_page_versions() -> None:
    root = Path(playground.__file__).resolve().parents[2]
    deps = json.loads((root / "package.json").read_text())["dependencies"]
    assert deps == {a.package: a.version for a in referenced_assets()}


@pytest.mark.parametrize("assets_url", [ASSETS_URL_PATH, ASSETS_URL_PATH + "/", "/x/assets"])
def test_rewrite_removes_unpkg_and_keeps_integrity(assets_url: str) -> None:
    original = external_resources(get_graphql_ide_html("graphiql"))
    html = offline_graphiql_html(assets_url)
    rewritten = external_resources(html)

    assert "unpkg.com" not in html
    assert len(rewritten) == len(original)
    base = assets_url.rstrip("/")
    for before, after in zip(original, rewritten, strict=True):
        assert after.name == before.name
        assert after.integrity == before.integrity
        # https://unpkg.com/<pkg>@<version>/<path> -> <assets_url>/<pkg>/<path>
        assert before.url is not None
        spec, _, path = before.url.removeprefix("https://unpkg.com/").partition("/")
        if spec.startswith("@"):  # scoped: @scope/name@version/path
            name, _, path = path.partition("/")
            spec = f"{spec}/{name}"
        package = spec.rpartition("@")[0]
        assert after.url == f"{base}/{package}/{path}"


def test_rewrite_only_touches_urls() -> None:
    original = get_graphql_ide_html("graphiql")
    html = offline_graphiql_html(ASSETS_URL_PATH)
    for asset in referenced_assets():
        original = original.replace(
            f"https://unpkg.com/{asset.package}@{asset.version}/{asset.path}",
            f"{ASSETS_URL_PATH}/{asset.node_modules_path}",
        )
    assert html == original


@pytest.mark.parametrize(
    "page",
    [
        '<script src="https://unpkg.com/graphiql/graphiql.min.js"></script>',  # no version
        '<script src="https://cdn.jsdelivr.net/npm/graphiql@3/graphiql.min.js"></script>',
        '<link rel="stylesheet" href="//fonts.example.com/x.css" />',
    ],
)
def test_rewrite_rejects_remaining_remote_references(
    monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    monkeypatch.setattr(playground, "_strawberry_graphiql_html", lambda: page)
    with pytest.raises(PlaygroundAssetsError):
        offline_graphiql_html(ASSETS_URL_PATH)


def test_offline_graphql_rejects_other_ides() -> None:
    with pytest.raises(ValueError, match="GraphiQL"):
        OfflineGraphQL(SCHEMA, graphql_ide="apollo-sandbox", assets_url=ASSETS_URL_PATH)


async def test_graphql_get_html_serves_offline_page() -> None:
    async for client in _client(build_app(None)):
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "unpkg.com" not in response.text
    assert response.text == offline_graphiql_html(ASSETS_URL_PATH)
    assert all(
        t.url and t.url.startswith(ASSETS_URL_PATH + "/") for t in external_resources(response.text)
    )


async def test_post_query_still_works() -> None:
    async for client in _client(build_app(None)):
        response = await client.post("/graphql", json={"query": "{ hello }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "hi"}}


async def test_get_query_still_works() -> None:
    async for client in _client(build_app(None)):
        response = await client.get("/graphql", params={"query": "{ hello }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"hello": "hi"}}


# --- find_assets_dir / routes with a fake node_modules (no npm needed) ----------------


def test_find_assets_dir_override(tmp_path: Path) -> None:
    assert find_assets_dir(tmp_path / "missing") is None

    node_modules = write_fake_node_modules(tmp_path)
    assert find_assets_dir(node_modules) == node_modules.resolve()

    (node_modules / referenced_assets()[0].node_modules_path).unlink()
    assert find_assets_dir(node_modules) is None


def test_find_assets_dir_rejects_other_versions(tmp_path: Path) -> None:
    node_modules = write_fake_node_modules(tmp_path, version_override="0.0.1")
    assert find_assets_dir(node_modules) is None


def test_vendoring_copies_exactly_the_page_files_and_their_manifests(tmp_path: Path) -> None:
    node_modules = write_fake_node_modules(tmp_path)
    (node_modules / "react" / "index.js").write_text("not loaded by the page")
    vendored = tmp_path / "vendored"
    copied = vendor_assets(node_modules, vendored)
    files = sorted(str(p.relative_to(vendored)) for p in vendored.rglob("*") if p.is_file())
    expected = sorted(
        {a.node_modules_path for a in referenced_assets()}
        | {f"{a.package}/package.json" for a in referenced_assets()}
    )
    assert files == expected and copied == len(expected)
    assert find_assets_dir(vendored) == vendored.resolve()


def test_vendoring_refuses_other_versions(tmp_path: Path) -> None:
    node_modules = write_fake_node_modules(tmp_path, version_override="0.0.1")
    with pytest.raises(PlaygroundAssetsError, match="npm ci"):
        vendor_assets(node_modules, tmp_path / "vendored")


async def test_routes_expose_only_the_page_packages(tmp_path: Path) -> None:
    node_modules = write_fake_node_modules(tmp_path)
    (node_modules / "secret").mkdir()
    (node_modules / "secret" / "index.js").write_text("nope")
    async for client in _client(build_app(node_modules)):
        for asset in referenced_assets():
            response = await client.get(f"{ASSETS_URL_PATH}/{asset.node_modules_path}")
            assert response.status_code == 200, asset
        assert (await client.get(f"{ASSETS_URL_PATH}/secret/index.js")).status_code == 404
        assert (await client.get(f"{ASSETS_URL_PATH}/react/../secret/index.js")).status_code == 404
        assert (
            await client.get(f"{ASSETS_URL_PATH}/react/%2e%2e/secret/index.js")
        ).status_code == 404


# --- real assets from node_modules (skipped without `npm ci`) -------------------------


@needs_assets
async def test_page_assets_are_served_with_matching_integrity(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "unpkg.com" not in page.text
    tags = external_resources(page.text)
    assert len(tags) == len(referenced_assets())
    for tag in tags:
        assert tag.url is not None
        assert tag.url.startswith(ASSETS_URL_PATH + "/"), tag.url
        response = await client.get(tag.url)
        assert response.status_code == 200, tag.url
        content_type = response.headers["content-type"]
        if tag.name == "script":
            assert "javascript" in content_type, (tag.url, content_type)
        else:
            assert tag.rel == "stylesheet"
            assert content_type.startswith("text/css"), (tag.url, content_type)
        assert sri_sha384(response.content) == tag.integrity, tag.url


@needs_assets
async def test_unrelated_node_modules_are_not_served(client: httpx.AsyncClient) -> None:
    # graphql is installed by npm as a peer dependency but is not part of the page.
    root = Path(playground.__file__).resolve().parents[2]
    assert (root / "node_modules" / "graphql" / "package.json").is_file()
    response = await client.get(f"{ASSETS_URL_PATH}/graphql/package.json")
    assert response.status_code == 404
