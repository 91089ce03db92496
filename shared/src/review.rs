//! The annotator's side of the API: instances to judge, reviews, agreement between reviewers.

use serde::{Deserialize, Serialize};

use crate::{Answer, HumanDistribution, Instance, Question, Review, ReviewDecision};

/// An instance in a listing, with what a person needs to read it at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceItem {
    #[serde(flatten)]
    pub instance: Instance,
    /// `wvs` or the name of a generated question set.
    pub question_set: String,
    pub question_text: String,
    /// The option texts of the culture-unaware and the culture-aware answer.
    pub unaware_option: Option<String>,
    pub aware_option: Option<String>,
    /// Current reviews (one per reviewer), and how many the run asks for.
    pub reviews: u32,
    pub required_reviews: u32,
}

/// `GET /api/instances/{id}`: everything needed to judge an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceDetail {
    pub item: InstanceItem,
    pub question: Question,
    pub unaware: Option<Answer>,
    /// The culture-aware answer the instance keeps.
    pub aware: Option<Answer>,
    /// The other cultures' culture-aware answers to the same question in the same run.
    pub other_cultures: Vec<Answer>,
    /// The culture's human answers (WVS questions only).
    pub human: Option<HumanDistribution>,
    /// Current reviews, oldest first.
    pub reviews: Vec<Review>,
    /// The SFT record's prompts: the P1 system prompt and the answer user prompt.
    pub system_prompt: String,
    pub user_prompt: String,
}

/// `POST /api/instances/{id}/reviews`, e.g. `{"decision": "change_answer", "code": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewReview {
    #[serde(flatten)]
    pub decision: ReviewDecision,
    #[serde(default)]
    pub note: Option<String>,
    /// An edited answer that replaces the model's output in the SFT record.
    #[serde(default)]
    pub edited_output: Option<String>,
    /// The reviewer's name in open mode; ignored when logged in.
    #[serde(default)]
    pub reviewer: Option<String>,
}

/// `GET`/`PUT /api/runs/{id}/review-settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewSettings {
    /// How many reviewers must review an instance before it counts as decided.
    pub reviewers_per_instance: u32,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings { reviewers_per_instance: 1 }
    }
}

/// How well two reviewers agree on the instances both reviewed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairAgreement {
    pub reviewer_a: String,
    pub reviewer_b: String,
    pub instances: u64,
    pub exact_match_rate: Option<f64>,
    pub cohen_kappa: Option<f64>,
}

/// `GET /api/runs/{id}/agreement`. Reviews compare by what they say the instance should be: the
/// same answer (accept, change answer, edit), reject, or flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agreement {
    pub run_id: i64,
    pub reviewers: Vec<String>,
    /// Instances with at least two current reviews: the ones agreement is measured on.
    pub instances: u64,
    /// Share of those instances on which every reviewer said the same.
    pub exact_match_rate: Option<f64>,
    /// Cohen's kappa, when exactly two reviewers reviewed the run.
    pub cohen_kappa: Option<f64>,
    /// Fleiss' kappa over the instances with at least two reviews.
    pub fleiss_kappa: Option<f64>,
    /// Every pair of reviewers with instances in common.
    pub pairs: Vec<PairAgreement>,
}

/// One review as the raw export writes it (every review of a run, current or superseded), one
/// flat record so that it is a CSV row as well as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewRecord {
    pub review_id: i64,
    pub instance_id: i64,
    pub question_id: String,
    pub country_code: String,
    pub reviewer: String,
    /// `accept`, `reject`, `change_answer` or `flag_stereotype`.
    pub decision: String,
    /// The option code a `change_answer` review chose.
    pub corrected_code: Option<u32>,
    /// The answer the reviewer wrote instead of the model's.
    pub edited_output: Option<String>,
    pub note: Option<String>,
    /// RFC 3339 timestamp.
    pub created_at: String,
    /// Whether it is the reviewer's current review of the instance (a newer one supersedes it).
    pub is_current: bool,
    /// The reviewer's earlier review of the instance that this one superseded.
    pub supersedes: Option<i64>,
}
