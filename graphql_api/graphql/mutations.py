"""Mutations: expected failures come back as `userErrors`, never as exceptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import strawberry
from strawberry.utils.str_converters import to_camel_case

from ..errors import Forbidden, Problem, Unauthenticated, Unavailable, UserError
from ..inputs import parse_uuid
from .context import Context
from .nodes import TrainingFile
from .types import TrainingFileFormat

Info = strawberry.Info[Context, None]
T = TypeVar("T")


@strawberry.type(
    name="UserError",
    description="Something about the request that must change for it to succeed.",
)
class UserErrorType:
    code: str
    field: str | None
    message: str
    conversation_ids: list[strawberry.ID]

    @classmethod
    def from_problem(cls, problem: Problem) -> UserErrorType:
        return cls(
            code=problem.code.value,
            field=to_camel_case(problem.field) if problem.field else None,
            message=problem.message,
            conversation_ids=[strawberry.ID(str(i)) for i in problem.conversation_ids],
        )


@strawberry.type
class TrainingFilePayload:
    training_file: TrainingFile | None
    user_errors: list[UserErrorType]


@strawberry.type
class DownloadUrlPayload:
    url: str | None
    filename: str | None
    expires_in_seconds: int | None
    expires_at: datetime | None
    user_errors: list[UserErrorType]


@strawberry.input
class CreateTrainingFileInput:
    name: str
    description: str | None = None
    conversation_ids: list[strawberry.ID]


@strawberry.input
class AddConversationsInput:
    training_file_id: strawberry.ID
    conversation_ids: list[strawberry.ID]


@strawberry.input
class DownloadUrlInput:
    training_file_id: strawberry.ID
    format: TrainingFileFormat


@strawberry.input
class TrainingFileIdInput:
    id: strawberry.ID


async def _attempt(action: Callable[[], Awaitable[T]]) -> tuple[T | None, list[UserErrorType]]:
    """Run a service call; turn the errors a user can fix into `userErrors`.

    Authentication and permission failures, and unavailable dependencies (nothing about the
    request is wrong: retry later), stay GraphQL errors with `extensions.code`.
    """
    try:
        return await action(), []
    except (Unauthenticated, Forbidden, Unavailable):
        raise
    except UserError as error:
        return None, [UserErrorType.from_problem(p) for p in error.problems]


def _file_payload(result: tuple[object, list[UserErrorType]]) -> TrainingFilePayload:
    record, errors = result
    return TrainingFilePayload(
        training_file=TrainingFile.from_record(record) if record else None,  # type: ignore[arg-type]
        user_errors=errors,
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Build a new training file from 1–80 conversations.")
    async def create_training_file(
        self, info: Info, input: CreateTrainingFileInput
    ) -> TrainingFilePayload:
        ctx = info.context
        user_id = ctx.user_id
        return _file_payload(
            await _attempt(
                lambda: ctx.services.training_files.create_training_file(
                    user_id, input.name, input.description, list(input.conversation_ids)
                )
            )
        )

    @strawberry.mutation(description="Append 1–80 conversations to one of your training files.")
    async def add_conversations(
        self, info: Info, input: AddConversationsInput
    ) -> TrainingFilePayload:
        ctx = info.context
        user_id = ctx.user_id

        async def add() -> object:
            file_id = parse_uuid(input.training_file_id, "trainingFileId")
            return await ctx.services.training_files.add_conversations(
                user_id, file_id, list(input.conversation_ids)
            )

        return _file_payload(await _attempt(add))

    @strawberry.mutation(description="An expiring link to download the file (JSON or JSONL).")
    async def download_url(self, info: Info, input: DownloadUrlInput) -> DownloadUrlPayload:
        ctx = info.context
        user_id = ctx.user_id

        async def link() -> object:
            file_id = parse_uuid(input.training_file_id, "trainingFileId")
            target = await ctx.services.training_files.download_target(
                user_id, file_id, input.format
            )
            return await ctx.services.download_link(target, ctx.base_url)

        result, errors = await _attempt(link)
        return DownloadUrlPayload(
            url=getattr(result, "url", None),
            filename=getattr(result, "filename", None),
            expires_in_seconds=getattr(result, "expires_in_seconds", None),
            expires_at=getattr(result, "expires_at", None),
            user_errors=errors,
        )

    @strawberry.mutation(description="Hide a file from the default listing; keeps its objects.")
    async def archive_training_file(
        self, info: Info, input: TrainingFileIdInput
    ) -> TrainingFilePayload:
        return await _set_archived(info, input.id, archived=True)

    @strawberry.mutation(description="Make an archived file active again.")
    async def restore_training_file(
        self, info: Info, input: TrainingFileIdInput
    ) -> TrainingFilePayload:
        return await _set_archived(info, input.id, archived=False)


async def _set_archived(info: Info, raw_id: str, *, archived: bool) -> TrainingFilePayload:
    ctx = info.context
    user_id = ctx.user_id

    async def change() -> object:
        file_id = parse_uuid(raw_id, "id")
        return await ctx.services.training_files.set_archived(user_id, file_id, archived)

    return _file_payload(await _attempt(change))
