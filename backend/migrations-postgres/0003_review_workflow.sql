-- PostgreSQL twin of migrations/0003_review_workflow.sql: the same schema, with BIGINT for INTEGER and identity keys.
-- Review workflow: several reviewers per instance, undo, edited answers, and an instance status
-- that derives from the reviews and the number of reviewers the run asks for.

-- How many reviewers each instance of a run needs; a run without a row needs 1.
CREATE TABLE review_settings (
    run_id                  BIGINT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    reviewers_per_instance  BIGINT NOT NULL CHECK (reviewers_per_instance BETWEEN 1 AND 100)
);

-- The answer a reviewer wrote instead of the model's (the SFT output), if any.
ALTER TABLE reviews ADD COLUMN edited_output TEXT;
-- What the review says the instance should be, comparable across reviewers: 'answer:<output>'
-- (accept, change_answer, edit), 'reject' or 'flag'. Agreement and status compare these.
ALTER TABLE reviews ADD COLUMN label TEXT NOT NULL DEFAULT '';
-- A reviewer's newer review of an instance supersedes their older one, which stays as history;
-- undoing the newer one makes the older one current again.
ALTER TABLE reviews ADD COLUMN supersedes BIGINT REFERENCES reviews (review_id);
ALTER TABLE reviews ADD COLUMN is_current BIGINT NOT NULL DEFAULT 1 CHECK (is_current IN (0, 1));

UPDATE reviews SET label = CASE decision
    WHEN 'accept' THEN 'answer:' || (SELECT aware_code FROM instances WHERE instances.instance_id = reviews.instance_id)
    WHEN 'change_answer' THEN 'answer:' || corrected_code
    WHEN 'reject' THEN 'reject'
    ELSE 'flag'
END;

-- Before this migration a reviewer could review an instance twice: the latest review counts.
UPDATE reviews SET supersedes = (
    SELECT MAX(older.review_id) FROM reviews AS older
    WHERE older.instance_id = reviews.instance_id AND older.reviewer = reviews.reviewer
      AND older.review_id < reviews.review_id
);
UPDATE reviews SET is_current = 0
WHERE review_id IN (SELECT supersedes FROM reviews WHERE supersedes IS NOT NULL);

CREATE UNIQUE INDEX reviews_current_by_reviewer ON reviews (instance_id, reviewer) WHERE is_current = 1;
CREATE INDEX reviews_by_reviewer ON reviews (reviewer, review_id);

-- Statuses under the new rule with one reviewer per instance: no current review is 'pending', one
-- label shared by all current reviews decides, different labels are 'disputed'.
UPDATE instances SET review_status = (
    SELECT CASE
        WHEN COUNT(*) = 0 THEN 'pending'
        WHEN COUNT(DISTINCT label) > 1 THEN 'disputed'
        WHEN MIN(label) = 'reject' THEN 'rejected'
        WHEN MIN(label) = 'flag' THEN 'flagged'
        ELSE 'accepted'
    END
    FROM reviews
    WHERE reviews.instance_id = instances.instance_id AND reviews.is_current = 1
);
