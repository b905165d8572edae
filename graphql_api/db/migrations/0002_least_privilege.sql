-- Least privilege for the request path: even with arbitrary SQL on its connection, it can
-- change nothing that is not the caller's, and cannot make the sweeper delete anything that
-- a row does not really point at.

-- Retired objects are recorded by the database itself, when a row's objects are replaced or
-- the row is deleted; the request path cannot write this table at all. The sweeper decides
-- when a retired object may go (retired_at + the download link lifetime).
ALTER TABLE retired_objects ADD COLUMN retired_at timestamptz;
UPDATE retired_objects SET retired_at = delete_after - interval '1 hour';
ALTER TABLE retired_objects
    ALTER COLUMN retired_at SET NOT NULL,
    ALTER COLUMN retired_at SET DEFAULT now(),
    DROP COLUMN delete_after;
CREATE INDEX retired_objects_retired_at_idx ON retired_objects (retired_at);
REVOKE ALL ON retired_objects FROM training_files_user;

CREATE FUNCTION retire_replaced_objects() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.retired_objects (bucket, key)
    SELECT OLD.storage_bucket, old_key
    FROM unnest(ARRAY[OLD.json_file_path, OLD.jsonl_file_path]) AS replaced(old_key)
    WHERE old_key IS NOT NULL
      AND (TG_OP = 'DELETE'
           OR (old_key IS DISTINCT FROM NEW.json_file_path
               AND old_key IS DISTINCT FROM NEW.jsonl_file_path))
    ON CONFLICT (bucket, key) DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION retire_replaced_objects() FROM PUBLIC;

CREATE TRIGGER training_files_retire_objects
    AFTER UPDATE OF json_file_path, jsonl_file_path OR DELETE ON training_files
    FOR EACH ROW EXECUTE FUNCTION retire_replaced_objects();

-- A row's objects live under its own id and version, in the training bucket: a row cannot be
-- pointed at another file's objects (or at anything outside its prefix).
ALTER TABLE training_files ADD CONSTRAINT training_files_objects_under_own_prefix CHECK (
    storage_bucket = 'training-files'
    AND (json_file_path IS NULL
         OR json_file_path ~ ('^' || id::text || '/v' || version::text || '/[a-z0-9_-][a-z0-9._-]*$'))
    AND (jsonl_file_path IS NULL
         OR jsonl_file_path ~ ('^' || id::text || '/v' || version::text || '/[a-z0-9_-][a-z0-9._-]*$'))
);

-- Identity, ownership and placement never change after insert.
REVOKE UPDATE ON training_files FROM training_files_user;
GRANT UPDATE (
    name, description, status, version,
    json_file_path, jsonl_file_path, json_file_size, jsonl_file_size,
    json_body_start, json_body_end, jsonl_body_start, jsonl_body_end,
    conversation_count, total_training_pairs, trainable_pairs,
    avg_quality_score, min_quality_score, max_quality_score, human_reviewed_count,
    scaffolding_distribution, last_updated_at, updated_at
) ON training_files TO training_files_user;
