-- Conversations, training files and their junction, with the row-level-security policies
-- that the API's per-request role runs under.

CREATE TABLE conversations (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id         uuid NOT NULL UNIQUE,
    title                   text,
    persona_key             text,
    persona_name            text,
    emotional_arc_key       text,
    emotional_arc_name      text,
    training_topic_key      text,
    training_topic_name     text,
    quality_score           numeric(3, 2) CHECK (quality_score BETWEEN 0 AND 5),
    empathy_score           numeric(3, 2) CHECK (empathy_score BETWEEN 0 AND 5),
    clarity_score           numeric(3, 2) CHECK (clarity_score BETWEEN 0 AND 5),
    appropriateness_score   numeric(3, 2) CHECK (appropriateness_score BETWEEN 0 AND 5),
    brand_voice_alignment   numeric(3, 2) CHECK (brand_voice_alignment BETWEEN 0 AND 5),
    tier                    text NOT NULL DEFAULT 'experimental'
                            CHECK (tier IN ('seed_dataset', 'production', 'experimental', 'rejected')),
    scaffolding_snapshot    jsonb,
    consultant_profile      jsonb,
    enrichment_status       text NOT NULL DEFAULT 'not_started'
                            CHECK (enrichment_status IN
                                   ('not_started', 'in_progress', 'completed', 'failed')),
    enriched_file_path      text,
    enriched_file_size      bigint CHECK (enriched_file_size >= 0),
    enriched_file_sha256    text,
    source_created_date     date,
    total_turns             integer NOT NULL DEFAULT 0 CHECK (total_turns >= 0),
    validation_report       jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Per-conversation statistics computed once at import: a training file's header is an
    -- aggregate over these, so no enriched file is re-read to compute it.
    pair_count              integer NOT NULL DEFAULT 0 CHECK (pair_count >= 0),
    trainable_pair_count    integer NOT NULL DEFAULT 0
                            CHECK (trainable_pair_count BETWEEN 0 AND pair_count),
    quality_sum             numeric NOT NULL DEFAULT 0,
    quality_count           integer NOT NULL DEFAULT 0 CHECK (quality_count BETWEEN 0 AND pair_count),
    quality_min             numeric,
    quality_max             numeric,
    human_reviewed_count    integer NOT NULL DEFAULT 0
                            CHECK (human_reviewed_count BETWEEN 0 AND pair_count),
    created_by              uuid,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (enrichment_status <> 'completed' OR enriched_file_path IS NOT NULL)
);

CREATE INDEX conversations_listing_idx ON conversations (created_at DESC, conversation_id DESC);
CREATE INDEX conversations_status_idx ON conversations (enrichment_status);
CREATE INDEX conversations_persona_idx ON conversations (persona_key);
CREATE INDEX conversations_arc_idx ON conversations (emotional_arc_key);
CREATE INDEX conversations_topic_idx ON conversations (training_topic_key);
CREATE INDEX conversations_quality_idx ON conversations (quality_score);

