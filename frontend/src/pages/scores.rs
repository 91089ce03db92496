//! How well a model fits each culture (issue 6): the paper's score of a run's answers per culture
//! as a sortable table and a bar chart grouped by region, the culture × topic breakdown, and the
//! paper's released settings. Shown on the cultures page; its state lives in the URL query
//! (`run`, `variant`, `sort`, `order`).

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use shared::analysis::{ReleasedScores, RunScores};
use shared::api::Page;
use shared::{Culture, CultureScore, Region, Topic};

use crate::api;
use crate::components::charts::{dark_background, sequential_color, Bar, BarGroup, GroupedBarChart};
use crate::components::download::{Cell, DataTable, Download};
use crate::components::loaded;
use crate::components::runs::{all_runs, default_run_id};
use crate::components::{encode_uri_component, format_number, url_with_query};

/// The scores page lives on the cultures page.
const PAGE_PATH: &str = "/";
/// The bar chart's value axis (scores are ×100).
const SCORE_DOMAIN: (f64, f64) = (0.0, 100.0);
/// Topic scores below this are the lightest colour (the paper's scores rarely go lower).
const TOPIC_SCALE_MIN: f64 = 30.0;

/// A column of the scores table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    /// The paper's culture order.
    Paper,
    Code,
    Region,
    Score,
    Scored,
    OneMinusJsd,
}

impl SortKey {
    const ALL: [SortKey; 6] =
        [SortKey::Paper, SortKey::Code, SortKey::Region, SortKey::Score, SortKey::Scored, SortKey::OneMinusJsd];

    fn name(self) -> &'static str {
        match self {
            SortKey::Paper => "paper",
            SortKey::Code => "code",
            SortKey::Region => "region",
            SortKey::Score => "score",
            SortKey::Scored => "scored",
            SortKey::OneMinusJsd => "jsd",
        }
    }

    fn parse(text: &str) -> SortKey {
        SortKey::ALL.into_iter().find(|key| key.name() == text).unwrap_or(SortKey::Paper)
    }

    /// Numbers read best largest first; names A to Z.
    fn descending_by_default(self) -> bool {
        matches!(self, SortKey::Score | SortKey::Scored | SortKey::OneMinusJsd)
    }
}

/// What the URL says the section shows.
#[derive(Debug, Clone, PartialEq)]
struct ScoreView {
    run: Option<String>,
    variant: Option<String>,
    sort: SortKey,
    descending: bool,
}

impl ScoreView {
    fn href(&self) -> String {
        let sort = (self.sort != SortKey::Paper).then(|| self.sort.name().to_string());
        let order = sort.as_ref().map(|_| if self.descending { "desc" } else { "asc" }.to_string());
        url_with_query(
            PAGE_PATH,
            &[("run", self.run.clone()), ("variant", self.variant.clone()), ("sort", sort), ("order", order)],
        )
    }

    /// The link of a column header: sort by it, or flip the order when it is already the key.
    fn sorted_by(&self, key: SortKey) -> String {
        let descending = if self.sort == key { !self.descending } else { key.descending_by_default() };
        ScoreView { sort: key, descending, ..self.clone() }.href()
    }
}

