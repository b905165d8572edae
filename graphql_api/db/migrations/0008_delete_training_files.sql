-- Owners delete their own training files (`deleteTrainingFile`). The request role gets DELETE,
-- and a policy lets it see only the caller's rows for it, so another user's file is never
-- deleted, whatever SQL runs on the request path: its DELETE simply matches nothing.
--
-- The rest needs nothing new: the junction rows go by their ON DELETE CASCADE (referential
-- actions run as the table's owner, so the request role still cannot delete junction rows
-- itself); `retire_replaced_objects` (0002, 0007) records the row's four objects for the
-- sweeper on DELETE; `bump_data_version` (0004) invalidates cached reads.
GRANT DELETE ON training_files TO training_files_user;

CREATE POLICY training_files_delete_own ON training_files
    FOR DELETE TO training_files_user USING (created_by = app_user_id());
