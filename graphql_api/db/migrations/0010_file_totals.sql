-- What an add needs to update a file's statistics without reading its members again: the
-- quality sum and count behind avg_quality_score (which is rounded, so they cannot be
-- recovered from it) and the consultant profile its header shows (the first member's that
-- has one). With these, conversation_count, the pair counts, min/max quality and
-- scaffolding_distribution, an add combines the row with its new conversations only, so its
-- cost does not grow with the file; a removal still aggregates the members it keeps.
ALTER TABLE training_files
    ADD COLUMN quality_sum numeric NOT NULL DEFAULT 0,
    ADD COLUMN quality_count integer NOT NULL DEFAULT 0 CHECK (quality_count >= 0),
    ADD COLUMN consultant_profile json;

UPDATE training_files f SET
    quality_sum = totals.quality_sum,
    quality_count = totals.quality_count,
    consultant_profile = (
        SELECT c.consultant_profile
        FROM training_file_conversations j JOIN conversations c USING (conversation_id)
        WHERE j.training_file_id = f.id AND c.consultant_profile IS NOT NULL
        ORDER BY j.position LIMIT 1
    )
FROM (
    SELECT j.training_file_id, sum(c.quality_sum) AS quality_sum,
           sum(c.quality_count)::integer AS quality_count
    FROM training_file_conversations j JOIN conversations c USING (conversation_id)
    GROUP BY j.training_file_id
) totals
WHERE totals.training_file_id = f.id;

GRANT UPDATE (quality_sum, quality_count, consultant_profile) ON training_files TO training_files_user;