/// The run scores, the topic breakdown and the released settings.
#[component]
pub fn ScoresSection(cultures: Vec<Culture>) -> impl IntoView {
    let query = use_query_map();
    let view_state = Memo::new(move |_| {
        let query = query.read();
        let sort = query.get("sort").map(|text| SortKey::parse(&text)).unwrap_or(SortKey::Paper);
        ScoreView {
            run: query.get("run"),
            variant: query.get("variant"),
            sort,
            descending: query.get("order").map_or(sort.descending_by_default(), |order| order == "desc"),
        }
    });
    let scores = LocalResource::new(move || {
        let (run, variant) = view_state.with(|state| (state.run.clone(), state.variant.clone()));
        async move {
            let run = match run {
                Some(run) => run,
                None => default_run_id().await?.to_string(),
            };
            let variant =
                variant.map(|variant| format!("&variant={}", encode_uri_component(&variant))).unwrap_or_default();
            api::get::<RunScores>(&format!("/scores?run={}{variant}", encode_uri_component(&run))).await
        }
    });
    let runs = LocalResource::new(all_runs);
    let topics = LocalResource::new(|| api::get::<Page<Topic>>("/topics"));
    let released = LocalResource::new(|| api::get::<ReleasedScores>("/scores/released"));
    let cultures = StoredValue::new(cultures);
    let navigate = use_navigate();
    let go = move |href: String| navigate(&href, NavigateOptions::default());

    view! {
        <section class="scores" data-testid="scores">
            <h2 id="alignment">"Alignment per culture"</h2>
            <p class="lead">
                "The paper's score (×100): 1 − distance between the model's answers and each culture's "
                "majority answers over the WVS questions, relative to the largest possible distance."
            </p>
            {loaded(scores, move |scores| {
                let go = go.clone();
                let runs_select = {
                    let go = go.clone();
                    let selected = scores.run_id;
                    loaded(runs, move |runs| {
                        let go = go.clone();
                        view! {
                            <label>
                                "Run "
                                <select
                                    class="run"
                                    on:change=move |event| {
                                        let run = event_target_value(&event);
                                        go(ScoreView { run: Some(run), variant: None, ..view_state.get_untracked() }.href());
                                    }
                                >
                                    {runs
                                        .into_iter()
                                        .map(|run| {
                                            view! {
                                                <option value=run.run_id.to_string() selected=run.run_id == selected>
                                                    {format!("{} · {}", run.run_id, run.config.name)}
                                                </option>
                                            }
                                        })
                                        .collect_view()}
                                </select>
                            </label>
                        }
                    })
                };
                let variant_select = {
                    let selected = scores.variant;
                    view! {
                        <label>
                            "Prompt "
                            <select
                                class="variant"
                                on:change=move |event| {
                                    let variant = event_target_value(&event);
                                    go(ScoreView { variant: Some(variant), ..view_state.get_untracked() }.href());
                                }
                            >
                                {scores
                                    .available_variants
                                    .iter()
                                    .map(|variant| {
                                        view! {
                                            <option value=variant.label() selected=*variant == selected>
                                                {variant.label()}
                                            </option>
                                        }
                                    })
                                    .collect_view()}
                            </select>
                        </label>
                    }
                };
                view! {
                    <div class="controls">{runs_select}{variant_select}</div>
                    <RunScoresView scores=scores cultures=cultures.get_value() state=view_state.get() />
                }
            })}
            <h3>"Per topic"</h3>
            {loaded(scores, move |scores| {
                loaded(topics, move |topics| {
                    view! { <TopicGrid scores=scores.clone() topics=topics.items /> }
                })
            })}
            <h3>"The paper's released settings (Llama-3-8B-Instruct)"</h3>
            {loaded(released, move |released| view! { <ReleasedTable released=released cultures=cultures.get_value() /> })}
        </section>
    }
}

fn culture_of<'a>(cultures: &'a [Culture], country_code: &str) -> Option<&'a Culture> {
    cultures.iter().find(|culture| culture.country_code == country_code)
}

fn sorted_scores(scores: &RunScores, cultures: &[Culture], state: &ScoreView) -> Vec<CultureScore> {
    let mut rows = scores.scores.clone();
    let region = |code: &str| culture_of(cultures, code).map(|culture| culture.region);
    let position = |code: &str| cultures.iter().position(|culture| culture.country_code == code);
    let missing_last = |value: Option<f64>| value.unwrap_or(f64::NEG_INFINITY);
    rows.sort_by(|a, b| {
        let ordering = match state.sort {
            SortKey::Paper => position(&a.country_code).cmp(&position(&b.country_code)),
            SortKey::Code => a.country_code.cmp(&b.country_code),
            SortKey::Region => region(&a.country_code)
                .cmp(&region(&b.country_code))
                .then(position(&a.country_code).cmp(&position(&b.country_code))),
            SortKey::Score => a.score.total_cmp(&b.score),
            SortKey::Scored => a.questions_scored.cmp(&b.questions_scored),
            SortKey::OneMinusJsd => missing_last(a.one_minus_jsd).total_cmp(&missing_last(b.one_minus_jsd)),
        };
        if state.descending && state.sort != SortKey::Paper {
            ordering.reverse()
        } else {
            ordering
        }
    });
    rows
}

