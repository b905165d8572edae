-- Where each member lies in each of its file's four objects, so that `removeConversations`
-- copies the bytes around the removed ones instead of rebuilding the file. [start, end) in
-- bytes, relative to the object's body start (training_files.json_body_start and
-- jsonl_body_start; the trainer exports have no header, so theirs is 0): a new header of
-- another length moves the body, not these. A member's JSON range includes the "," before it
-- (the first member's does not). Rows from before this have none (NULL); a removal from a
-- file with such a member rebuilds it from its members' pieces.
ALTER TABLE training_file_conversations
    ADD COLUMN json_start bigint,
    ADD COLUMN json_end bigint,
    ADD COLUMN jsonl_start bigint,
    ADD COLUMN jsonl_end bigint,
    ADD COLUMN openai_chat_start bigint,
    ADD COLUMN openai_chat_end bigint,
    ADD COLUMN hf_dataset_start bigint,
    ADD COLUMN hf_dataset_end bigint,
    ADD CONSTRAINT training_file_conversations_ranges CHECK (
        (json_start IS NULL AND json_end IS NULL AND jsonl_start IS NULL AND jsonl_end IS NULL
         AND openai_chat_start IS NULL AND openai_chat_end IS NULL
         AND hf_dataset_start IS NULL AND hf_dataset_end IS NULL)
        OR (0 <= json_start AND json_start <= json_end
            AND 0 <= jsonl_start AND jsonl_start <= jsonl_end
            AND 0 <= openai_chat_start AND openai_chat_start <= openai_chat_end
            AND 0 <= hf_dataset_start AND hf_dataset_start <= hf_dataset_end)
    );

-- A removal renumbers the members after the removed ones in one UPDATE, whose rows PostgreSQL
-- visits in no particular order: positions must be unique when the statement ends, not after
-- each row.
ALTER TABLE training_file_conversations
    DROP CONSTRAINT training_file_conversations_training_file_id_position_key,
    ADD CONSTRAINT training_file_conversations_training_file_id_position_key
        UNIQUE (training_file_id, position) DEFERRABLE INITIALLY IMMEDIATE;

-- The request role removes members of its own files and moves the others: it may delete
-- junction rows and change their position and ranges (never which file or conversation a
-- row joins), and the policies show it only the rows of files it owns.
GRANT DELETE ON training_file_conversations TO training_files_user;
GRANT UPDATE (position, json_start, json_end, jsonl_start, jsonl_end, openai_chat_start,
              openai_chat_end, hf_dataset_start, hf_dataset_end)
    ON training_file_conversations TO training_files_user;

CREATE POLICY junction_remove_from_own ON training_file_conversations
    FOR DELETE TO training_files_user USING (
        EXISTS (SELECT 1 FROM training_files f
                WHERE f.id = training_file_id AND f.created_by = app_user_id())
    );
CREATE POLICY junction_move_in_own ON training_file_conversations
    FOR UPDATE TO training_files_user
    USING (EXISTS (SELECT 1 FROM training_files f
                   WHERE f.id = training_file_id AND f.created_by = app_user_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM training_files f
                        WHERE f.id = training_file_id AND f.created_by = app_user_id()));
