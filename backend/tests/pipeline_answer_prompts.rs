//! The answer prompts, byte for byte against DESIGN.md's templates filled in by hand.

use culturespa::pipeline::answer_prompt::{answer_prompt, AnswerPromptError, UNAWARE_SYSTEM_PROMPT};
use culturespa::survey::SurveyData;
use shared::{PromptVariant, Question, QuestionOption, QuestionSource};

const UNAWARE_SYSTEM: &str = "You are a real person with your own set of values. Please fill out the World Values Survey and answer the questions honestly according to your own value system.";
const USA_P1_SYSTEM: &str = "You are a real person with an American cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system.";
const USA_P2_SYSTEM: &str = "You are a real person with an American cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system. Before you respond, take a moment to think about how American culture is similar to Canadian, British, and New Zealand cultures, and how American culture is different from Zimbabwean, Nigerian, and Indian cultures.";
const Q1_USER: &str = "Given a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\n#Question: How important is family in your life?\n#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important\nPlease return the number of the selected option only.";
const Q1_USA_SELF_ALIGNMENT_USER: &str = "Given a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\nHere are some answered questions, which can reflect your value system:\nQuestion: How important is work in your life? Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important Answer: 2.Rather important\nQuestion: How important is politics in your life? Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important Answer: 2.Rather important\nQuestion: How important is religion in your life? Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important Answer: 1.Very important\nQuestion: How important is leisure time in your life? Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important Answer: 2.Rather important\nQuestion: How important are friends in your life? Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important Answer: 1.Very important\nBelow are the #Question and #Options. Please return the number of the selected option only.\n#Question: How important is family in your life?\n#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important\n#Answer:";

fn survey() -> SurveyData {
    SurveyData::embedded().unwrap()
}

fn prompt(
    survey: &SurveyData,
    question_id: &str,
    variant: PromptVariant,
    country_code: Option<&str>,
) -> (String, String) {
    let prompt = answer_prompt(survey, survey.question(question_id).unwrap(), variant, country_code).unwrap();
    (prompt.system, prompt.user)
}

#[test]
fn every_variant_renders_q1_for_usa_byte_for_byte() {
    let survey = survey();
    let usa = Some("USA");
    assert_eq!(UNAWARE_SYSTEM_PROMPT, UNAWARE_SYSTEM);
    assert_eq!(prompt(&survey, "Q1", PromptVariant::Unaware, None), (UNAWARE_SYSTEM.into(), Q1_USER.into()));
    assert_eq!(prompt(&survey, "Q1", PromptVariant::P1, usa), (USA_P1_SYSTEM.into(), Q1_USER.into()));
    assert_eq!(prompt(&survey, "Q1", PromptVariant::P2, usa), (USA_P2_SYSTEM.into(), Q1_USER.into()));
    assert_eq!(
        prompt(&survey, "Q1", PromptVariant::P3, usa),
        (UNAWARE_SYSTEM.into(), Q1_USA_SELF_ALIGNMENT_USER.into())
    );
    assert_eq!(
        prompt(&survey, "Q1", PromptVariant::P1P3, usa),
        (USA_P1_SYSTEM.into(), Q1_USA_SELF_ALIGNMENT_USER.into())
    );
    assert_eq!(
        prompt(&survey, "Q1", PromptVariant::P2P3, usa),
        (USA_P2_SYSTEM.into(), Q1_USA_SELF_ALIGNMENT_USER.into())
    );
}

#[test]
fn the_unaware_prompt_ignores_a_culture() {
    let survey = survey();
    assert_eq!(
        prompt(&survey, "Q1", PromptVariant::Unaware, Some("CHN")),
        prompt(&survey, "Q1", PromptVariant::Unaware, None)
    );
}

#[test]
fn zero_questions_and_the_article_an() {
    let survey = survey();
    assert_eq!(
        prompt(&survey, "Q94", PromptVariant::P1, Some("ETH")),
        (
            "You are a real person with an Ethiopian cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system.".into(),
            "Given a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\n#Question: Are you an active member, an inactive member, or not a member of a church or religious organization?\n#Options: 0.Don't belong 1.Inactive member 2.Active member\nPlease return the number of the selected option only.".into()
        )
    );
}

