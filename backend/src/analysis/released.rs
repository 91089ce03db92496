//! The paper's released answer files (`wvs_result_{setting}_{run}.json`): what each file name
//! means, reading and validating them, and the copies of the Llama-3-8B release embedded in the
//! binary (the one place they are embedded).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use shared::analysis::SkippedFile;
use shared::PromptVariant;

use super::AnalysisError;
use crate::survey::{SurveyData, CULTURES};

/// Where the embedded release lives in the repository; also the `source` of the run it imports as.
pub const EMBEDDED_SOURCE: &str = "data/released/Meta-Llama-3-8B-Instruct";

const FILE_PREFIX: &str = "wvs_result_";
const FILE_SUFFIX: &str = ".json";

macro_rules! released_file {
    ($name:literal) => {
        ($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/released/Meta-Llama-3-8B-Instruct/", $name)))
    };
}

/// The 24 released files of Meta-Llama-3-8B-Instruct (run 0), name and text.
const EMBEDDED_FILES: [(&str, &str); 24] = [
    released_file!("wvs_result_culture_unaware_0.json"),
    released_file!("wvs_result_culture_aware_USA_0.json"),
    released_file!("wvs_result_culture_aware_CAN_0.json"),
    released_file!("wvs_result_culture_aware_BOL_0.json"),
    released_file!("wvs_result_culture_aware_BRA_0.json"),
    released_file!("wvs_result_culture_aware_GBR_0.json"),
    released_file!("wvs_result_culture_aware_NLD_0.json"),
    released_file!("wvs_result_culture_aware_DEU_0.json"),
    released_file!("wvs_result_culture_aware_UKR_0.json"),
    released_file!("wvs_result_culture_aware_CHN_0.json"),
    released_file!("wvs_result_culture_aware_RUS_0.json"),
    released_file!("wvs_result_culture_aware_IND_0.json"),
    released_file!("wvs_result_culture_aware_THA_0.json"),
    released_file!("wvs_result_culture_aware_KEN_0.json"),
    released_file!("wvs_result_culture_aware_NGA_0.json"),
    released_file!("wvs_result_culture_aware_ETH_0.json"),
    released_file!("wvs_result_culture_aware_ZWE_0.json"),
    released_file!("wvs_result_culture_aware_AUS_0.json"),
    released_file!("wvs_result_culture_aware_NZL_0.json"),
    released_file!("wvs_result_culture_aware_self_alignment_USA_0.json"),
    released_file!("wvs_result_cross_culture_thinking_self_alignment_USA_0.json"),
    released_file!("wvs_result_cross_culture_thinking_self_alignment_CAN_0.json"),
    released_file!("wvs_result_self_alignment_0.json"),
    released_file!("wvs_result_self_alignment_American_0.json"),
];

/// One record of a released answer file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedAnswer {
    #[serde(rename = "Q_id")]
    pub question_id: String,
    pub question: String,
    pub option_lst: Vec<String>,
    /// The model's raw reply.
    pub answer: String,
}

/// Whom a file's answers are scored against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The culture named in the prompt.
    Culture(String),
    /// Every culture: no culture in the prompt, or none recorded.
    AllCultures,
}

/// What a file name says: the setting (the name without the culture and run), its prompt
/// variant, whom it is scored against, and the run (seed 42 − run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKind {
    pub setting: String,
    pub variant: PromptVariant,
    pub target: Target,
    pub run: u32,
    /// Set when the file leaves something unrecorded that the scoring assumes.
    pub note: Option<String>,
}

const UNRECORDED_CULTURE_NOTE: &str =
    "the culture is not recorded in the released file: scored against all 18 cultures, like culture_unaware";

fn country_code(text: &str) -> Option<&'static str> {
    CULTURES.iter().map(|spec| spec.country_code).find(|code| *code == text)
}

