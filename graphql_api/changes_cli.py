"""`training-files create`, `add` and `remove`: a change made through a running server's API,
with a progress bar fed by `trainingFileProgress`.

Through the API rather than in-process, so that the server's own pools, locks and limits apply
and the change is seen by its subscribers like any other. The subscription opens before the
mutation is sent; events published before the server has registered it are missed, which only
makes the bar start later: the mutation's answer is what the command reports.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import websockets
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

# Bounds every wait of a command: connecting, the websocket handshake, the mutation.
TIMEOUT_SECONDS = 120.0

_FILE = "trainingFile { id name version conversationCount }"
_USER_ERRORS = "userErrors { code message field }"
CREATE = f"""mutation ($input: CreateTrainingFileInput!) {{
  createTrainingFile(input: $input) {{ {_FILE} {_USER_ERRORS} }} }}"""
ADD = f"""mutation ($input: AddConversationsInput!) {{
  addConversations(input: $input) {{ {_FILE} {_USER_ERRORS} }} }}"""
REMOVE = f"""mutation ($input: RemoveConversationsInput!) {{
  removeConversations(input: $input) {{ {_FILE} {_USER_ERRORS} }} }}"""
PROGRESS = """subscription ($id: ID!) { trainingFileProgress(id: $id) {
  phase conversationsDone conversationsTotal bytesWritten } }"""


@dataclass(frozen=True)
class Change:
    """One mutation on one training file, whose progress is followed by its id."""

    training_file_id: str
    query: str
    variables: dict[str, Any]
    payload_key: str

    @classmethod
    def create(cls, name: str, description: str | None, ids: list[str]) -> Change:
        file_id = str(uuid4())  # chosen here, so that its progress can be followed from start
        fields = {"id": file_id, "name": name, "description": description, "conversationIds": ids}
        return cls(file_id, CREATE, {"input": fields}, "createTrainingFile")

    @classmethod
    def add(cls, file_id: str, ids: list[str]) -> Change:
        fields = {"trainingFileId": file_id, "conversationIds": ids}
        return cls(file_id, ADD, {"input": fields}, "addConversations")

    @classmethod
    def remove(cls, file_id: str, ids: list[str]) -> Change:
        fields = {"trainingFileId": file_id, "conversationIds": ids}
        return cls(file_id, REMOVE, {"input": fields}, "removeConversations")


class ServerError(Exception):
    """The server could not be reached or did not answer the mutation."""


async def run(change: Change, url: str, token: str, console: Console) -> dict[str, Any]:
    """The mutation's payload (`trainingFile`, `userErrors`), a bar drawn while it runs."""
    headers = {"Authorization": f"Bearer {token}"}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("conversations, {task.fields[written]} written"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("waiting", total=None, written=_size(0))

        def show(event: dict[str, Any]) -> None:
            bar.update(
                task,
                description=event["phase"].lower(),
                completed=event["conversationsDone"],
                total=event["conversationsTotal"],
                written=_size(int(event["bytesWritten"])),
            )

        async with AsyncExitStack() as stack:
            events = await stack.enter_async_context(_Events(url, headers, change, show))
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=TIMEOUT_SECONDS)
            )
            answer: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(
                _mutate(client, headers, change)
            )
            await events.follow_until(answer)
            return await answer


async def _mutate(
    client: httpx.AsyncClient, headers: dict[str, str], change: Change
) -> dict[str, Any]:
    body = {"query": change.query, "variables": change.variables}
    try:
        response = await client.post("/graphql", json=body, headers=headers)
    except httpx.HTTPError as error:
        raise ServerError(f"no answer from {client.base_url}: {error}") from None
    try:
        answer = response.json()
    except ValueError:
        raise ServerError(f"{response.status_code} from {client.base_url}") from None
    if answer.get("errors"):
        first = answer["errors"][0]
        code = first.get("extensions", {}).get("code", "ERROR")
        raise ServerError(f"{code}: {first.get('message')}")
    payload: dict[str, Any] = answer["data"][change.payload_key]
    return payload


class _Events:
    """The change's progress over graphql-transport-ws; `show` gets each event."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        change: Change,
        show: Callable[[dict[str, Any]], None],
    ) -> None:
        self._url = url.replace("http", "ws", 1).rstrip("/") + "/graphql"
        self._headers = headers
        self._change = change
        self._show = show

    async def __aenter__(self) -> _Events:
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                self._socket = await websockets.connect(
                    self._url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
                )
                await self._send({"type": "connection_init", "payload": self._headers})
                await self._socket.recv()  # connection_ack
        except (OSError, websockets.WebSocketException, TimeoutError) as error:
            raise ServerError(f"no websocket at {self._url}: {error or type(error)}") from None
        variables = {"id": self._change.training_file_id}
        payload = {"query": PROGRESS, "variables": variables}
        await self._send({"id": "progress", "type": "subscribe", "payload": payload})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._socket.close()

    async def follow_until(self, answer: asyncio.Future[Any]) -> None:
        """Show events until the mutation is answered (or the subscription ends)."""
        while not answer.done():
            receiving = asyncio.ensure_future(self._socket.recv())
            await asyncio.wait({receiving, answer}, return_when=asyncio.FIRST_COMPLETED)
            if not receiving.done():
                receiving.cancel()
                return
            try:
                message = json.loads(receiving.result())
            except websockets.WebSocketException:
                await answer  # the bar stops; the answer still comes over HTTP
                return
            if message.get("type") == "ping":
                await self._send({"type": "pong"})
            elif message.get("type") == "next":
                event = (message["payload"].get("data") or {}).get("trainingFileProgress")
                if event:
                    self._show(event)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._socket.send(json.dumps(message))


def _size(size: int) -> str:
    return f"{size} B" if size < 1024 else f"{size / (1 << 20):.1f} MiB"


def report(payload: dict[str, Any], console: Console) -> int:
    """Print the outcome; the exit status: 0 when the change committed, 1 when refused."""
    if payload.get("userErrors"):
        for error in payload["userErrors"]:
            console.print(f"[red]{error['code']}[/red] {escape(error['message'])}", highlight=False)
        return 1
    file = payload["trainingFile"]
    console.print(
        f"{escape(file['name'])}: {file['id']} version {file['version']}, "
        f"{file['conversationCount']} conversations",
        highlight=False,
    )
    return 0
