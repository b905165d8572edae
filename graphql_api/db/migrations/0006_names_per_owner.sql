-- A training file's name is unique among its owner's files, whatever the case: two users may
-- both have "Q3 seed", one user cannot have "Q3 seed" and "q3 SEED" (they would download as
-- files a case-insensitive file system cannot tell apart).
--
-- Names that differ only in case within one owner existed legitimately before this; the later
-- ones get a " (2)", " (3)"... suffix so the index can be built. The data-version trigger
-- (0004) is deferred: fired now, it leaves no pending event to stop the ALTER TABLE.
SET CONSTRAINTS ALL IMMEDIATE;

UPDATE training_files AS t
SET name = left(t.name, 245) || ' (' || d.rank || ')'
FROM (
    SELECT id, row_number() OVER (
        PARTITION BY created_by, lower(name) ORDER BY created_at, id
    ) AS rank
    FROM training_files
) AS d
WHERE d.id = t.id AND d.rank > 1;

ALTER TABLE training_files DROP CONSTRAINT training_files_name_key;
CREATE UNIQUE INDEX training_files_owner_name_key ON training_files (created_by, lower(name));
