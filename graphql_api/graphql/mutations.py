"""Mutations: expected failures come back as `userErrors`, never as exceptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

import strawberry
from strawberry.utils.str_converters import to_camel_case

from ..db.training_files import TrainingFileRecord
from ..errors import Forbidden, Problem, Unauthenticated, Unavailable, UserError
from ..inputs import parse_uuid
from ..storage.base import DownloadLink
from .context import Context
from .enums import DownloadErrorCode, TrainingFileErrorCode, TrainingFileFormat, in_family
from .imports import ImportConversationsPayload, import_conversations
from .nodes import TrainingFile
from .user_errors import UserErrorInterface

Info = strawberry.Info[Context, None]
T = TypeVar("T")


@strawberry.type(description="Why a change to a training file was refused.")
class TrainingFileUserError(UserErrorInterface):
    code: TrainingFileErrorCode = strawberry.field(description="What went wrong, for code.")
    conversation_ids: list[strawberry.ID] = strawberry.field(
        description="The conversations this error is about (not found, not eligible, already "
        "in the file...); empty when it is about none in particular."
    )

    @classmethod
    def from_problem(cls, problem: Problem) -> TrainingFileUserError:
        return cls(
            code=in_family(TrainingFileErrorCode, problem.code),
            field=_field(problem),
            message=problem.message,
            conversation_ids=[strawberry.ID(str(i)) for i in problem.conversation_ids],
        )


@strawberry.type(description="Why no download link was made.")
class DownloadUserError(UserErrorInterface):
    code: DownloadErrorCode = strawberry.field(description="What went wrong, for code.")

    @classmethod
    def from_problem(cls, problem: Problem) -> DownloadUserError:
        return cls(
            code=in_family(DownloadErrorCode, problem.code),
            field=_field(problem),
            message=problem.message,
        )


def _field(problem: Problem) -> str | None:
    return to_camel_case(problem.field) if problem.field else None


@strawberry.type(description="The training file as the mutation left it, or why it refused.")
class TrainingFilePayload:
    training_file: TrainingFile | None = strawberry.field(
        description="The file after the change; null when `userErrors` is not empty."
    )
    user_errors: list[TrainingFileUserError] = strawberry.field(
        description="Empty on success; otherwise every problem found, and nothing changed."
    )


@strawberry.type(description="Which training file `deleteTrainingFile` deleted, or why it refused.")
class DeleteTrainingFilePayload:
    deleted_training_file_id: strawberry.ID | None = strawberry.field(
        description="The deleted file's id (it no longer resolves); null when `userErrors` is "
        "not empty."
    )
    user_errors: list[TrainingFileUserError] = strawberry.field(
        description="Empty on success; otherwise why nothing was deleted."
    )


@strawberry.type(description="An expiring download link, or why there is none.")
class DownloadUrlPayload:
    url: str | None = strawberry.field(
        description="GET it (no Authorization header) before `expiresAt`; it serves the file "
        "with `Content-Disposition: attachment` and honours `Range`."
    )
    filename: str | None = strawberry.field(
        description="The file's name with its extension, as the download names it."
    )
    expires_in_seconds: int | None = strawberry.field(
        description="How long the link lives (`DOWNLOAD_URL_TTL_SECONDS`)."
    )
    expires_at: datetime | None = strawberry.field(description="When the link stops working.")
    user_errors: list[DownloadUserError] = strawberry.field(
        description="Empty on success; otherwise why no link was made."
    )


@strawberry.input(description="A new training file.")
class CreateTrainingFileInput:
    name: str = strawberry.field(
        description="1–255 characters, unique among your files ignoring case."
    )
    description: str | None = strawberry.field(default=None, description="Up to 5000 characters.")
    conversation_ids: list[strawberry.ID] = strawberry.field(
        description="1–80 distinct conversation uuids, each enriched (COMPLETED); the file "
        "keeps this order."
    )
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A uuid for the new file, chosen by the client so that it can subscribe to "
        "`trainingFileProgress` before creating it; a new one when omitted (ID_TAKEN if a file "
        "has it).",
    )


@strawberry.input(description="Conversations to append to a training file.")
class AddConversationsInput:
    training_file_id: strawberry.ID = strawberry.field(
        description="The id of one of your active training files."
    )
    conversation_ids: list[strawberry.ID] = strawberry.field(
        description="1–80 distinct conversation uuids, enriched and not yet in the file; "
        "appended in this order."
    )


@strawberry.input(description="Conversations to take out of a training file.")
class RemoveConversationsInput:
    training_file_id: strawberry.ID = strawberry.field(
        description="The id of one of your active training files."
    )
    conversation_ids: list[strawberry.ID] = strawberry.field(
        description="1–80 distinct conversation uuids, each in the file, not all of its "
        "conversations; the others keep their order."
    )


@strawberry.input(description="Which object of which training file to link to.")
class DownloadUrlInput:
    training_file_id: strawberry.ID = strawberry.field(description="The training file's id.")
    format: TrainingFileFormat = strawberry.field(
        description="The JSON, the JSONL, or a trainer-ready export (OPENAI_CHAT, HF_DATASET)."
    )


@strawberry.input(description="One of your training files.")
class TrainingFileIdInput:
    id: strawberry.ID = strawberry.field(description="The training file's id.")


async def _attempt(action: Callable[[], Awaitable[T]]) -> tuple[T | None, tuple[Problem, ...]]:
    """Run a service call; return the problems a user can fix instead of raising them.

    Authentication and permission failures, and unavailable dependencies (nothing about the
    request is wrong: retry later), stay GraphQL errors with `extensions.code`.
    """
    try:
        return await action(), ()
    except (Unauthenticated, Forbidden, Unavailable):
        raise
    except UserError as error:
        return None, error.problems


def _file_payload(
    result: tuple[TrainingFileRecord | None, tuple[Problem, ...]],
) -> TrainingFilePayload:
    record, problems = result
    return TrainingFilePayload(
        training_file=TrainingFile.from_record(record) if record else None,
        user_errors=[TrainingFileUserError.from_problem(p) for p in problems],
    )


INPUT = strawberry.argument(description="What to do; see the input type.")


@strawberry.type(
    description="Changes. Each returns a payload whose `userErrors` say why it refused; "
    "a refused mutation changes nothing."
)
class Mutation:
    @strawberry.mutation(description="Build a new training file from 1–80 conversations.")
    async def create_training_file(
        self, info: Info, input: Annotated[CreateTrainingFileInput, INPUT]
    ) -> TrainingFilePayload:
        ctx = info.context
        user_id = ctx.user_id
        return _file_payload(
            await _attempt(
                lambda: ctx.services.training_files.create_training_file(
                    user_id,
                    input.name,
                    input.description,
                    list(input.conversation_ids),
                    input.id,
                )
            )
        )

    @strawberry.mutation(description="Append 1–80 conversations to one of your training files.")
    async def add_conversations(
        self, info: Info, input: Annotated[AddConversationsInput, INPUT]
    ) -> TrainingFilePayload:
        ctx = info.context
        user_id = ctx.user_id

        async def add() -> TrainingFileRecord:
            file_id = parse_uuid(input.training_file_id, "trainingFileId")
            return await ctx.services.training_files.add_conversations(
                user_id, file_id, list(input.conversation_ids)
            )

        return _file_payload(await _attempt(add))

    @strawberry.mutation(
        description="Take 1–80 conversations out of one of your training files; the new "
        "version equals a file built of the remaining ones."
    )
    async def remove_conversations(
        self, info: Info, input: Annotated[RemoveConversationsInput, INPUT]
    ) -> TrainingFilePayload:
        ctx = info.context
        user_id = ctx.user_id

        async def remove() -> TrainingFileRecord:
            file_id = parse_uuid(input.training_file_id, "trainingFileId")
            return await ctx.services.training_files.remove_conversations(
                user_id, file_id, list(input.conversation_ids)
            )

        return _file_payload(await _attempt(remove))

    @strawberry.mutation(
        description="An expiring link to download one of the file's objects (see the format)."
    )
    async def download_url(
        self, info: Info, input: Annotated[DownloadUrlInput, INPUT]
    ) -> DownloadUrlPayload:
        ctx = info.context
        user_id = ctx.user_id

        async def link() -> DownloadLink:
            file_id = parse_uuid(input.training_file_id, "trainingFileId")
            target = await ctx.services.training_files.download_target(
                user_id, file_id, input.format
            )
            return await ctx.services.download_link(target, ctx.base_url)

        result, problems = await _attempt(link)
        return DownloadUrlPayload(
            url=result.url if result else None,
            filename=result.filename if result else None,
            expires_in_seconds=result.expires_in_seconds if result else None,
            expires_at=result.expires_at if result else None,
            user_errors=[DownloadUserError.from_problem(p) for p in problems],
        )

    import_conversations: ImportConversationsPayload = strawberry.mutation(
        resolver=import_conversations,
        description="Import enriched conversation files (a GraphQL multipart request): each is "
        "validated, stored and its conversation created or updated, as `training-files import` "
        "does. 1–20 files of at most `MAX_IMPORT_FILE_BYTES` each.",
    )

    @strawberry.mutation(description="Hide a file from the default listing; keeps its objects.")
    async def archive_training_file(
        self, info: Info, input: Annotated[TrainingFileIdInput, INPUT]
    ) -> TrainingFilePayload:
        return await _set_archived(info, input.id, archived=True)

    @strawberry.mutation(description="Make an archived file active again.")
    async def restore_training_file(
        self, info: Info, input: Annotated[TrainingFileIdInput, INPUT]
    ) -> TrainingFilePayload:
        return await _set_archived(info, input.id, archived=False)

    @strawberry.mutation(
        description="Delete one of your training files, archived or not, with its list of "
        "conversations (the conversations stay). Links issued before keep working until they "
        "expire; then its objects are deleted. Waits for a change being built to the file."
    )
    async def delete_training_file(
        self, info: Info, input: Annotated[TrainingFileIdInput, INPUT]
    ) -> DeleteTrainingFilePayload:
        ctx = info.context
        user_id = ctx.user_id

        async def delete() -> TrainingFileRecord:
            file_id = parse_uuid(input.id, "id")
            return await ctx.services.training_files.delete_training_file(user_id, file_id)

        record, problems = await _attempt(delete)
        return DeleteTrainingFilePayload(
            deleted_training_file_id=strawberry.ID(str(record.id)) if record else None,
            user_errors=[TrainingFileUserError.from_problem(p) for p in problems],
        )


async def _set_archived(info: Info, raw_id: str, *, archived: bool) -> TrainingFilePayload:
    ctx = info.context
    user_id = ctx.user_id

    async def change() -> TrainingFileRecord:
        file_id = parse_uuid(raw_id, "id")
        return await ctx.services.training_files.set_archived(user_id, file_id, archived)

    return _file_payload(await _attempt(change))
