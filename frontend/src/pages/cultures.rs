//! The cultures page: the 18 cultures by region, how well a run fits each of them (see
//! [`crate::pages::scores`]), and the 13 topics with their question counts.

use leptos::prelude::*;
use shared::api::Page;
use shared::{Culture, Region, Topic};

use crate::api;
use crate::components::loaded;
use crate::pages::scores::ScoresSection;

#[component]
pub fn CulturesPage() -> impl IntoView {
    let cultures = LocalResource::new(|| api::get::<Page<Culture>>("/cultures"));
    let topics = LocalResource::new(|| api::get::<Page<Topic>>("/topics"));
    view! {
        <h1>"Cultures"</h1>
        <p class="lead">
            "The 18 cultures of CultureSPA, with the number of WVS questions their people answered."
        </p>
        {loaded(cultures, |page| view! { <CultureTable cultures=page.items /> })}
        {loaded(cultures, |page| view! { <ScoresSection cultures=page.items /> })}
        <h2>"Topics"</h2>
        {loaded(topics, |page| view! { <TopicTable topics=page.items /> })}
    }
}

#[component]
fn CultureTable(cultures: Vec<Culture>) -> impl IntoView {
    let mut regions: Vec<Region> = cultures.iter().map(|culture| culture.region).collect();
    regions.sort();
    regions.dedup();
    view! {
        <table class="cultures" data-testid="cultures">
            <thead>
                <tr><th>"Code"</th><th>"Culture"</th><th>"Region"</th><th class="num">"Answered questions"</th></tr>
            </thead>
            {regions
                .into_iter()
                .map(|region| {
                    let rows = cultures
                        .iter()
                        .filter(|culture| culture.region == region)
                        .map(|culture| {
                            view! {
                                <tr class="culture">
                                    <td><code>{culture.country_code.clone()}</code></td>
                                    <td>{culture.name.clone()}" ("{culture.adjective.clone()}")"</td>
                                    <td>{region.label()}</td>
                                    <td class="num">{culture.answered_questions}</td>
                                </tr>
                            }
                        })
                        .collect_view();
                    view! { <tbody>{rows}</tbody> }
                })
                .collect_view()}
        </table>
    }
}

#[component]
fn TopicTable(topics: Vec<Topic>) -> impl IntoView {
    view! {
        <table class="topics" data-testid="topics">
            <thead>
                <tr><th>"#"</th><th>"Topic"</th><th>"WVS range"</th><th class="num">"Questions"</th></tr>
            </thead>
            <tbody>
                {topics
                    .into_iter()
                    .map(|topic| {
                        let href = format!("/questions?topic={}", topic.index);
                        view! {
                            <tr class="topic">
                                <td>{topic.index}</td>
                                <td><a href=href>{topic.name}</a></td>
                                <td>{topic.first_question_id}"–"{topic.last_question_id}</td>
                                <td class="num">{topic.question_count}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
