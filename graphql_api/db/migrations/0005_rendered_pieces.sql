-- Each conversation's part of every training-file object, rendered once at import and stored
-- beside its file: a build then concatenates bytes instead of parsing and re-rendering every
-- enriched file. `piece_sizes` are the byte lengths of the pieces in the stored object, in the
-- order the code renders them (the JSON conversation object with its leading separator, then
-- its JSONL lines); rows imported before this have none and are rendered on the fly.
ALTER TABLE conversations
    ADD COLUMN pieces_path text,
    ADD COLUMN piece_sizes integer[],
    ADD CONSTRAINT conversations_pieces_complete
        CHECK ((pieces_path IS NULL) = (piece_sizes IS NULL)),
    ADD CONSTRAINT conversations_pieces_under_own_prefix
        CHECK (pieces_path IS NULL OR starts_with(pieces_path, conversation_id::text || '/'));