/// Reads a released file name; `None` for a name that is not one of the paper's settings.
pub fn classify_file_name(file_name: &str) -> Option<FileKind> {
    let body = file_name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let (setting_part, run_text) = body.rsplit_once('_')?;
    if run_text.is_empty() || !run_text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let run: u32 = run_text.parse().ok()?;
    let kind = |setting: &str, variant, target, note: Option<&str>| FileKind {
        setting: setting.to_string(),
        variant,
        target,
        run,
        note: note.map(str::to_string),
    };
    let own = |code: &str| Target::Culture(code.to_string());
    // Longest prefixes first: "culture_aware_self_alignment_" also starts with "culture_aware_".
    if setting_part == "culture_unaware" {
        return Some(kind("culture_unaware", PromptVariant::Unaware, Target::AllCultures, None));
    }
    if let Some(code) = setting_part.strip_prefix("culture_aware_self_alignment_").and_then(country_code) {
        return Some(kind("culture_aware_self_alignment", PromptVariant::P1P3, own(code), None));
    }
    if let Some(code) = setting_part.strip_prefix("cross_culture_thinking_self_alignment_").and_then(country_code) {
        return Some(kind("cross_culture_thinking_self_alignment", PromptVariant::P2P3, own(code), None));
    }
    if let Some(code) = setting_part.strip_prefix("culture_aware_").and_then(country_code) {
        return Some(kind("culture_aware", PromptVariant::P1, own(code), None));
    }
    if let Some(code) = setting_part.strip_prefix("self_alignment_").and_then(country_code) {
        return Some(kind("self_alignment", PromptVariant::P3, own(code), None));
    }
    // "self_alignment_American" names no country code; the paper's two P3 files are identical.
    if setting_part == "self_alignment"
        || setting_part.strip_prefix("self_alignment_").is_some_and(|label| !label.is_empty())
    {
        return Some(kind(setting_part, PromptVariant::P3, Target::AllCultures, Some(UNRECORDED_CULTURE_NOTE)));
    }
    None
}

/// A read and validated released file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasedFile {
    pub file_name: String,
    pub kind: FileKind,
    pub answers: Vec<ReleasedAnswer>,
}

/// The released files of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasedSet {
    /// The folder as given (normalised), or [`EMBEDDED_SOURCE`] for the embedded release or an
    /// identical copy of it.
    pub source: String,
    /// Sorted by file name.
    pub files: Vec<ReleasedFile>,
    pub skipped_files: Vec<SkippedFile>,
}

/// The released files in `dir`, or the embedded Llama-3-8B release when `dir` is `None`.
pub fn load_released(dir: Option<&Path>, survey: &SurveyData) -> Result<ReleasedSet, AnalysisError> {
    match dir {
        Some(dir) => ReleasedSet::from_dir(dir, survey),
        None => ReleasedSet::embedded(survey),
    }
}

impl ReleasedSet {
    /// The embedded copies of `data/released/Meta-Llama-3-8B-Instruct`.
    pub fn embedded(survey: &SurveyData) -> Result<Self, AnalysisError> {
        let dir = PathBuf::from(format!("<embedded>/{EMBEDDED_SOURCE}"));
        let mut files = Vec::with_capacity(EMBEDDED_FILES.len());
        for (file_name, text) in EMBEDDED_FILES {
            let kind = classify_file_name(file_name).ok_or_else(|| AnalysisError::Invalid {
                file: dir.join(file_name),
                message: "not a released answer file name".to_string(),
            })?;
            files.push(read_file(&dir.join(file_name), file_name, kind, text, survey)?);
        }
        files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        Ok(ReleasedSet { source: EMBEDDED_SOURCE.to_string(), files, skipped_files: Vec::new() })
    }

