"""Offline GraphiQL playground.

Strawberry's GraphiQL page loads React, GraphiQL, js-cookie and the explorer plugin
from unpkg.com, so it shows nothing on a machine without internet.  The exact same
npm packages are pinned in the project's ``package.json`` / ``package-lock.json``
and installed into ``node_modules`` at set-up time (``npm ci``).  This module

* rewrites strawberry's page so that every ``https://unpkg.com/<pkg>@<version>/<path>``
  becomes ``<assets_url>/<pkg>/<path>`` (the integrity attributes are kept: the files
  are byte-identical, so the SRI hashes still match),
* provides :class:`OfflineGraphQL`, a ``strawberry.asgi.GraphQL`` serving that page,
* provides :func:`playground_routes`, the Starlette routes serving the package files.

Wiring (sketch)::

    assets_dir = find_assets_dir()
    if assets_dir is not None:
        graphql_app = OfflineGraphQL(schema, assets_url=ASSETS_URL_PATH)
        routes += playground_routes(assets_dir)
    else:
        graphql_app = GraphQL(schema)  # falls back to the online (unpkg) page
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from strawberry.asgi import GraphQL
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema import BaseSchema

__all__ = [
    "ASSETS_URL_PATH",
    "VENDORED_DIR",
    "AssetRef",
    "OfflineGraphQL",
    "PlaygroundAssetsError",
    "find_assets_dir",
    "offline_graphiql_html",
    "playground_routes",
    "referenced_assets",
    "vendor_assets",
]

ASSETS_URL_PATH = "/graphiql-assets"
"""Where the application mounts the playground's static files."""

VENDORED_DIR = Path(__file__).resolve().with_name("playground_assets")
"""The assets inside the package: copied there from ``node_modules`` by ``make``."""

# https://unpkg.com/<pkg>@<version>/<path>, <pkg> possibly scoped (@scope/name).
_UNPKG_URL = re.compile(
    r"https://unpkg\.com/"
    r"(?P<package>(?:@[^/@\s\"'<>]+/)?[^/@\s\"'<>]+)"
    r"@(?P<version>[^/\s\"'<>]+)"
    r"/(?P<path>[^\s\"'<>?#]+)"
)

