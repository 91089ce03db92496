//! The World Values Survey data the method needs: cultures, topics, the 259 kept questions, the
//! human answer distributions, the culture similarity table and the self-alignment examples.

mod catalog;
mod data;

pub use catalog::{topic_of, CULTURES, TOPICS};
pub use data::{DataError, SurveyData, WvsRecord, DATA_FILES};
