//! Curating instances into training data: what reviews say and the status that follows, how well
//! reviewers agree, and the SFT export of a run's instances.

pub mod agreement;
pub mod export;
pub mod review_export;
mod status;

pub use agreement::{agreement, cohen_kappa, fleiss_kappa};
pub use export::{
    dataset_info, export_run, tar_archive, write_export, ExportError, ExportFile, ExportFormat, ExportMode,
    ExportOptions,
};
pub use status::{derive_review_status, ReviewLabel};
