//! The question page: the culture-unaware answer, each culture's culture-aware answer (or its
//! distribution) and the culture's human answers, as SVG bars per option.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::api::{Page, QuestionDetail};
use shared::{Answer, Culture, HumanDistribution, PromptVariant, QuestionOption};

use crate::api;
use crate::app::loaded;

/// Width of one option's slot in the bar charts, in SVG units.
const SLOT_WIDTH: f64 = 30.0;
const BAR_WIDTH: f64 = 11.0;
const CHART_HEIGHT: f64 = 56.0;
/// Room under the bars for the option codes.
const LABEL_HEIGHT: f64 = 14.0;

#[component]
pub fn QuestionPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let question_id = move || params.read().get("id").unwrap_or_default();
    let run = move || query.read().get("run").unwrap_or_default();
    let detail = LocalResource::new(move || {
        let path = format!("/questions/{}", api::encode(&question_id()));
        async move { api::get::<QuestionDetail>(&path).await }
    });
    let answers = LocalResource::new(move || {
        let run_filter = api::query_string(&[("run", run())]);
        let path = format!("/questions/{}/answers?{run_filter}", api::encode(&question_id()));
        async move { api::get::<Page<Answer>>(&path).await }
    });
    let cultures = LocalResource::new(|| api::get::<Page<Culture>>("/cultures"));
    view! {
        {loaded(detail, move |detail| {
            let question = detail.question.clone();
            let human = detail.human.clone();
            view! {
                <h1 class="question-title">
                    <span class="qid">{question.question_id.clone()}</span>" "{question.text.clone()}
                </h1>
                <p class="options">{question.options_line()}</p>
                <Legend />
                {loaded(answers, move |answers| {
                    let options = question.options.clone();
                    let human = human.clone();
                    loaded(cultures, move |cultures| {
                        view! {
                            <AnswerTable
                                options=options.clone()
                                answers=answers.items.clone()
                                human=human.clone()
                                cultures=cultures.items
                            />
                        }
                    })
                })}
            }
        })}
    }
}

#[component]
fn Legend() -> impl IntoView {
    view! {
        <p class="legend">
            <span class="swatch human"></span>" human share (WVS) "
            <span class="swatch model"></span>" model (distribution, or ▲ its answer) "
            <span class="swatch unaware"></span>" culture-unaware answer"
        </p>
    }
}

