-- A conversation's consultant_profile is copied into training files that people read, so it
-- keeps the key order of its source file: json stores the text as written, jsonb reorders
-- keys. (Rows imported before this keep the order jsonb gave them.)
ALTER TABLE conversations
    ALTER COLUMN consultant_profile TYPE json USING consultant_profile::json;
