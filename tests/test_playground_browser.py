"""The playground as a person uses it: headless Chromium (Playwright) opens /graphql on a real
`training-files serve`, the Authorization header is typed into GraphiQL's headers editor, a query
runs and its result shows in the response pane, and no request leaves 127.0.0.1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Locator, Route, async_playwright

from graphql_api.auth import mint_token
from graphql_api.db.database import Database
from graphql_api.graphql.playground import find_assets_dir
from graphql_api.runtime import DatabaseUrls

from .api_server import SECRET, ApiServer, server_env
from .conftest import USER

# Playwright's default is 30 s per step; the page loads in far less even on a loaded machine.
STEP_MS = 20_000
QUERY = "{ viewer { id } serverInfo { version } }"


def _chromium() -> str | None:
    """Debian's Chromium (what `make test` installs), else `CHROMIUM` if set."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def server(database_urls: DatabaseUrls, db: Database, tmp_path: Path) -> Iterator[ApiServer]:
    if find_assets_dir() is None:
        pytest.skip("GraphiQL assets not vendored (needs npm): run `make playground-assets`")
    env = server_env(tmp_path / "data", database_urls, tmp_path / "storage")
    running = ApiServer(env, tmp_path / "server.log")
    running.start()
    try:
        yield running
    finally:
        running.terminate()


async def _type_into(editor: Locator, text: str) -> None:
    """Replace a CodeMirror editor's text as a person would: focus, select all, type. The text
    arrives as one input event, so the editor's auto-closed brackets don't double up."""
    await editor.click()
    await editor.page.keyboard.press("Control+A")
    await editor.page.keyboard.insert_text(text)


async def test_playground_runs_an_authorized_query_offline(server: ApiServer) -> None:
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "no Chromium found: install Debian's chromium (`apt-get install chromium`; "
            "`make test` does as root) or set CHROMIUM to a Chromium binary"
        )
    requested: list[str] = []

    async def only_this_server(route: Route) -> None:
        requested.append(route.request.url)
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            await route.abort()

    token = mint_token(USER, secret=SECRET)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            context = await browser.new_context()
            context.set_default_timeout(STEP_MS)
            await context.route("**/*", only_this_server)
            page = await context.new_page()
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))

            await page.goto(f"{server.url}/graphql")
            await page.get_by_role("button", name="Headers").click()
            headers = page.locator('section[aria-label="Headers"] .graphiql-editor:not(.hidden)')
            await _type_into(
                headers.locator(".CodeMirror"), f'{{"Authorization": "Bearer {token}"}}'
            )
            await _type_into(page.locator(".graphiql-query-editor .CodeMirror"), QUERY)
            await page.locator(".graphiql-execute-button").click()

            response = page.locator(".graphiql-response .CodeMirror")
            await response.get_by_text(str(USER)).wait_for()
            shown = await response.inner_text()
        finally:
            await browser.close()

    assert str(USER) in shown and '"version"' in shown, shown
    assert "UNAUTHENTICATED" not in shown, shown
    assert page_errors == []
    assert requested, "the route handler saw no request"
    assert {urlsplit(url).hostname for url in requested} == {"127.0.0.1"}, requested
    # The page, its pinned assets and the query itself all came from this server.
    assert any(urlsplit(url).path.startswith("/graphiql-assets/") for url in requested)
