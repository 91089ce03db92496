//! What a review says an instance should be, and the instance status that follows from its reviews.

use shared::{ReviewDecision, ReviewStatus};

const ANSWER_PREFIX: &str = "answer:";
const REJECT: &str = "reject";
const FLAG: &str = "flag";

/// A review reduced to what it says the instance should be, so that reviews compare: accepting
/// answer 2 and changing the answer to 2 say the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReviewLabel {
    /// Keep the instance with this output (the code, or a reviewer's edited answer).
    Answer(String),
    Reject,
    /// Stereotyping: discard.
    Flag,
}

impl ReviewLabel {
    /// The label of `decision` on an instance whose culture-aware answer is `aware_code`; an edited
    /// output replaces the answer of a decision that keeps the instance.
    pub fn of(decision: &ReviewDecision, edited_output: Option<&str>, aware_code: u32) -> ReviewLabel {
        let edited = edited_output.map(str::trim).filter(|output| !output.is_empty());
        match decision {
            ReviewDecision::Accept => {
                ReviewLabel::Answer(edited.map_or_else(|| aware_code.to_string(), str::to_string))
            }
            ReviewDecision::ChangeAnswer { code } => {
                ReviewLabel::Answer(edited.map_or_else(|| code.to_string(), str::to_string))
            }
            ReviewDecision::Reject => ReviewLabel::Reject,
            ReviewDecision::FlagStereotype => ReviewLabel::Flag,
        }
    }

    /// The stored text: `answer:<output>`, `reject` or `flag`.
    pub fn to_text(&self) -> String {
        match self {
            ReviewLabel::Answer(output) => format!("{ANSWER_PREFIX}{output}"),
            ReviewLabel::Reject => REJECT.to_string(),
            ReviewLabel::Flag => FLAG.to_string(),
        }
    }

    pub fn parse(text: &str) -> Option<ReviewLabel> {
        match text {
            REJECT => Some(ReviewLabel::Reject),
            FLAG => Some(ReviewLabel::Flag),
            _ => text.strip_prefix(ANSWER_PREFIX).map(|output| ReviewLabel::Answer(output.to_string())),
        }
    }

    /// The SFT output, for a label that keeps the instance.
    pub fn output(&self) -> Option<&str> {
        match self {
            ReviewLabel::Answer(output) => Some(output),
            ReviewLabel::Reject | ReviewLabel::Flag => None,
        }
    }

    fn status(&self) -> ReviewStatus {
        match self {
            ReviewLabel::Answer(_) => ReviewStatus::Accepted,
            ReviewLabel::Reject => ReviewStatus::Rejected,
            ReviewLabel::Flag => ReviewStatus::Flagged,
        }
    }
}

/// An instance's status from the labels of its current reviews (one per reviewer) and the number
/// of reviewers its run asks for: pending until there are enough, then what they all say, or
/// disputed when they differ.
pub fn derive_review_status(labels: &[ReviewLabel], required_reviews: u32) -> ReviewStatus {
    let Some(first) = labels.first() else {
        return ReviewStatus::Pending;
    };
    if labels.iter().any(|label| label != first) {
        return ReviewStatus::Disputed;
    }
    if (labels.len() as u64) < u64::from(required_reviews) {
        return ReviewStatus::Pending;
    }
    first.status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_compare_what_reviews_say() {
        let accept = ReviewLabel::of(&ReviewDecision::Accept, None, 2);
        assert_eq!(accept, ReviewLabel::of(&ReviewDecision::ChangeAnswer { code: 2 }, None, 5));
        assert_eq!(ReviewLabel::of(&ReviewDecision::Accept, Some(" 4 "), 2), ReviewLabel::Answer("4".into()));
        assert_eq!(ReviewLabel::of(&ReviewDecision::Accept, Some("  "), 2), accept);
        assert_eq!(ReviewLabel::of(&ReviewDecision::Reject, Some("4"), 2), ReviewLabel::Reject);
        for label in [accept, ReviewLabel::Reject, ReviewLabel::Flag, ReviewLabel::Answer("answer:x".into())] {
            assert_eq!(ReviewLabel::parse(&label.to_text()), Some(label));
        }
        assert_eq!(ReviewLabel::parse("maybe"), None);
    }

    #[test]
    fn status_needs_enough_reviews_and_agreement() {
        let two = ReviewLabel::Answer("2".into());
        assert_eq!(derive_review_status(&[], 1), ReviewStatus::Pending);
        assert_eq!(derive_review_status(std::slice::from_ref(&two), 1), ReviewStatus::Accepted);
        assert_eq!(derive_review_status(std::slice::from_ref(&two), 2), ReviewStatus::Pending);
        assert_eq!(derive_review_status(&[two.clone(), two.clone()], 2), ReviewStatus::Accepted);
        assert_eq!(derive_review_status(&[ReviewLabel::Flag, ReviewLabel::Flag], 2), ReviewStatus::Flagged);
        assert_eq!(derive_review_status(&[ReviewLabel::Reject], 1), ReviewStatus::Rejected);
        // Disagreement shows before the last reviewer has spoken.
        assert_eq!(derive_review_status(&[two.clone(), ReviewLabel::Answer("3".into())], 3), ReviewStatus::Disputed);
        assert_eq!(derive_review_status(&[two, ReviewLabel::Reject], 1), ReviewStatus::Disputed);
    }
}
