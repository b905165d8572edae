"""Soak: many clients against a real server for a while, half of them changing files.

Run with `make soak` (or `.venv/bin/python -m bench.soak --clients 16 --seconds 60`). It starts
`training-files serve` on a throwaway data dir (embedded PostgreSQL, local storage, both
removed at exit) with the shipped defaults, or with `--s3` on S3 (a `moto_server` of its own on
127.0.0.1, so extended files become composites), imports demo conversations, then runs the clients
on 127.0.0.1: each request is, with probability `--add-share`, a change (create a training
file, or add 1–3 conversations to one of the client's own files), else a read of the
dashboard (`trainingFiles(first: 20)` with distributions and nested conversations). It prints
requests and errors by kind, p50/p99 latency per kind and the server's RSS over the run, then
runs `training-files check` on the store and prints its verdict. Nothing is asserted; the exit
status is check's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLI = str(Path(sys.executable).with_name("training-files"))
SECRET = "s" * 40

DASHBOARD = """
{ trainingFiles(first: 20) { totalCount edges { node { id name conversationCount
    qualitySummary { average minimum maximum }
    scaffoldingDistribution { personas { key count percentage } emotionalArcs { key count }
                              trainingTopics { key count } }
    conversations(first: 10) { nodes { id title personaKey qualityScore } } } } } }
"""
CREATE = """
mutation ($name: String!, $ids: [ID!]!) {
  createTrainingFile(input: {name: $name, conversationIds: $ids}) {
    trainingFile { id } userErrors { code } } }
"""
ADD = """
mutation ($file: ID!, $ids: [ID!]!) {
  addConversations(input: {trainingFileId: $file, conversationIds: $ids}) {
    trainingFile { id } userErrors { code } } }
