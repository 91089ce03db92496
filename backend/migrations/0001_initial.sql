-- The store of CultureSPA Studio. The data path: question → answer → instance → review → adapter
-- → evaluation. Timestamps are RFC 3339 text in UTC.

CREATE TABLE questions (
    question_set  TEXT    NOT NULL,             -- 'wvs' or the name of a generated set
    question_id   TEXT    NOT NULL,
    topic         INTEGER NOT NULL CHECK (topic BETWEEN 0 AND 12),
    text          TEXT    NOT NULL,
    options_json  TEXT    NOT NULL,             -- [{"code", "text"}]
    provenance    TEXT    NOT NULL,             -- where it came from (file, run, model)
    PRIMARY KEY (question_set, question_id)
);

CREATE TABLE runs (
    run_id        INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    config_json   TEXT    NOT NULL,
    origin_json   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

CREATE TABLE run_events (
    event_id      INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    event_json    TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);
CREATE INDEX run_events_by_run ON run_events (run_id, event_id);

CREATE TABLE answers (
    answer_id         INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    question_set      TEXT    NOT NULL,
    question_id       TEXT    NOT NULL,
    country_code      TEXT,                     -- NULL: culture-unaware
    variant           TEXT    NOT NULL,
    raw_reply         TEXT,
    parsed_code       INTEGER,
    distribution_json TEXT                      -- option probabilities, in option order
);
CREATE UNIQUE INDEX answers_unique
    ON answers (run_id, question_set, question_id, IFNULL(country_code, ''), variant);

CREATE TABLE instances (
    instance_id   INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    question_set  TEXT    NOT NULL,
    question_id   TEXT    NOT NULL,
    country_code  TEXT    NOT NULL,
    topic         INTEGER NOT NULL,
    unaware_code  INTEGER NOT NULL,
    aware_code    INTEGER NOT NULL,
    review_status TEXT    NOT NULL DEFAULT 'pending',
    UNIQUE (run_id, question_set, question_id, country_code)
);
CREATE INDEX instances_by_culture ON instances (run_id, country_code);

CREATE TABLE users (
    user_id       INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'collaborator', 'annotator')),
    created_at    TEXT    NOT NULL
);

CREATE TABLE reviews (
    review_id      INTEGER PRIMARY KEY,
    instance_id    INTEGER NOT NULL REFERENCES instances (instance_id) ON DELETE CASCADE,
    reviewer       TEXT    NOT NULL,
    decision       TEXT    NOT NULL CHECK (decision IN ('accept', 'reject', 'change_answer', 'flag_stereotype')),
    corrected_code INTEGER,
    note           TEXT,
    created_at     TEXT    NOT NULL
);
CREATE INDEX reviews_by_instance ON reviews (instance_id);

CREATE TABLE adapters (
    adapter_id    INTEGER PRIMARY KEY,
    run_id        INTEGER REFERENCES runs (run_id) ON DELETE SET NULL,
    name          TEXT    NOT NULL,
    mode          TEXT    NOT NULL CHECK (mode IN ('culture_joint', 'culture_specific')),
    country_code  TEXT,                         -- set for culture-specific adapters
    path          TEXT    NOT NULL,
    config_json   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);

CREATE TABLE evaluations (
    evaluation_id INTEGER PRIMARY KEY,
    run_id        INTEGER REFERENCES runs (run_id) ON DELETE SET NULL,
    model         TEXT    NOT NULL,
    adapter       TEXT,
    variant       TEXT    NOT NULL,
    result_json   TEXT    NOT NULL,             -- per-culture scores
    average       REAL    NOT NULL,
    created_at    TEXT    NOT NULL
);
