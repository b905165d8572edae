"""`importConversations`: enriched conversation files uploaded in a GraphQL multipart request,
each imported as `training-files import` imports it, each with its own result."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry
from strawberry.file_uploads import Upload

from ..conversations.importer import Outcome
from ..conversations.issues import Issue
from ..conversations.uploads import MAX_IMPORT_FILES, ReceivedFile, UploadResult
from ..errors import ErrorCode, Problem, UserError
from .context import Context
from .enums import ImportErrorCode, in_family
from .nodes import Conversation
from .types import ValidationIssue
from .user_errors import UserErrorInterface

Info = strawberry.Info[Context, None]

_OUTCOMES = {
    "IMPORTED": "A new conversation: the file is stored and its row created.",
    "UPDATED": "The conversation existed with another file: this one replaced it.",
    "UNCHANGED": "The conversation already has exactly this file: nothing changed.",
    "BLOCKED": "Not stored: the file is too large, not JSON, or validation found blockers.",
    "REFUSED": "Not stored: the file changes a conversation that is already in a training file.",
}
strawberry.enum(Outcome, name="ImportOutcome", description="What importing one file did.")
for _value in Outcome.__strawberry_definition__.values:  # type: ignore[attr-defined]
    _value.description = _OUTCOMES[_value.name]


@strawberry.type(description="Why `importConversations` refused the request or one file.")
class ImportUserError(UserErrorInterface):
    code: ImportErrorCode = strawberry.field(description="What went wrong, for code.")

    @classmethod
    def from_problem(cls, problem: Problem) -> ImportUserError:
        return cls(
            code=in_family(ImportErrorCode, problem.code),
            field=problem.field,
            message=problem.message,
        )


def _issues(issues: tuple[Issue, ...]) -> list[ValidationIssue]:
    return [ValidationIssue(code=i.code, path=i.path, message=i.message) for i in issues]


@strawberry.type(description="What importing one uploaded file did.")
class ConversationImportResult:
    filename: str = strawberry.field(description="The file's name as the upload gave it.")
    outcome: Outcome = strawberry.field(description="Stored, unchanged, or why not.")
    blockers: list[ValidationIssue] = strawberry.field(
        description="The structural problems that kept the file out (BLOCKED by validation)."
    )
    warnings: list[ValidationIssue] = strawberry.field(
        description="Drift the import accepted (also kept in the conversation's `validation`)."
    )
    user_errors: list[ImportUserError] = strawberry.field(
        description="Why the file was not stored; empty when it was."
    )
    conversation_id: strawberry.Private[UUID | None]
    stored: strawberry.Private[bool]

    @strawberry.field(
        description="The conversation the file is now, when it is stored (IMPORTED, UPDATED, "
        "UNCHANGED); null otherwise."
    )
    async def conversation(self, info: Info) -> Conversation | None:
        if not self.stored or self.conversation_id is None:
            return None
        record = await info.context.loaders.conversation.load(self.conversation_id)
        return Conversation.from_record(record) if record else None

    @classmethod
    def of(cls, result: UploadResult) -> ConversationImportResult:
        return cls(
            filename=result.filename,
            outcome=result.outcome,
            blockers=_issues(result.blockers),
            warnings=_issues(result.warnings),
            user_errors=[ImportUserError.from_problem(p) for p in result.problems],
            conversation_id=result.conversation_id,
            stored=result.stored,
        )


@strawberry.type(description="One result per uploaded file, in upload order, or why none.")
class ImportConversationsPayload:
    results: list[ConversationImportResult] = strawberry.field(
        description="Each file's result, in the order of `files`; empty when `userErrors` "
        "refused the request as a whole."
    )
    user_errors: list[ImportUserError] = strawberry.field(
        description="Problems of the request as a whole (no file, too many files, a value "
        "that is not an upload); then nothing was imported. A file's own problems are in its "
        "result."
    )


FILES = strawberry.argument(
    description=f"1–{MAX_IMPORT_FILES} enriched conversation JSON files, each a part of the "
    "multipart request."
)


async def import_conversations(
    info: Info, files: Annotated[list[Upload], FILES]
) -> ImportConversationsPayload:
    ctx = info.context
    user_id = ctx.user_id
    uploads = ctx.services.uploads
    received = [f for f in files if isinstance(f, ReceivedFile)]
    try:
        uploads.check_count(len(files), "files")
        if len(received) != len(files):
            message = (
                "every item of files must be a file of the multipart request (a part named in "
                "`map`), not a value in the variables"
            )
            raise UserError(message, code=ErrorCode.BAD_USER_INPUT)
    except UserError as error:
        problems = [ImportUserError.from_problem(_in_files(p)) for p in error.problems]
        return ImportConversationsPayload(results=[], user_errors=problems)
    results = await uploads.import_files(user_id, received)
    return ImportConversationsPayload(
        results=[ConversationImportResult.of(r) for r in results], user_errors=[]
    )


def _in_files(problem: Problem) -> Problem:
    return Problem(problem.code, problem.message, "files", problem.conversation_ids)