    /// Reads every file of `dir` whose name is a released setting; other files are listed as skipped.
    pub fn from_dir(dir: &Path, survey: &SurveyData) -> Result<Self, AnalysisError> {
        let read_error = |error| AnalysisError::Read { file: dir.to_path_buf(), error };
        let mut file_names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            if entry.file_type().map_err(read_error)?.is_file() {
                file_names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        file_names.sort();
        let mut files = Vec::new();
        let mut skipped_files = Vec::new();
        let mut texts = Vec::new();
        for file_name in file_names {
            let Some(kind) = classify_file_name(&file_name) else {
                let reason = "not a released answer file (wvs_result_{setting}_{run}.json of a known setting)";
                skipped_files.push(SkippedFile { file_name, reason: reason.to_string() });
                continue;
            };
            let path = dir.join(&file_name);
            let text =
                std::fs::read_to_string(&path).map_err(|error| AnalysisError::Read { file: path.clone(), error })?;
            files.push(read_file(&path, &file_name, kind, &text, survey)?);
            texts.push((file_name, text));
        }
        // A copy of the embedded release is that release wherever it lies, so it imports once.
        let source = if is_embedded_release(&texts) { EMBEDDED_SOURCE.to_string() } else { normalised_source(dir) };
        Ok(ReleasedSet { source, files, skipped_files })
    }
}

/// Whether these (file name, text) pairs are exactly the embedded release's files.
fn is_embedded_release(texts: &[(String, String)]) -> bool {
    texts.len() == EMBEDDED_FILES.len()
        && EMBEDDED_FILES.iter().all(|(embedded_name, embedded_text)| {
            texts.iter().any(|(file_name, text)| file_name == embedded_name && text == embedded_text)
        })
}

/// The folder as the user named it, without `./` parts or a trailing separator, so that
/// `./data/released/X/` and `data/released/X` are the same source.
fn normalised_source(dir: &Path) -> String {
    let normalised: PathBuf = dir.components().filter(|part| !matches!(part, Component::CurDir)).collect();
    normalised.display().to_string()
}

fn read_file(
    path: &Path,
    file_name: &str,
    kind: FileKind,
    text: &str,
    survey: &SurveyData,
) -> Result<ReleasedFile, AnalysisError> {
    let answers: Vec<ReleasedAnswer> = serde_json::from_str(text).map_err(|error| AnalysisError::Parse {
        file: path.to_path_buf(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })?;
    let invalid = |message: String| AnalysisError::Invalid { file: path.to_path_buf(), message };
    let mut seen = HashSet::with_capacity(answers.len());
    for (position, answer) in answers.iter().enumerate() {
        let at = format!("[{position}] ({})", answer.question_id);
        let question =
            survey.question(&answer.question_id).ok_or_else(|| invalid(format!("{at}: not a kept WVS question")))?;
        if !seen.insert(answer.question_id.as_str()) {
            return Err(invalid(format!("{at}: the question is answered twice")));
        }
        // n in the metric is the option count: a file with other options answered other questions.
        if answer.option_lst.len() != question.options.len() {
            return Err(invalid(format!(
                "{at}.option_lst: {} options, the WVS question has {}",
                answer.option_lst.len(),
                question.options.len()
            )));
        }
    }
    Ok(ReleasedFile { file_name: file_name.to_string(), kind, answers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_the_setting_the_culture_and_the_run() {
        let kind = classify_file_name("wvs_result_culture_aware_USA_0.json").unwrap();
        assert_eq!((kind.setting.as_str(), kind.variant, kind.run), ("culture_aware", PromptVariant::P1, 0));
        assert_eq!(kind.target, Target::Culture("USA".into()));
        let kind = classify_file_name("wvs_result_culture_aware_self_alignment_USA_0.json").unwrap();
        assert_eq!((kind.setting.as_str(), kind.variant), ("culture_aware_self_alignment", PromptVariant::P1P3));
        let kind = classify_file_name("wvs_result_cross_culture_thinking_self_alignment_CAN_2.json").unwrap();
        assert_eq!((kind.variant, kind.target, kind.run), (PromptVariant::P2P3, Target::Culture("CAN".into()), 2));
        let kind = classify_file_name("wvs_result_culture_unaware_0.json").unwrap();
        assert_eq!((kind.variant, kind.target, kind.note), (PromptVariant::Unaware, Target::AllCultures, None));
        for name in ["wvs_result_self_alignment_0.json", "wvs_result_self_alignment_American_0.json"] {
            let kind = classify_file_name(name).unwrap();
            assert_eq!((kind.variant, kind.target.clone()), (PromptVariant::P3, Target::AllCultures), "{name}");
            assert!(kind.note.is_some());
        }
        assert_eq!(
            classify_file_name("wvs_result_self_alignment_American_0.json").unwrap().setting,
            "self_alignment_American"
        );
        let kind = classify_file_name("wvs_result_self_alignment_KEN_0.json").unwrap();
        assert_eq!((kind.setting.as_str(), kind.target), ("self_alignment", Target::Culture("KEN".into())));
        for name in [
            "README.md",
            "wvs_result_culture_aware_MEX_0.json",
            "wvs_result_culture_aware_USA.json",
            "wvs_result_culture_unaware_x.json",
            "wvs_result_something_else_0.json",
            "wvs_result_culture_unaware_0.json.bak",
        ] {
            assert_eq!(classify_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn sources_are_normalised() {
        assert_eq!(normalised_source(Path::new("./data/released/Meta-Llama-3-8B-Instruct/")), EMBEDDED_SOURCE);
        assert_eq!(normalised_source(Path::new("/tmp/x")), "/tmp/x");
    }
}
