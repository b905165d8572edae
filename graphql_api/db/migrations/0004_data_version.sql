-- A counter that every committed change of what the API reads bumps, so that any process can
-- tell with one cheap query whether a read response it cached is still current.
CREATE TABLE data_version (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint NOT NULL
);
INSERT INTO data_version (version) VALUES (1);
GRANT SELECT ON data_version TO training_files_user;

CREATE FUNCTION bump_data_version() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.data_version SET version = version + 1;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION bump_data_version() FROM PUBLIC;

-- Deferred to the commit: the counter's row lock is the last lock a transaction takes, so two
-- changes can never wait for each other through it. Junction rows only change together with
-- their training file's row.
CREATE CONSTRAINT TRIGGER training_files_bump_data_version
    AFTER INSERT OR UPDATE OR DELETE ON training_files
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_data_version();
CREATE CONSTRAINT TRIGGER conversations_bump_data_version
    AFTER INSERT OR UPDATE OR DELETE ON conversations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER training_files_truncate_bumps_data_version
    AFTER TRUNCATE ON training_files FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER conversations_truncate_bumps_data_version
    AFTER TRUNCATE ON conversations FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
CREATE TRIGGER junction_truncate_bumps_data_version
    AFTER TRUNCATE ON training_file_conversations FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version();
