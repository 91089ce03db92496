-- PostgreSQL twin of migrations/0004_generation.sql: the same schema, with BIGINT for INTEGER and identity keys.
-- The Generate stage of a run: every reply the model drew for a question slot (topic, index),
-- the question read from it or why none could be (a skip, drawn again with the next attempt's
-- seed), and, once the stage has applied the paper's filters, what they did to each question.

CREATE TABLE generation_attempts (
    run_id          BIGINT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    topic           BIGINT NOT NULL CHECK (topic BETWEEN 0 AND 12),
    question_index  BIGINT NOT NULL CHECK (question_index >= 0),
    attempt         BIGINT NOT NULL CHECK (attempt >= 0),
    seed            BIGINT NOT NULL CHECK (seed >= 0),  -- the sampling seed of this reply
    prompt          TEXT    NOT NULL,                     -- the user prompt (the system prompt is fixed)
    raw_reply       TEXT    NOT NULL,
    question        TEXT,                                 -- NULL: the reply held no question
    options_json    TEXT,                                 -- ["option", ...]
    parse_error     TEXT,                                 -- why the reply held no question
    filter_verdict  TEXT CHECK (filter_verdict IN ('kept', 'rewritten', 'duplicate', 'digit_only', 'numbering')),
    question_id     TEXT,                                 -- the kept question in the run's generated set
    PRIMARY KEY (run_id, topic, question_index, attempt),
    CHECK ((question IS NULL) = (options_json IS NULL)),
    CHECK ((question IS NULL) = (parse_error IS NOT NULL))
);
