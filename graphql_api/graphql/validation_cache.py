"""Validation of a document once per text: clients send the same few operations over and over
with new variables, and validating one against this schema costs about a millisecond (as
much as a small query's execution), whatever its variables.

Strawberry's own `ValidationCache` keys on the validation rules too, and the depth limiter
makes a new rule class per request, so it never hits here. The rules are fixed per schema,
so the text alone is the key: one cache per built schema, bounded, holding only documents
that passed (an invalid one is validated again, and reported as before, every time).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

# Distinct valid operations remembered; a client cycling through more only loses the saving.
MAX_DOCUMENTS = 512


class ValidDocuments:
    """The texts of documents that passed validation, least recently used first."""

    def __init__(self, max_documents: int = MAX_DOCUMENTS) -> None:
        self._max = max_documents
        self._texts: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, text: str) -> bool:
        if text not in self._texts:
            return False
        self._texts.move_to_end(text)
        return True

    def add(self, text: str) -> None:
        self._texts[text] = None
        self._texts.move_to_end(text)
        if len(self._texts) > self._max:
            self._texts.popitem(last=False)


class CachedValidation(SchemaExtension):
    """Skip validating a document whose text passed before (Strawberry validates only when
    no extension has set the result); remember the ones that pass."""

    def __init__(self, *, valid: ValidDocuments) -> None:
        super().__init__()
        self._valid = valid

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        text = execution.query
        if text is not None and text in self._valid:
            execution.pre_execution_errors = []
            yield
            return
        yield
        if text is not None and execution.pre_execution_errors == []:
            self._valid.add(text)
