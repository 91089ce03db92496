//! One instance with everything needed to judge it: the question, the answers, the human shares,
//! earlier reviews.

use leptos::prelude::*;
use shared::review::InstanceDetail;
use shared::{Answer, Culture, Topic};

use crate::components::options::{option_label, reply_text, OptionBars};
use crate::components::review_status::{decision_label, status_label};
use crate::components::url::encode_uri_component;

#[component]
pub fn InstanceView(
    detail: InstanceDetail,
    position: Option<String>,
    cultures: Vec<Culture>,
    topics: Vec<Topic>,
    on_code: Callback<u32>,
) -> impl IntoView {
    let instance = detail.item.instance.clone();
    let options = detail.question.options.clone();
    let culture_name = cultures
        .iter()
        .find(|culture| culture.country_code == instance.country_code)
        .map_or_else(|| instance.country_code.clone(), |culture| culture.name.clone());
    let topic_name = topics.iter().find(|topic| topic.index == instance.topic).map(|topic| topic.name.clone());
    let question_href = format!("/questions/{}?run={}", encode_uri_component(&instance.question_id), instance.run_id);
    let answer_line = |answer: &Option<Answer>| match answer {
        Some(answer) => format!("{} — reply: {}", option_label(&options, answer.parsed_code), reply_text(answer)),
        None => "—".to_string(),
    };
    let unaware_line = answer_line(&detail.unaware);
    let aware_line = answer_line(&detail.aware);
    let option_rows = options
        .iter()
        .map(|option| {
            let code = option.code;
            let is_aware = code == instance.aware_code;
            let is_unaware = code == instance.unaware_code;
            view! {
                <li>
                    <button class="option" class:aware=is_aware class:unaware=is_unaware on:click=move |_| on_code.run(code)>
                        <kbd>{code}</kbd>" "{option.text.clone()}
                        {is_unaware.then(|| view! { <span class="badge unaware">"unaware"</span> })}
                        {is_aware.then(|| view! { <span class="badge aware">"aware"</span> })}
                    </button>
                </li>
            }
        })
        .collect_view();
    let others = detail
        .other_cultures
        .iter()
        .map(|answer| {
            let code = answer.country_code.clone().unwrap_or_default();
            let same = answer.parsed_code == Some(instance.aware_code);
            let label = answer.parsed_code.map_or_else(|| "–".to_string(), |code| code.to_string());
            view! { <li class:same=same title=option_label(&options, answer.parsed_code)><code>{code}</code>" "{label}</li> }
        })
        .collect_view();
    let reviews = detail
        .reviews
        .iter()
        .map(|review| {
            let edited = review.edited_output.clone().map(|output| format!(" (edited: {output})")).unwrap_or_default();
            let note = review.note.clone().map(|note| format!(" — {note}")).unwrap_or_default();
            view! { <li><strong>{review.reviewer.clone()}</strong>": "{decision_label(&review.decision)}{edited}{note}</li> }
        })
        .collect_view();
    let status = status_label(instance.review_status);
    view! {
        <article class="review-instance" data-testid="review-instance" data-instance-id=instance.instance_id>
            <header>
                <a class="qid" href=question_href>{instance.question_id.clone()}</a>
                " · "<strong>{culture_name}</strong>" ("{instance.country_code.clone()}")"
                {topic_name.map(|name| view! { " · "{name} })}
                " · #"{instance.instance_id}
                {position.map(|position| view! { <span class="position">" · "{position}</span> })}
                " · "<span class=format!("status {status}")>{status}</span>
                {format!(" · {}/{} reviews", detail.item.reviews, detail.item.required_reviews)}
            </header>
            <h2 class="question-text">{detail.question.text.clone()}</h2>
            <ol class="review-options">{option_rows}</ol>
            <div class="answers">
                <p><strong>"Culture-unaware: "</strong>{unaware_line}</p>
                <p><strong>"Culture-aware (P1): "</strong>{aware_line}</p>
            </div>
            <OptionBars
                options=options.clone()
                human=detail.human.clone()
                model_code=Some(instance.aware_code)
                model_distribution=detail.aware.as_ref().and_then(|answer| answer.distribution.clone())
                unaware_code=Some(instance.unaware_code)
            />
            {detail.human.is_none().then(|| view! { <p class="muted">"No human answers for this question and culture."</p> })}
            <h3>"Other cultures' culture-aware answers"</h3>
            <ul class="other-cultures">{others}</ul>
            <h3>"Reviews so far"</h3>
            {if detail.reviews.is_empty() {
                view! { <p class="muted">"None yet."</p> }.into_any()
            } else {
                view! { <ul class="reviews">{reviews}</ul> }.into_any()
            }}
            <details class="prompt">
                <summary>"The SFT record's prompt"</summary>
                <pre>{detail.system_prompt.clone()}</pre>
                <pre>{detail.user_prompt.clone()}</pre>
            </details>
        </article>
    }
}
