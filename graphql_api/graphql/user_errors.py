"""The interface every payload's kind of user error implements."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    name="UserError",
    description="Something about the request that must change for it to succeed. Each payload "
    "has its own kind, whose `code` is a closed enum of what that mutation can refuse.",
)
class UserErrorInterface:
    field: str | None = strawberry.field(
        description="The input field at fault, camelCase (`name`, `conversationIds`), or null "
        "when it is the request as a whole."
    )
    message: str = strawberry.field(description="What is wrong, in words, for a person.")