#[component]
fn RunScoresView(scores: RunScores, cultures: Vec<Culture>, state: ScoreView) -> impl IntoView {
    let rows = sorted_scores(&scores, &cultures, &state);
    let mut table = DataTable::new(
        format!("scores-run{}-{}", scores.run_id, scores.variant_label),
        &["country_code", "culture", "region", "score", "questions_scored", "questions_skipped", "one_minus_jsd"],
    );
    for row in &rows {
        let culture = culture_of(&cultures, &row.country_code);
        table.rows.push(vec![
            Cell::text(row.country_code.clone()),
            Cell::text(culture.map(|culture| culture.name.clone()).unwrap_or_default()),
            Cell::text(culture.map(|culture| culture.region.label()).unwrap_or_default()),
            Cell::Number(Some(row.score)),
            Cell::Number(Some(f64::from(row.questions_scored))),
            Cell::Number(Some(f64::from(row.questions_skipped))),
            Cell::Number(row.one_minus_jsd),
        ]);
    }
    let header = |key: SortKey, text: &'static str, numeric: bool| {
        let arrow = if state.sort == key {
            if state.descending {
                " ▼"
            } else {
                " ▲"
            }
        } else {
            ""
        };
        view! {
            <th class:num=numeric>
                <a class="sort" data-sort=key.name() href=state.sorted_by(key)>{text}{arrow}</a>
            </th>
        }
    };
    let body = rows
        .iter()
        .map(|row| {
            let culture = culture_of(&cultures, &row.country_code);
            view! {
                <tr class="score-row">
                    <td><code>{row.country_code.clone()}</code></td>
                    <td>{culture.map(|culture| culture.name.clone())}</td>
                    <td>{culture.map(|culture| culture.region.label())}</td>
                    <td class="num">{format!("{:.2}", row.score)}</td>
                    <td class="num">{row.questions_scored}</td>
                    <td class="num">{row.questions_skipped}</td>
                    <td class="num">{format_number(row.one_minus_jsd, 2)}</td>
                </tr>
            }
        })
        .collect_view();
    let skipped = (!scores.skipped_cultures.is_empty()).then(|| {
        let text = scores
            .skipped_cultures
            .iter()
            .map(|skipped| format!("{}: {}", skipped.country_code, skipped.reason))
            .collect::<Vec<_>>()
            .join("; ");
        view! { <p class="note">"Not scored: "{text}</p> }
    });
    let summary = format!(
        "{} · {} · average {} over {} cultures{}",
        scores.run_name,
        scores.variant_label,
        format_number(scores.average, 2),
        scores.scores.len(),
        scores.average_one_minus_jsd.map(|value| format!(" · 1 − JSD {value:.2}")).unwrap_or_default()
    );
    view! {
        <p class="summary" data-testid="score-summary">{summary}</p>
        {skipped}
        <div class="table-scroll">
            <table class="scores">
                <thead>
                    <tr>
                        {header(SortKey::Code, "Code", false)}
                        <th>"Culture"</th>
                        {header(SortKey::Region, "Region", false)}
                        {header(SortKey::Score, "Score", true)}
                        {header(SortKey::Scored, "Scored", true)}
                        <th class="num">"Skipped"</th>
                        {header(SortKey::OneMinusJsd, "1 − JSD", true)}
                    </tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        </div>
        <Download table=table />
        <ScoreBars scores=scores cultures=cultures />
    }
}

/// The scores as bars, grouped by region (regions in their order, cultures in the paper's).
#[component]
fn ScoreBars(scores: RunScores, cultures: Vec<Culture>) -> impl IntoView {
    let mut regions: Vec<Region> = cultures.iter().map(|culture| culture.region).collect();
    regions.sort();
    regions.dedup();
    let groups: Vec<BarGroup> = regions
        .into_iter()
        .filter_map(|region| {
            let bars: Vec<Bar> = cultures
                .iter()
                .filter(|culture| culture.region == region)
                .filter_map(|culture| {
                    let score = scores.scores.iter().find(|score| score.country_code == culture.country_code)?;
                    Some(Bar {
                        label: culture.country_code.clone(),
                        value: Some(score.score),
                        title: format!("{}: {:.2} ({} questions)", culture.name, score.score, score.questions_scored),
                    })
                })
                .collect();
            (!bars.is_empty()).then(|| BarGroup { label: region.label().to_string(), bars })
        })
        .collect();
    let reference = scores.average.map(|average| (average, format!("average {average:.2}")));
    view! {
        <figure class="chart">
            <GroupedBarChart groups=groups domain=SCORE_DOMAIN reference=reference label="Alignment score per culture, by region" />
            <figcaption>"Alignment score (×100) per culture, grouped by region; dashed: the average."</figcaption>
        </figure>
    }
}