#[component]
fn AnswerTable(
    options: Vec<QuestionOption>,
    answers: Vec<Answer>,
    human: Vec<HumanDistribution>,
    cultures: Vec<Culture>,
) -> impl IntoView {
    let unaware = answers
        .iter()
        .find(|answer| answer.country_code.is_none() && answer.variant == PromptVariant::Unaware)
        .cloned();
    let unaware_code = unaware.as_ref().and_then(|answer| answer.parsed_code);
    let unaware_line = match &unaware {
        Some(answer) => format!("{} (reply: {})", option_label(&options, answer.parsed_code), reply_text(answer)),
        None => "no answer in this run".to_string(),
    };
    let rows = cultures
        .into_iter()
        .map(|culture| {
            let aware = answers
                .iter()
                .find(|answer| {
                    answer.country_code.as_deref() == Some(culture.country_code.as_str())
                        && answer.variant == PromptVariant::P1
                })
                .cloned();
            let human = human.iter().find(|human| human.country_code == culture.country_code).cloned();
            let changed =
                aware.as_ref().and_then(|answer| answer.parsed_code).is_some_and(|code| Some(code) != unaware_code);
            let answer_text =
                aware.as_ref().map_or_else(|| "—".to_string(), |answer| option_label(&options, answer.parsed_code));
            view! {
                <tr class="culture-answer" class:changed=changed data-culture=culture.country_code.clone()>
                    <td><code>{culture.country_code.clone()}</code>" "{culture.name.clone()}</td>
                    <td>
                        {answer_text}
                        {changed.then(|| view! { <span class="badge">"instance"</span> })}
                    </td>
                    <td>
                        <OptionBars
                            options=options.clone()
                            human=human
                            model_code=aware.as_ref().and_then(|answer| answer.parsed_code)
                            model_distribution=aware.and_then(|answer| answer.distribution)
                            unaware_code=unaware_code
                        />
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="unaware-answer"><strong>"Culture-unaware answer: "</strong>{unaware_line}</p>
        <table class="question-answers" data-testid="question-answers">
            <thead><tr><th>"Culture"</th><th>"Culture-aware answer (P1)"</th><th>"Per option"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// `2. Rather important`, or the bare code when it is not an option.
pub fn option_label(options: &[QuestionOption], code: Option<u32>) -> String {
    match code {
        Some(code) => match options.iter().find(|option| option.code == code) {
            Some(option) => format!("{code}. {}", option.text),
            None => code.to_string(),
        },
        None => "no option".to_string(),
    }
}

/// The model's reply, shortened for a table cell.
pub fn reply_text(answer: &Answer) -> String {
    const MAX_REPLY_CHARS: usize = 80;
    let reply = answer.raw_reply.clone().unwrap_or_else(|| "—".to_string());
    if reply.chars().count() > MAX_REPLY_CHARS {
        format!("{}…", reply.chars().take(MAX_REPLY_CHARS).collect::<String>())
    } else {
        reply
    }
}

/// One slot per option: the human share, and the model's probability (or a marker on its answer);
/// the culture-unaware answer's code is underlined.
#[component]
pub fn OptionBars(
    options: Vec<QuestionOption>,
    human: Option<HumanDistribution>,
    model_code: Option<u32>,
    model_distribution: Option<Vec<f64>>,
    unaware_code: Option<u32>,
) -> impl IntoView {
    let width = SLOT_WIDTH * options.len() as f64;
    let height = CHART_HEIGHT + LABEL_HEIGHT;
    let slots = options
        .iter()
        .enumerate()
        .map(|(index, option)| {
            let x = SLOT_WIDTH * index as f64;
            let human_share = human
                .as_ref()
                .and_then(|human| human.shares.iter().find(|share| share.code == option.code))
                .map_or(0.0, |share| share.share);
            let model_share = model_distribution.as_ref().and_then(|distribution| distribution.get(index).copied());
            let human_height = CHART_HEIGHT * human_share;
            let chosen = model_code == Some(option.code);
            let model_mark = match model_share {
                Some(share) => {
                    let bar_height = CHART_HEIGHT * share;
                    view! {
                        <rect class="model" x=x + 3.0 + BAR_WIDTH y=CHART_HEIGHT - bar_height width=BAR_WIDTH height=bar_height>
                            <title>{format!("model {:.0}%", share * 100.0)}</title>
                        </rect>
                    }
                    .into_any()
                }
                None if chosen => {
                    let tip_x = x + 3.0 + 1.5 * BAR_WIDTH;
                    let points = format!(
                        "{},{} {},{} {},{}",
                        tip_x - 5.0,
                        CHART_HEIGHT,
                        tip_x + 5.0,
                        CHART_HEIGHT,
                        tip_x,
                        CHART_HEIGHT - 9.0
                    );
                    view! { <polygon class="model" points=points><title>"the model's answer"</title></polygon> }.into_any()
                }
                None => ().into_any(),
            };
            let label_class = if unaware_code == Some(option.code) { "code unaware" } else { "code" };
            view! {
                <g>
                    <title>{format!("{}. {}: {:.0}% of people", option.code, option.text, human_share * 100.0)}</title>
                    <rect class="slot" x=x y=0 width=SLOT_WIDTH height=CHART_HEIGHT></rect>
                    <rect class="human" x=x + 3.0 y=CHART_HEIGHT - human_height width=BAR_WIDTH height=human_height></rect>
                    {model_mark}
                    <text class=label_class x=x + SLOT_WIDTH / 2.0 y=height - 2.0 text-anchor="middle">{option.code}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="option-bars" viewBox=format!("0 0 {width} {height}") width=width height=height role="img">
            {slots}
        </svg>
    }
}
