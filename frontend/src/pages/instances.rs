//! The instances page: culture-related instances filtered by run, culture, topic, status and
//! disagreement, searched by words, paged; every filter lives in the URL. Downloads as CSV/JSON.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use shared::api::Page;
use shared::review::InstanceItem;
use shared::{Culture, Run, Topic};

use crate::api;
use crate::components::loaded;
use crate::components::review_status::status_label;
use crate::components::reviewer::stored_reviewer_name;
use crate::components::{encode_uri_component, query_string};

const PAGE_SIZE: u32 = 50;
/// The URL parameters that filter; `offset` pages.
const FILTER_KEYS: [&str; 6] = ["run", "culture", "topic", "status", "disagreement", "q"];
/// `status` values: a reviewer's queues, then review statuses.
const STATUS_CHOICES: [(&str, &str); 7] = [
    ("pending", "Pending (to review)"),
    ("submitted", "Submitted by me"),
    ("discarded", "Discarded by me"),
    ("accepted", "Accepted"),
    ("rejected", "Rejected"),
    ("flagged", "Flagged"),
    ("disputed", "Disputed"),
];

#[component]
pub fn InstancesPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |key: &str| query.read().get(key).unwrap_or_default();
    let offset = move || param("offset").parse::<u32>().unwrap_or(0);
    let filters = move || FILTER_KEYS.iter().map(|key| (*key, param(key))).collect::<Vec<_>>();
    // The queues are a reviewer's: in open mode the name this browser reviews under.
    let api_filters = move || {
        let mut pairs = filters();
        pairs.push(("reviewer", stored_reviewer_name().unwrap_or_default()));
        query_string(&pairs)
    };
    let instances = LocalResource::new(move || {
        let path = format!("/instances?limit={PAGE_SIZE}&offset={}&{}", offset(), api_filters());
        async move { api::get::<Page<InstanceItem>>(&path).await }
    });
    let runs = LocalResource::new(|| api::get::<Page<Run>>("/runs?limit=100"));
    let cultures = LocalResource::new(|| api::get::<Page<Culture>>("/cultures"));
    let topics = LocalResource::new(|| api::get::<Page<Topic>>("/topics"));

    let navigate = use_navigate();
    let set_filter = move |key: &'static str, value: String| {
        let pairs: Vec<(&str, String)> = filters()
            .into_iter()
            .map(|(name, current)| if name == key { (name, value.clone()) } else { (name, current) })
            .collect();
        navigate(&format!("/instances?{}", query_string(&pairs)), NavigateOptions::default());
    };
    let page_link = move |offset: u32| {
        let mut pairs = filters();
        pairs.push(("offset", if offset == 0 { String::new() } else { offset.to_string() }));
        format!("/instances?{}", query_string(&pairs))
    };
    let download = move |format: &str| format!("/api/instances/download?format={format}&{}", api_filters());

    let select = {
        let set_filter = set_filter.clone();
        move |key: &'static str, label: &'static str, choices: Vec<(String, String)>| {
            let set_filter = set_filter.clone();
            let current = param(key);
            view! {
                <label class="filter">
                    <span>{label}</span>
                    <select name=key on:change=move |event| set_filter(key, event_target_value(&event))>
                        <option value="" selected=current.is_empty()>"All"</option>
                        {choices
                            .into_iter()
                            .map(|(value, text)| {
                                let selected = value == current;
                                view! { <option value=value selected=selected>{text}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
            }
        }
    };
    let run_select = select.clone();
    let culture_select = select.clone();
    let topic_select = select.clone();
    let status_select = select;
    let set_disagreement = set_filter.clone();
    let set_search = set_filter;

    view! {
        <h1>"Instances"</h1>
        <p class="lead">
            "Culture-related instances: (question, culture) pairs where the culture-aware answer differs from the culture-unaware one."
        </p>
        <form class="instance-filters" on:submit=|event| event.prevent_default()>
            {move || {
                let run_select = run_select.clone();
                loaded(runs, move |runs| {
                    let choices = runs
                        .items
                        .into_iter()
                        .map(|run| (run.run_id.to_string(), format!("{} · {}", run.run_id, run.config.name)))
                        .collect();
                    run_select("run", "Run", choices)
                })
            }}
            {move || {
                let culture_select = culture_select.clone();
                loaded(cultures, move |cultures| {
                    let choices = cultures
                        .items
                        .into_iter()
                        .map(|culture| (culture.country_code.clone(), format!("{} {}", culture.country_code, culture.name)))
                        .collect();
                    culture_select("culture", "Culture", choices)
                })
            }}
            {move || {
                let topic_select = topic_select.clone();
                loaded(topics, move |topics| {
                    let choices = topics.items.into_iter().map(|topic| (topic.index.to_string(), topic.name)).collect();
                    topic_select("topic", "Topic", choices)
                })
            }}
            {move || {
                let choices = STATUS_CHOICES.iter().map(|(value, text)| (value.to_string(), text.to_string())).collect();
                status_select("status", "Status", choices)
            }}
            <label class="filter checkbox">
                <input
                    type="checkbox"
                    name="disagreement"
                    prop:checked=move || param("disagreement") == "true"
                    on:change=move |event| {
                        let checked = event_target_checked(&event);
                        set_disagreement("disagreement", if checked { "true".to_string() } else { String::new() })
                    }
                />
                <span>"Reviewers disagree"</span>
            </label>
            <label class="filter search">
                <span>"Search"</span>
                <input
                    type="search"
                    name="q"
                    placeholder="words in the question or options"
                    prop:value=move || param("q")
                    on:change=move |event| set_search("q", event_target_value(&event))
                />
            </label>
        </form>
        <p class="downloads">
            "Download these: "
            <a href=move || download("csv") download="instances.csv">"CSV"</a>
            " · "
            <a href=move || download("json") download="instances.json">"JSON"</a>
        </p>
        {loaded(instances, move |page| {
            let shown_from = if page.items.is_empty() { 0 } else { offset() + 1 };
            let shown_to = offset() + page.items.len() as u32;
            let previous = (offset() > 0).then(|| page_link(offset().saturating_sub(PAGE_SIZE)));
            let next = (u64::from(shown_to) < page.total).then(|| page_link(shown_to));
            view! {
                <p class="count" data-testid="instance-count">{format!("{shown_from}–{shown_to} of {}", page.total)}</p>
                <div class="table-scroll">
                    <table class="instances" data-testid="instances">
                        <thead>
                            <tr>
                                <th class="num">"#"</th><th>"Culture"</th><th>"Question"</th>
                                <th>"Unaware"</th><th>"Aware"</th><th>"Status"</th><th class="num">"Reviews"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {page.items.into_iter().map(|item| view! { <InstanceRow item=item /> }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <nav class="pager">
                    {previous.map(|href| view! { <a href=href>"← Previous"</a> })}
                    {next.map(|href| view! { <a href=href>"Next →"</a> })}
                </nav>
            }
        })}
    }
}

#[component]
fn InstanceRow(item: InstanceItem) -> impl IntoView {
    let instance = item.instance;
    let question_href = format!("/questions/{}?run={}", encode_uri_component(&instance.question_id), instance.run_id);
    let review_href = format!("/review?run={}&instance={}", instance.run_id, instance.instance_id);
    let status = instance.review_status;
    let answer = |code: u32, text: Option<String>| match text {
        Some(text) => format!("{code}. {text}"),
        None => code.to_string(),
    };
    view! {
        <tr class="instance" data-culture=instance.country_code.clone()>
            <td class="num"><a href=review_href>{instance.instance_id}</a></td>
            <td><code>{instance.country_code.clone()}</code></td>
            <td>
                <a class="qid" href=question_href>{instance.question_id.clone()}</a>
                " "{item.question_text}
            </td>
            <td>{answer(instance.unaware_code, item.unaware_option)}</td>
            <td>{answer(instance.aware_code, item.aware_option)}</td>
            <td><span class=format!("status {}", status_label(status))>{status_label(status)}</span></td>
            <td class="num">{format!("{}/{}", item.reviews, item.required_reviews)}</td>
        </tr>
    }
}
