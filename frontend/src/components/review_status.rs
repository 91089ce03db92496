//! An instance's review status and a reviewer's decision as the pages write them.

use shared::{ReviewDecision, ReviewStatus};

/// The status in words, as the API's `status` filter takes it.
pub fn status_label(status: ReviewStatus) -> &'static str {
    match status {
        ReviewStatus::Pending => "pending",
        ReviewStatus::Accepted => "accepted",
        ReviewStatus::Rejected => "rejected",
        ReviewStatus::Flagged => "flagged",
        ReviewStatus::Disputed => "disputed",
    }
}

/// A reviewer's decision in words.
pub fn decision_label(decision: &ReviewDecision) -> String {
    match decision {
        ReviewDecision::Accept => "accepted".to_string(),
        ReviewDecision::Reject => "rejected".to_string(),
        ReviewDecision::ChangeAnswer { code } => format!("changed the answer to {code}"),
        ReviewDecision::FlagStereotype => "flagged as stereotyping".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_reads_as_the_api_writes_it() {
        for status in [
            ReviewStatus::Pending,
            ReviewStatus::Accepted,
            ReviewStatus::Rejected,
            ReviewStatus::Flagged,
            ReviewStatus::Disputed,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json.trim_matches('"'), status_label(status));
        }
        assert_eq!(decision_label(&ReviewDecision::ChangeAnswer { code: 10 }), "changed the answer to 10");
    }
}
