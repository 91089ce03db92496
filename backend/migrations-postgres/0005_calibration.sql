-- PostgreSQL twin of migrations/0005_calibration.sql: the same schema, with BIGINT for INTEGER and identity keys.
-- Calibrated scoring (run option `calibration`): the model's own option distribution beside the
-- calibrated one in `distribution_json` (NULL when the run does not calibrate), and the priors
-- each calibration divided by, so that a resumed stage reuses them and a reader can inspect them.
ALTER TABLE answers ADD COLUMN raw_distribution_json TEXT;

CREATE TABLE calibration_priors (
    run_id       BIGINT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    question_set TEXT    NOT NULL,
    prior_key    TEXT    NOT NULL, -- method/variant/culture/what the prior is of (see runner/calibrate.rs)
    prior_json   TEXT    NOT NULL, -- probabilities over the options' positions
    PRIMARY KEY (run_id, question_set, prior_key)
);