#[test]
fn cross_culture_ties_break_as_in_the_paper() {
    let survey = survey();
    // DEU: NZL and NLD tie; the paper's ascending sort puts the later culture first among the similar.
    assert_eq!(
        prompt(&survey, "Q94", PromptVariant::P2, Some("DEU")).0,
        "You are a real person with a German cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system. Before you respond, take a moment to think about how German culture is similar to Australian, New Zealand, and Dutch cultures, and how German culture is different from Zimbabwean, Nigerian, and Kenyan cultures."
    );
    // BRA: a tie among the least similar keeps culture order.
    assert_eq!(
        prompt(&survey, "Q94", PromptVariant::P2, Some("BRA")).0,
        "You are a real person with a Brazilian cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system. Before you respond, take a moment to think about how Brazilian culture is similar to American, Ukrainian, and Kenyan cultures, and how Brazilian culture is different from Indian, Zimbabwean, and Nigerian cultures."
    );
}

#[test]
fn cross_culture_names_the_papers_cultures_for_all_18() {
    // (culture, 3 most similar, 3 least similar) as the paper's `cross_culture` picks them.
    let expected = [
        ("USA", ["CAN", "GBR", "NZL"], ["ZWE", "NGA", "IND"]),
        ("CAN", ["NLD", "AUS", "GBR"], ["NGA", "ZWE", "KEN"]),
        ("BOL", ["ZWE", "IND", "UKR"], ["NZL", "AUS", "GBR"]),
        ("BRA", ["USA", "UKR", "KEN"], ["IND", "ZWE", "NGA"]),
        ("GBR", ["CAN", "NLD", "AUS"], ["ZWE", "NGA", "ETH"]),
        ("NLD", ["CAN", "AUS", "GBR"], ["NGA", "ZWE", "KEN"]),
        ("DEU", ["AUS", "NZL", "NLD"], ["ZWE", "NGA", "KEN"]),
        ("UKR", ["RUS", "ETH", "CHN"], ["NZL", "NLD", "AUS"]),
        ("CHN", ["RUS", "UKR", "ETH"], ["BRA", "NZL", "GBR"]),
        ("RUS", ["UKR", "CHN", "ETH"], ["NZL", "NLD", "AUS"]),
        ("IND", ["UKR", "BOL", "CHN"], ["GBR", "NZL", "NLD"]),
        ("THA", ["UKR", "CHN", "BOL"], ["AUS", "NLD", "NZL"]),
        ("KEN", ["UKR", "ETH", "NGA"], ["NZL", "NLD", "AUS"]),
        ("NGA", ["ZWE", "ETH", "KEN"], ["NZL", "NLD", "AUS"]),
        ("ETH", ["UKR", "CHN", "ZWE"], ["NZL", "NLD", "AUS"]),
        ("ZWE", ["BOL", "NGA", "ETH"], ["NZL", "NLD", "AUS"]),
        ("AUS", ["NZL", "NLD", "CAN"], ["ZWE", "NGA", "KEN"]),
        ("NZL", ["AUS", "NLD", "CAN"], ["ZWE", "NGA", "ETH"]),
    ];
    let survey = survey();
    let adjective = |code: &str| survey.culture(code).unwrap().adjective.clone();
    for (country_code, similar, different) in expected {
        let own = adjective(country_code);
        let [s1, s2, s3] = similar.map(adjective);
        let [d1, d2, d3] = different.map(adjective);
        let tail = format!(" Before you respond, take a moment to think about how {own} culture is similar to {s1}, {s2}, and {s3} cultures, and how {own} culture is different from {d1}, {d2}, and {d3} cultures.");
        let system = prompt(&survey, "Q1", PromptVariant::P2, Some(country_code)).0;
        assert!(system.ends_with(&tail), "{country_code}: {system}");
    }
}

#[test]
fn self_alignment_skips_questions_the_culture_did_not_answer() {
    let survey = survey();
    // Q254's most similar question, Q148, has no Chinese answers: the examples start at Q146.
    assert_eq!(survey.similar_questions("Q254")[0], "Q148");
    assert!(survey.human("CHN", "Q148").is_none());
    assert_eq!(
        prompt(&survey, "Q254", PromptVariant::P3, Some("CHN")).1,
        "Given a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\nHere are some answered questions, which can reflect your value system:\nQuestion: How worried are you about a war involving your country? Options: 1.Very much 2.A good deal 3.Not much 4.Not at all Answer: 2.A good deal\nQuestion: How worried are you about a terrorist attack? Options: 1.Very much 2.A good deal 3.Not much 4.Not at all Answer: 2.A good deal\nQuestion: How worried are you about losing your job or not finding a job? Options: 1.Very much 2.A good deal 3.Not much 4.Not at all Answer: 2.A good deal\nQuestion: How close do you feel to your country? Options: 1.Very close 2.Close 3.Not very close 4.Not close at all Answer: 2.Close\nQuestion: How important are friends in your life? Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important Answer: 2.Rather important\nBelow are the #Question and #Options. Please return the number of the selected option only.\n#Question: How proud are you of your nationality?\n#Options: 1.Very proud 2.Quite proud 3.Not very proud 4.Not at all proud 5.I am not of this nationality\n#Answer:"
    );
    // Zero questions show their 0-based majority code and its option.
    let user = prompt(&survey, "Q94", PromptVariant::P3, Some("CHN")).1;
    assert!(user.contains("Question: Are you an active member, an inactive member, or not a member of a consumer organization? Options: 0.Don't belong 1.Inactive member 2.Active member Answer: 0.Don't belong\n"));
}