"""
CONVERSATION_PAGE = """
query ($after: String) { conversations(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { id } } }
"""


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, kind: str, outcome: str, seconds: float) -> None:
        self.latencies[kind].append(seconds)
        self.outcomes[(kind, outcome)] += 1


def outcome_of(response: httpx.Response) -> str:
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    body = response.json()
    if body.get("errors"):
        return str(body["errors"][0].get("extensions", {}).get("code", "GRAPHQL_ERROR"))
    payload = next(iter(body["data"].values()))
    if isinstance(payload, dict) and payload.get("userErrors"):
        return str(payload["userErrors"][0]["code"])
    return "ok"


class Client:
    """One user: reads the dashboard or changes their own files."""

    def __init__(self, number: int, http: httpx.AsyncClient, ids: list[str], share: float) -> None:
        self.name = f"soak-user-{number}"
        self.http = http
        self.rng = random.Random(number)
        self.share = share
        self.ids = ids
        self.files: dict[str, set[str]] = {}
        self.created = 0
        token = subprocess.run(
            [CLI, "token", "--user", self.name], env=os.environ, capture_output=True, text=True
        )
        self.headers = {"Authorization": f"Bearer {token.stdout.strip()}"}

    async def run(self, until: float, results: Results) -> None:
        while time.monotonic() < until:
            if self.rng.random() < self.share:
                await self.change(results)
            else:
                await self.request(results, "read", DASHBOARD, {})

    async def change(self, results: Results) -> None:
        open_files = [f for f, members in self.files.items() if len(members) < len(self.ids) - 3]
        if not open_files or self.rng.random() < 0.1:
            picked = self.rng.sample(self.ids, 2)
            self.created += 1
            name = f"{self.name} file {self.created}"
            body = await self.request(results, "create", CREATE, {"name": name, "ids": picked})
            if body and body["data"]["createTrainingFile"]["trainingFile"]:
                self.files[body["data"]["createTrainingFile"]["trainingFile"]["id"]] = set(picked)
            return
        file_id = self.rng.choice(open_files)
        members = self.files[file_id]
        picked = self.rng.sample([i for i in self.ids if i not in members], self.rng.randint(1, 3))
        body = await self.request(results, "add", ADD, {"file": file_id, "ids": picked})
        if body and body["data"]["addConversations"]["trainingFile"]:
            members.update(picked)

    async def request(
        self, results: Results, kind: str, query: str, variables: dict[str, Any]
    ) -> dict[str, Any] | None:
        started = time.monotonic()
        try:
            response = await self.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=self.headers
            )
        except httpx.HTTPError as error:
            results.record(kind, type(error).__name__, time.monotonic() - started)
            return None
        outcome = outcome_of(response)
        results.record(kind, outcome, time.monotonic() - started)
        return response.json() if outcome == "ok" else None


async def conversation_ids(http: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        body = (
            await http.post(
                "/graphql",
                json={"query": CONVERSATION_PAGE, "variables": {"after": after}},
                headers=headers,
            )
        ).json()["data"]["conversations"]
        ids += [node["id"] for node in body["nodes"]]
        if not body["pageInfo"]["hasNextPage"]:
            return ids
        after = body["pageInfo"]["endCursor"]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample_rss(pid: int, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(rss_mib(pid))
        await asyncio.sleep(1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(results: Results, seconds: float, rss: list[float]) -> None:
    total = sum(results.outcomes.values())
    say(f"\n=== {total} requests in {seconds:.0f} s ({total / seconds:.1f} req/s) ===")
    say(f"{'kind':<7} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7}  outcomes")
    for kind, values in sorted(results.latencies.items()):
        outcomes = ", ".join(
            f"{outcome}: {count}"
            for (k, outcome), count in sorted(results.outcomes.items())
            if k == kind
        )
        say(
            f"{kind:<7} {len(values):>8} {statistics.median(values) * 1000:>7.0f} "
            f"{percentile(values, 0.99) * 1000:>7.0f}  {outcomes}"
        )
    errors = sum(count for (_, outcome), count in results.outcomes.items() if outcome != "ok")
    say(f"errors: {errors} of {total}")
    say(f"server RSS: start {rss[0]:.0f} MiB, peak {max(rss):.0f} MiB, end {rss[-1]:.0f} MiB")


async def soak(args: argparse.Namespace, base_url: str, pid: int) -> None:
    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:
        clients = [Client(n, http, [], args.add_share) for n in range(args.clients)]
        ids = await conversation_ids(http, clients[0].headers)
        for client in clients:
            client.ids = ids
        say(f"{len(ids)} conversations; {args.clients} clients for {args.seconds} s")
        results, rss, stop = Results(), [rss_mib(pid)], asyncio.Event()
        sampler = asyncio.create_task(sample_rss(pid, rss, stop))
        started = time.monotonic()
        until = started + args.seconds
        await asyncio.gather(*(client.run(until, results) for client in clients))
        elapsed = time.monotonic() - started
        stop.set()
        await sampler
    report(results, elapsed, rss)


def start_moto(scratch: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A moto_server on 127.0.0.1 for the run, and its endpoint."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("moto_server")),
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    log = (scratch / "moto.log").open("wb")
    moto = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/moto-api/", timeout=2).status_code == 200:
                return moto, url
        except httpx.TransportError:
            time.sleep(0.3)
    moto.terminate()
    raise SystemExit("moto_server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--add-share", type=float, default=0.5)
    parser.add_argument("--conversations", type=int, default=400)
    parser.add_argument("--s3", action="store_true", help="store on S3 (moto) instead of a disk")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="training-files-soak-"))
    port = free_port()
    moto = start_moto(scratch) if args.s3 else None
    os.environ |= {
        "DATA_DIR": str(scratch / "data"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "JWT_SECRET": SECRET,
        "DEMO_CONVERSATIONS": str(args.conversations),
    }
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "STORAGE_URL"):
        os.environ.pop(name, None)
    if moto is not None:
        os.environ |= {
            "STORAGE_URL": "s3://",
            "S3_ENDPOINT_URL": moto[1],
            "AWS_ACCESS_KEY_ID": "soak-access-key",
            "AWS_SECRET_ACCESS_KEY": "soak-secret-key",
            "S3_CREATE_BUCKETS": "true",
        }
    log = (scratch / "server.log").open("wb")
    server = subprocess.Popen([CLI, "serve"], stdout=log, stderr=subprocess.STDOUT)
    status = 1
    try:
        base_url = f"http://127.0.0.1:{port}"
        say(f"starting the server (importing {args.conversations} demo conversations)")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        asyncio.run(soak(args, base_url, server.pid))
        say("\n=== training-files check ===")
        check = subprocess.run([CLI, "check"], capture_output=True, text=True)
        say((check.stdout + check.stderr).strip())
        status = check.returncode
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
        if moto is not None:
            moto[0].terminate()
            moto[0].wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