# Any script/stylesheet still pointing at an absolute (or protocol-relative) URL.
_REMOTE_RESOURCE = re.compile(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


class PlaygroundAssetsError(RuntimeError):
    """Strawberry's GraphiQL page cannot be made to work offline as expected."""


@dataclass(frozen=True, slots=True)
class AssetRef:
    """One file the GraphiQL page loads from unpkg."""

    package: str  # npm package name, e.g. "react" or "@graphiql/plugin-explorer"
    version: str  # pinned version in the page, e.g. "18.2.0"
    path: str  # path inside the package, e.g. "umd/react.production.min.js"

    @property
    def node_modules_path(self) -> str:
        """Path relative to a ``node_modules`` directory."""
        return f"{self.package}/{self.path}"


def _strawberry_graphiql_html() -> str:
    return get_graphql_ide_html(graphql_ide="graphiql")


@cache
def referenced_assets() -> tuple[AssetRef, ...]:
    """The unpkg files referenced by strawberry's GraphiQL page, in page order, deduplicated."""
    seen: dict[AssetRef, None] = {}
    for match in _UNPKG_URL.finditer(_strawberry_graphiql_html()):
        seen.setdefault(AssetRef(match["package"], match["version"], match["path"]), None)
    if not seen:
        raise PlaygroundAssetsError(
            "strawberry's GraphiQL page references no https://unpkg.com/<pkg>@<version>/ files; "
            "its layout changed, update graphql_api/graphql/playground.py"
        )
    return tuple(seen)


def _installed_version(node_modules: Path, package: str) -> str | None:
    try:
        manifest = json.loads((node_modules / package / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version if isinstance(version, str) else None


def _assets_complete(node_modules: Path) -> bool:
    assets = referenced_assets()
    if not all((node_modules / a.node_modules_path).is_file() for a in assets):
        return False
    # A different installed version would be rejected by the browser (SRI mismatch).
    return all(_installed_version(node_modules, a.package) == a.version for a in assets)


def find_assets_dir(override: Path | None = None) -> Path | None:
    """The directory (``node_modules`` layout) holding every file the GraphiQL page needs.

    ``override`` (``PLAYGROUND_ASSETS_DIR``) else the copy inside the package that
    ``vendor_assets`` made at set-up (so an installed wheel carries it). None unless every
    referenced file exists and each package's version is the one pinned in the page.
    """
    candidate = override.expanduser().resolve() if override else VENDORED_DIR
    if candidate.is_dir() and _assets_complete(candidate):
        return candidate
    return None


def vendor_assets(node_modules: Path, destination: Path = VENDORED_DIR) -> int:
    """Copy exactly the files the page loads (and each package's manifest, for its version)
    from an ``npm ci`` tree into ``destination``; return how many files were copied."""
    files = {a.node_modules_path for a in referenced_assets()}
    files |= {f"{a.package}/package.json" for a in referenced_assets()}
    for relative in sorted(files):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / relative, target)
    if not _assets_complete(destination):
        raise PlaygroundAssetsError(
            f"{node_modules} does not hold the versions strawberry's GraphiQL page pins: run npm ci"
        )
    return len(files)


def offline_graphiql_html(assets_url: str) -> str:
    """Strawberry's GraphiQL page with every unpkg URL pointing at ``assets_url`` instead.

    ``https://unpkg.com/<pkg>@<version>/<path>`` becomes ``<assets_url>/<pkg>/<path>``
    (the ``node_modules`` layout); integrity attributes are left untouched.  Raises
    :class:`PlaygroundAssetsError` if a remote reference is left after rewriting.
    """
    base = assets_url.rstrip("/")
    html = _UNPKG_URL.sub(
        lambda m: f"{base}/{m['package']}/{m['path']}", _strawberry_graphiql_html()
    )
    if "unpkg.com" in html:
        raise PlaygroundAssetsError(
            "strawberry's GraphiQL page still references unpkg.com after rewriting; "
            "its layout changed, update graphql_api/graphql/playground.py"
        )
    remote = _REMOTE_RESOURCE.search(html)
    if remote is not None:
        line = html[html.rfind("\n", 0, remote.start()) + 1 : html.find("\n", remote.end())]
        raise PlaygroundAssetsError(
            "strawberry's GraphiQL page loads a remote resource the offline playground does "
            f"not serve: {line.strip()!r}; update graphql_api/graphql/playground.py"
        )
    return html


class OfflineGraphQL(GraphQL[Any, Any]):
    """``strawberry.asgi.GraphQL`` whose GraphiQL page loads its files from ``assets_url``.

    ``assets_url`` is where :func:`playground_routes` are mounted (normally
    :data:`ASSETS_URL_PATH`); None keeps strawberry's page, which loads them from the CDN.
    Every other argument is passed to ``GraphQL``.
    """

    def __init__(
        self, schema: BaseSchema, *args: Any, assets_url: str | None, **kwargs: Any
    ) -> None:
        super().__init__(schema, *args, **kwargs)
        if self.graphql_ide not in ("graphiql", None):
            raise ValueError(
                f"OfflineGraphQL only serves the GraphiQL IDE, got graphql_ide={self.graphql_ide!r}"
            )
        self.assets_url = assets_url
        # Built once, not per request.
        self._offline_html = offline_graphiql_html(assets_url) if assets_url else None

    @property
    def graphql_ide_html(self) -> str:
        return self._offline_html or super().graphql_ide_html

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphql_ide_html)


def _route_name(package: str) -> str:
    return package.removeprefix("@").replace("/", "-")


def playground_routes(assets_dir: Path) -> list[BaseRoute]:
    """Routes serving the GraphiQL page's packages from ``assets_dir`` (a ``node_modules``).

    One ``Mount(ASSETS_URL_PATH, name="graphiql-assets")`` containing one static-files
    mount per referenced package (``/graphiql-assets/react`` -> ``node_modules/react``, ...),
    so the rest of ``node_modules`` is not exposed.
    """
    assets_dir = Path(assets_dir)
    packages = dict.fromkeys(a.package for a in referenced_assets())
    package_mounts: list[BaseRoute] = [
        Mount(
            f"/{package}",
            app=StaticFiles(directory=assets_dir / package),
            name=_route_name(package),
        )
        for package in packages
    ]
    return [Mount(ASSETS_URL_PATH, routes=package_mounts, name="graphiql-assets")]


if __name__ == "__main__":
    # make: python -m graphql_api.graphql.playground node_modules
    copied = vendor_assets(Path(sys.argv[1]))
    print(f"playground: {copied} files copied into {VENDORED_DIR}")