/// A short name for a topic column: its index, with the full name as tooltip.
fn topic_heading(topic: &Topic) -> String {
    format!("T{}", topic.index)
}

/// Culture × topic scores as a coloured grid (an HTML table, so it reads on small screens and
/// downloads like any table).
#[component]
fn TopicGrid(scores: RunScores, topics: Vec<Topic>) -> impl IntoView {
    let mut columns = vec!["country_code"];
    let names: Vec<String> = topics.iter().map(|topic| topic.name.clone()).collect();
    columns.extend(names.iter().map(String::as_str));
    let mut table = DataTable::new(format!("topic-scores-run{}-{}", scores.run_id, scores.variant_label), &columns);
    for row in &scores.topic_scores {
        let mut cells = vec![Cell::text(row.country_code.clone())];
        cells.extend(row.topics.iter().map(|topic| Cell::Number(topic.score)));
        table.rows.push(cells);
    }
    let shade = |score: f64| (score - TOPIC_SCALE_MIN) / (SCORE_DOMAIN.1 - TOPIC_SCALE_MIN);
    let body = scores
        .topic_scores
        .iter()
        .map(|row| {
            let cells = row
                .topics
                .iter()
                .map(|topic| match topic.score {
                    Some(score) => {
                        let t = shade(score);
                        let style = format!(
                            "background:{};color:{}",
                            sequential_color(t),
                            if dark_background(t) { "#fff" } else { "inherit" }
                        );
                        let title = format!("{} questions", topic.questions_scored);
                        view! { <td class="num heat" style=style title=title>{format!("{score:.0}")}</td> }.into_any()
                    }
                    None => view! { <td class="num heat empty">"–"</td> }.into_any(),
                })
                .collect_view();
            view! { <tr class="topic-row"><th><code>{row.country_code.clone()}</code></th>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="topic-scores">
                <thead>
                    <tr>
                        <th>"Culture"</th>
                        {topics
                            .iter()
                            .map(|topic| view! { <th class="num" title=topic.name.clone()>{topic_heading(topic)}</th> })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        </div>
        <p class="note">
            {topics.iter().map(|topic| format!("T{} {}", topic.index, topic.name)).collect::<Vec<_>>().join(" · ")}
        </p>
        <Download table=table />
    }
}

/// Every released setting: its average and each culture's score.
#[component]
fn ReleasedTable(released: ReleasedScores, cultures: Vec<Culture>) -> impl IntoView {
    let mut columns = vec!["setting", "variant", "scored_against", "average"];
    columns.extend(cultures.iter().map(|culture| culture.country_code.as_str()));
    let mut table = DataTable::new("released-scores", &columns);
    let score_of = |setting: &shared::analysis::SettingScores, code: &str| {
        setting.scores.iter().find(|score| score.country_code == code).map(|score| score.score)
    };
    for setting in &released.settings {
        let mut row = vec![
            Cell::text(setting.setting.clone()),
            Cell::text(setting.variant_label.clone()),
            Cell::text(match setting.scored_against {
                shared::analysis::ScoredAgainst::OwnCulture => "own culture",
                shared::analysis::ScoredAgainst::AllCultures => "all cultures",
            }),
            Cell::Number(setting.average),
        ];
        row.extend(cultures.iter().map(|culture| Cell::Number(score_of(setting, &culture.country_code))));
        table.rows.push(row);
    }
    let body = released
        .settings
        .iter()
        .map(|setting| {
            let cells = cultures
                .iter()
                .map(|culture| view! { <td class="num">{format_number(score_of(setting, &culture.country_code), 2)}</td> })
                .collect_view();
            let notes = setting.notes.join("; ");
            view! {
                <tr class="released-row" title=notes>
                    <td>{setting.setting.clone()}</td>
                    <td>{setting.variant_label.clone()}</td>
                    <td class="num"><strong>{format_number(setting.average, 2)}</strong></td>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="released">
                <thead>
                    <tr>
                        <th>"Setting"</th>
                        <th>"Prompt"</th>
                        <th class="num">"Avg"</th>
                        {cultures.iter().map(|culture| view! { <th class="num">{culture.country_code.clone()}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>{body}</tbody>
            </table>
        </div>
        <Download table=table />
    }
}
