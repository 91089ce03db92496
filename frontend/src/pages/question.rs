//! The question page: the culture-unaware answer, each culture's culture-aware answer (or its
//! distribution) and the culture's human answers, as SVG bars per option.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::api::{Page, QuestionDetail};
use shared::{Answer, Culture, HumanDistribution, PromptVariant, QuestionOption};

use crate::api;
use crate::components::loaded;
use crate::components::options::{option_label, reply_text, OptionBars};
use crate::components::{encode_uri_component, query_string};

#[component]
pub fn QuestionPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let question_id = move || params.read().get("id").unwrap_or_default();
    let run = move || query.read().get("run").unwrap_or_default();
    let detail = LocalResource::new(move || {
        let path = format!("/questions/{}", encode_uri_component(&question_id()));
        async move { api::get::<QuestionDetail>(&path).await }
    });
    let answers = LocalResource::new(move || {
        let run_filter = query_string(&[("run", run())]);
        let path = format!("/questions/{}/answers?{run_filter}", encode_uri_component(&question_id()));
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
