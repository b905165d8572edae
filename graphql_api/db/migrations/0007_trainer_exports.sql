-- Two more objects per training-file version, for trainers: OPENAI_CHAT (`{"messages": ...}`
-- lines) and HF_DATASET (flat records). They have no header, so the whole object is the body
-- an add copies, and only the path and the size are recorded. Versions built before this have
-- none (NULL); their next change writes all four objects.
ALTER TABLE training_files
    ADD COLUMN openai_chat_file_path text,
    ADD COLUMN openai_chat_file_size bigint CHECK (openai_chat_file_size >= 0),
    ADD COLUMN hf_dataset_file_path text,
    ADD COLUMN hf_dataset_file_size bigint CHECK (hf_dataset_file_size >= 0),
    ADD CONSTRAINT training_files_openai_chat_complete
        CHECK ((openai_chat_file_path IS NULL) = (openai_chat_file_size IS NULL)),
    ADD CONSTRAINT training_files_hf_dataset_complete
        CHECK ((hf_dataset_file_path IS NULL) = (hf_dataset_file_size IS NULL)),
    -- As 0002 for the first two: a row's objects live under its own id and version.
    ADD CONSTRAINT training_files_exports_under_own_prefix CHECK (
        (openai_chat_file_path IS NULL
         OR openai_chat_file_path ~ ('^' || id::text || '/v' || version::text || '/[a-z0-9_-][a-z0-9._-]*$'))
        AND (hf_dataset_file_path IS NULL
         OR hf_dataset_file_path ~ ('^' || id::text || '/v' || version::text || '/[a-z0-9_-][a-z0-9._-]*$'))
    );

GRANT UPDATE (openai_chat_file_path, openai_chat_file_size, hf_dataset_file_path, hf_dataset_file_size)
    ON training_files TO training_files_user;

-- The database retires replaced objects itself (0002): now all four of them.
CREATE OR REPLACE FUNCTION retire_replaced_objects() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.retired_objects (bucket, key)
    SELECT OLD.storage_bucket, old_key
    FROM unnest(ARRAY[OLD.json_file_path, OLD.jsonl_file_path,
                      OLD.openai_chat_file_path, OLD.hf_dataset_file_path]) AS replaced(old_key)
    WHERE old_key IS NOT NULL
      AND (TG_OP = 'DELETE'
           OR old_key NOT IN (coalesce(NEW.json_file_path, ''), coalesce(NEW.jsonl_file_path, ''),
                              coalesce(NEW.openai_chat_file_path, ''),
                              coalesce(NEW.hf_dataset_file_path, '')))
    ON CONFLICT (bucket, key) DO NOTHING;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION retire_replaced_objects() FROM PUBLIC;

DROP TRIGGER training_files_retire_objects ON training_files;
CREATE TRIGGER training_files_retire_objects
    AFTER UPDATE OF json_file_path, jsonl_file_path, openai_chat_file_path, hf_dataset_file_path
        OR DELETE ON training_files
    FOR EACH ROW EXECUTE FUNCTION retire_replaced_objects();