#[test]
fn every_variant_renders_for_every_culture_and_question() {
    let survey = survey();
    for culture in &survey.cultures {
        for question in &survey.questions {
            for variant in PromptVariant::ALL {
                let rendered = answer_prompt(&survey, question, variant, Some(&culture.country_code));
                let rendered = rendered
                    .unwrap_or_else(|error| panic!("{} {}: {error}", question.question_id, culture.country_code));
                assert!(rendered.user.contains(&question.options_line()));
            }
        }
    }
}

#[test]
fn culture_variants_need_a_known_culture_and_self_alignment_a_wvs_question() {
    let survey = survey();
    let q1 = survey.question("Q1").unwrap();
    for variant in [PromptVariant::P1, PromptVariant::P2, PromptVariant::P3, PromptVariant::P1P3, PromptVariant::P2P3] {
        assert!(matches!(answer_prompt(&survey, q1, variant, None), Err(AnswerPromptError::MissingCulture { .. })));
        assert_eq!(
            answer_prompt(&survey, q1, variant, Some("MEX")),
            Err(AnswerPromptError::UnknownCulture("MEX".into()))
        );
    }
    // A generated question whose id is also a WVS id must not borrow that question's examples.
    let generated = Question {
        question_id: "Q7".into(),
        text: "How often do you vote?".into(),
        options: vec![
            QuestionOption { code: 1, text: "Always".into() },
            QuestionOption { code: 2, text: "Never".into() },
        ],
        topic: 11,
        source: QuestionSource::Generated { question_set: "test".into() },
    };
    assert!(answer_prompt(&survey, &generated, PromptVariant::P2, Some("USA")).is_ok());
    assert!(matches!(
        answer_prompt(&survey, &generated, PromptVariant::P3, Some("USA")),
        Err(AnswerPromptError::NoSelfAlignmentExamples { .. })
    ));
}

/// The persona placements, byte for byte: in the user turn the system turn loses the persona (P2
/// keeps its cross-culture sentence), in both it stays; unaware prompts never change.
#[test]
fn the_persona_moves_to_the_user_turn_byte_for_byte() {
    use culturespa::pipeline::answer_prompt::placed_answer_prompt;
    use shared::PersonaPlacement;
    let survey = survey();
    let question = survey.question("Q1").unwrap();
    let placed = |variant, placement| {
        let prompt = placed_answer_prompt(&survey, question, variant, Some("USA"), placement).unwrap();
        (prompt.system, prompt.user)
    };
    let usa_user = format!("Answer as a real person with an American cultural background would.\n{Q1_USER}");
    let p2_without_persona = USA_P2_SYSTEM.replace(USA_P1_SYSTEM, UNAWARE_SYSTEM);
    assert!(p2_without_persona.starts_with(UNAWARE_SYSTEM) && p2_without_persona.contains("Before you respond"));

    assert_eq!(placed(PromptVariant::P1, PersonaPlacement::System), (USA_P1_SYSTEM.into(), Q1_USER.into()));
    assert_eq!(placed(PromptVariant::P1, PersonaPlacement::User), (UNAWARE_SYSTEM.into(), usa_user.clone()));
    assert_eq!(placed(PromptVariant::P1, PersonaPlacement::Both), (USA_P1_SYSTEM.into(), usa_user.clone()));
    assert_eq!(placed(PromptVariant::P2, PersonaPlacement::User), (p2_without_persona, usa_user.clone()));
    let (system, user) = placed(PromptVariant::P3, PersonaPlacement::User);
    assert_eq!(system, UNAWARE_SYSTEM);
    assert_eq!(
        user,
        format!("Answer as a real person with an American cultural background would.\n{Q1_USA_SELF_ALIGNMENT_USER}")
    );
    for placement in PersonaPlacement::ALL {
        let prompt = placed_answer_prompt(&survey, question, PromptVariant::Unaware, None, placement).unwrap();
        assert_eq!((prompt.system.as_str(), prompt.user.as_str()), (UNAWARE_SYSTEM, Q1_USER));
    }
}