CREATE TABLE training_files (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                        text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 255),
    description                 text,
    json_file_path              text,
    jsonl_file_path             text,
    storage_bucket              text NOT NULL DEFAULT 'training-files',
    conversation_count          integer NOT NULL DEFAULT 0 CHECK (conversation_count >= 0),
    total_training_pairs        integer NOT NULL DEFAULT 0 CHECK (total_training_pairs >= 0),
    trainable_pairs             integer NOT NULL DEFAULT 0
                                CHECK (trainable_pairs BETWEEN 0 AND total_training_pairs),
    json_file_size              bigint CHECK (json_file_size >= 0),
    jsonl_file_size             bigint CHECK (jsonl_file_size >= 0),
    avg_quality_score           numeric(3, 2) CHECK (avg_quality_score BETWEEN 0 AND 5),
    min_quality_score           numeric(3, 2) CHECK (min_quality_score BETWEEN 0 AND 5),
    max_quality_score           numeric(3, 2) CHECK (max_quality_score BETWEEN 0 AND 5),
    human_reviewed_count        integer NOT NULL DEFAULT 0 CHECK (human_reviewed_count >= 0),
    scaffolding_distribution    jsonb NOT NULL DEFAULT '{}'::jsonb,
    status                      text NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'archived', 'processing', 'failed')),
    -- Versioned objects: every change writes v<version>/ objects, then commits this row.
    version                     integer NOT NULL DEFAULT 0 CHECK (version >= 0),
    -- Byte offsets [start, end) of the bodies (conversation objects / pair lines), so an add
    -- copies the old body as one range instead of re-reading every conversation.
    json_body_start             bigint,
    json_body_end               bigint,
    jsonl_body_start            bigint,
    jsonl_body_end              bigint,
    created_date                timestamptz NOT NULL DEFAULT now(),
    last_updated_at             timestamptz NOT NULL DEFAULT now(),
    created_by                  uuid NOT NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (json_body_start <= json_body_end AND json_body_end <= json_file_size),
    CHECK (jsonl_body_start <= jsonl_body_end AND jsonl_body_end <= jsonl_file_size)
);

CREATE INDEX training_files_listing_idx ON training_files (status, created_at DESC, id DESC);
CREATE INDEX training_files_created_by_idx ON training_files (created_by);

CREATE TABLE training_file_conversations (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    training_file_id    uuid NOT NULL REFERENCES training_files (id) ON DELETE CASCADE,
    conversation_id     uuid NOT NULL REFERENCES conversations (conversation_id),
    position            integer NOT NULL CHECK (position >= 0),
    added_at            timestamptz NOT NULL DEFAULT now(),
    added_by            uuid NOT NULL,
    UNIQUE (training_file_id, conversation_id),
    UNIQUE (training_file_id, position)
);

CREATE INDEX training_file_conversations_conversation_idx
    ON training_file_conversations (conversation_id);

-- Old objects kept until no download link to them can still be valid, then swept.
CREATE TABLE retired_objects (
    bucket      text NOT NULL,
    key         text NOT NULL,
    delete_after timestamptz NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Row-level security. API requests run each transaction as this non-login role with
-- app.user_id set locally; the policies, not Python, decide who may change what.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'training_files_user') THEN
        CREATE ROLE training_files_user NOLOGIN;
    END IF;
END
$$;

GRANT training_files_user TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO training_files_user;
GRANT SELECT ON conversations TO training_files_user;
GRANT SELECT, INSERT, UPDATE ON training_files TO training_files_user;
GRANT SELECT, INSERT ON training_file_conversations TO training_files_user;
GRANT SELECT, INSERT ON retired_objects TO training_files_user;

CREATE FUNCTION app_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE training_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE training_file_conversations ENABLE ROW LEVEL SECURITY;

CREATE POLICY conversations_read ON conversations
    FOR SELECT TO training_files_user USING (app_user_id() IS NOT NULL);

CREATE POLICY training_files_read ON training_files
    FOR SELECT TO training_files_user USING (app_user_id() IS NOT NULL);
CREATE POLICY training_files_create_own ON training_files
    FOR INSERT TO training_files_user WITH CHECK (created_by = app_user_id());
CREATE POLICY training_files_update_own ON training_files
    FOR UPDATE TO training_files_user
    USING (created_by = app_user_id()) WITH CHECK (created_by = app_user_id());

CREATE POLICY junction_read ON training_file_conversations
    FOR SELECT TO training_files_user USING (app_user_id() IS NOT NULL);
CREATE POLICY junction_add_to_own ON training_file_conversations
    FOR INSERT TO training_files_user WITH CHECK (
        added_by = app_user_id()
        AND EXISTS (SELECT 1 FROM training_files f
                    WHERE f.id = training_file_id AND f.created_by = app_user_id())
    );
