//! The questions page: the kept WVS questions, filtered by topic, paged; state in the URL.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use shared::api::Page;
use shared::{Question, Topic};

use crate::api;
use crate::components::loaded;

const PAGE_SIZE: u32 = 25;

#[component]
pub fn QuestionsPage() -> impl IntoView {
    let query = use_query_map();
    let topic = move || query.read().get("topic");
    let offset = move || query.read().get("offset").and_then(|o| o.parse::<u32>().ok()).unwrap_or(0);
    let topics = LocalResource::new(|| api::get::<Page<Topic>>("/topics"));
    let questions = LocalResource::new(move || {
        let topic_filter = topic().map(|t| format!("&topic={t}")).unwrap_or_default();
        let path = format!("/questions?limit={PAGE_SIZE}&offset={}{topic_filter}", offset());
        async move { api::get::<Page<Question>>(&path).await }
    });
    let link = move |topic: Option<String>, offset: u32| {
        let topic = topic.map(|t| format!("&topic={t}")).unwrap_or_default();
        format!("/questions?offset={offset}{topic}")
    };
    view! {
        <h1>"Questions"</h1>
        <div class="filters">
            <a href="/questions" class:active=move || topic().is_none()>"All topics"</a>
            {loaded(topics, move |page| {
                page.items
                    .into_iter()
                    .map(|t| {
                        let index = t.index.to_string();
                        let active = {
                            let index = index.clone();
                            move || topic().as_deref() == Some(index.as_str())
                        };
                        view! { <a href=link(Some(index), 0) class:active=active>{t.name}</a> }
                    })
                    .collect_view()
            })}
        </div>
        {loaded(questions, move |page| {
            let shown_from = offset() + 1;
            let shown_to = offset() + page.items.len() as u32;
            let previous = (offset() > 0).then(|| link(topic(), offset().saturating_sub(PAGE_SIZE)));
            let next = (u64::from(shown_to) < page.total).then(|| link(topic(), shown_to));
            view! {
                <p class="count">{format!("{shown_from}–{shown_to} of {}", page.total)}</p>
                <ol class="questions" data-testid="questions">
                    {page.items
                        .into_iter()
                        .map(|q| {
                            view! {
                                <li>
                                    <a class="qid" href=format!("/questions/{}", q.question_id)>{q.question_id.clone()}</a>" "{q.text.clone()}
                                    <div class="options">{q.options_line()}</div>
                                </li>
                            }
                        })
                        .collect_view()}
                </ol>
                <nav class="pager">
                    {previous.map(|href| view! { <a href=href>"← Previous"</a> })}
                    {next.map(|href| view! { <a href=href>"Next →"</a> })}
                </nav>
            }
        })}
    }
}
