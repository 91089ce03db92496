//! How cultures relate (issue 7): the 18 × 18 similarity heatmap ordered by the clustering, for
//! humans, a run's culture personas, or their difference; the correlation with the human matrix;
//! each culture's most similar and most different cultures. State in the URL: `source`
//! (`human`, `run:ID`, `difference:ID`) and `culture`.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use shared::analysis::{CultureNeighbours, Neighbour, RelationKind, Relations};

use crate::api;
use crate::components::charts::{diverging_color, sequential_color, HeatCell, Heatmap};
use crate::components::download::{Cell, DataTable, Download};
use crate::components::loaded;
use crate::components::runs::{all_runs, default_run_id};
use crate::components::{encode_uri_component, format_number, url_with_query};

const PAGE_PATH: &str = "/relations";
const DIAGONAL_FILL: &str = "#cbd5e0";
const MISSING_FILL: &str = "#ffffff";

#[derive(Debug, Clone, PartialEq)]
struct RelationView {
    source: String,
    culture: Option<String>,
}

impl RelationView {
    fn href(&self) -> String {
        url_with_query(PAGE_PATH, &[("source", Some(self.source.clone())), ("culture", self.culture.clone())])
    }
}

/// The run a `run:ID` / `difference:ID` source names.
fn source_run(source: &str) -> Option<i64> {
    source.split_once(':').and_then(|(_, run)| run.parse().ok())
}

#[component]
pub fn RelationsPage() -> impl IntoView {
    let query = use_query_map();
    let view_state = Memo::new(move |_| {
        let query = query.read();
        RelationView {
            source: query.get("source").unwrap_or_else(|| "human".to_string()),
            culture: query.get("culture").map(|code| code.to_ascii_uppercase()),
        }
    });
    let source = Memo::new(move |_| view_state.with(|state| state.source.clone()));
    let relations = LocalResource::new(move || {
        let source = source.get();
        async move { api::get::<Relations>(&format!("/relations?source={}", encode_uri_component(&source))).await }
    });
    // The run that the run and difference switches use: the one in the URL, else the default.
    let run_choice = LocalResource::new(move || {
        let named = source_run(&source.get());
        async move {
            match named {
                Some(run) => Ok(run),
                None => default_run_id().await,
            }
        }
    });
    let runs = LocalResource::new(all_runs);
    let navigate = use_navigate();
    let go = move |href: String| navigate(&href, NavigateOptions::default());

    view! {
        <h1>"Culture relations"</h1>
        <p class="lead">
            "How similar the cultures' answers are: the paper's score between two cultures' majority answers "
            "(humans) or between a model's answers as each culture (a run, prompt P1)."
        </p>
        {loaded(run_choice, move |run_id| {
            let go = go.clone();
            let switch = move |label: &'static str, target: String| {
                let active = {
                    let target = target.clone();
                    move || view_state.with(|state| state.source == target)
                };
                let href = move || RelationView { source: target.clone(), ..view_state.get() }.href();
                view! { <a class="source" class:active=active href=href>{label}</a> }
            };
            let run_select = loaded(runs, move |runs| {
                let go = go.clone();
                view! {
                    <select
                        class="run"
                        on:change=move |event| {
                            let run = event_target_value(&event);
                            let kind = view_state.with_untracked(|state| {
                                if state.source.starts_with("difference:") { "difference" } else { "run" }
                            });
                            go(RelationView { source: format!("{kind}:{run}"), ..view_state.get_untracked() }.href());
                        }
                    >
                        {runs
                            .into_iter()
                            .map(|run| {
                                view! {
                                    <option value=run.run_id.to_string() selected=run.run_id == run_id>
                                        {format!("{} · {}", run.run_id, run.config.name)}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                }
            });
            view! {
                <div class="filters controls">
                    {switch("Humans", "human".to_string())}
                    {switch("Model (run)", format!("run:{run_id}"))}
                    {switch("Model − humans", format!("difference:{run_id}"))}
                    <label>"Run "{run_select}</label>
                </div>
            }
        })}
        {loaded(relations, move |relations| {
            view! { <RelationsView relations=relations selected=view_state.get().culture source=view_state.get().source /> }
        })}
    }
}

fn cell_fill(relations: &Relations, value: Option<f64>, diagonal: bool, (low, high): (f64, f64)) -> String {
    match value {
        _ if diagonal => DIAGONAL_FILL.to_string(),
        None => MISSING_FILL.to_string(),
        Some(value) if relations.kind == RelationKind::Difference => {
            let extent = low.abs().max(high.abs()).max(f64::EPSILON);
            diverging_color(value / extent)
        }
        Some(value) => sequential_color((value - low) / (high - low).max(f64::EPSILON)),
    }
}

#[component]
fn RelationsView(relations: Relations, selected: Option<String>, source: String) -> impl IntoView {
    let order = relations.clustering.order.clone();
    let position = |code: &str| relations.country_codes.iter().position(|known| known == code);
    let off_diagonal: Vec<f64> = relations
        .values
        .iter()
        .enumerate()
        .flat_map(|(row, values)| values.iter().enumerate().filter(move |(column, _)| *column != row).map(|(_, v)| *v))
        .flatten()
        .collect();
    let extent = (
        off_diagonal.iter().copied().fold(f64::INFINITY, f64::min),
        off_diagonal.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let difference = relations.kind == RelationKind::Difference;
    let mut cells = Vec::with_capacity(order.len() * order.len());
    for (row, row_code) in order.iter().enumerate() {
        for (column, column_code) in order.iter().enumerate() {
            let value = position(row_code).zip(position(column_code)).and_then(|(a, b)| relations.values[a][b]);
            let shown = format_number(value, 1);
            let title = if difference {
                format!("{row_code} – {column_code}: model − humans {shown}")
            } else {
                format!("{row_code} – {column_code}: {shown}")
            };
            cells.push(HeatCell { row, column, fill: cell_fill(&relations, value, row == column, extent), title });
        }
    }
    let selected = selected.filter(|code| order.contains(code)).or_else(|| order.first().cloned());
    let highlighted = selected.as_ref().and_then(|code| order.iter().position(|known| known == code));
    let neighbours = selected
        .as_ref()
        .and_then(|code| relations.neighbours.iter().find(|entry| &entry.country_code == code).cloned());
    let pearson = relations.pearson_with_human.map(|r| {
        view! { <p class="summary" data-testid="pearson">{format!("Pearson r with the human similarities: {r:.3}")}</p> }
    });
    let legend = if difference {
        format!(
            "Red: the model rates the pair less similar than humans do; blue: more similar (±{:.1}).",
            extent.0.abs().max(extent.1.abs())
        )
    } else {
        format!("Lighter: less similar ({:.1}); darker: more similar ({:.1}). Diagonal in grey.", extent.0, extent.1)
    };
    let chips = order
        .iter()
        .map(|code| {
            let active = selected.as_deref() == Some(code.as_str());
            let href = RelationView { source: source.clone(), culture: Some(code.clone()) }.href();
            view! { <a class="culture-chip" class:active=active href=href>{code.clone()}</a> }
        })
        .collect_view();
    let matrix_table = matrix_table(&relations, &order);
    let neighbour_table = neighbour_table(&relations);
    let (similar_heading, different_heading) = if difference {
        ("Largest model − human", "Smallest model − human")
    } else {
        ("Most similar", "Most different")
    };
    let label = format!("Culture similarity heatmap ({})", relations.source);
    view! {
        {pearson}
        <figure class="chart">
            <Heatmap labels=order.clone() cells=cells highlighted=highlighted label=label />
            <figcaption>{format!("Ordered by average-linkage clustering. {legend}")}</figcaption>
        </figure>
        <div class="filters chips">{chips}</div>
        {neighbours.map(|entry| view! { <NeighbourLists entry=entry similar_heading=similar_heading different_heading=different_heading /> })}
        <h2>"Matrix"</h2>
        <Download table=matrix_table />
        <h2>"Nearest and farthest, every culture"</h2>
        <Download table=neighbour_table.clone() />
        <div class="table-scroll">
            <table class="neighbours">
                <thead>
                    <tr><th>"Culture"</th><th>{similar_heading}</th><th>{different_heading}</th></tr>
                </thead>
                <tbody>
                    {relations
                        .neighbours
                        .iter()
                        .map(|entry| {
                            view! {
                                <tr class="neighbour-row">
                                    <td><code>{entry.country_code.clone()}</code></td>
                                    <td>{neighbour_text(&entry.most_similar)}</td>
                                    <td>{neighbour_text(&entry.most_different)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

fn neighbour_text(neighbours: &[Neighbour]) -> String {
    neighbours.iter().map(|n| format!("{} {:.1}", n.country_code, n.value)).collect::<Vec<_>>().join(", ")
}

#[component]
fn NeighbourLists(
    entry: CultureNeighbours,
    similar_heading: &'static str,
    different_heading: &'static str,
) -> impl IntoView {
    let list = |neighbours: Vec<Neighbour>, class: &'static str| {
        view! {
            <ol class=class>
                {neighbours
                    .into_iter()
                    .map(|n| view! { <li><code>{n.country_code}</code>" "{format!("{:.1}", n.value)}</li> })
                    .collect_view()}
            </ol>
        }
    };
    view! {
        <div class="neighbour-lists" data-testid="selected-culture">
            <h3>{entry.country_code.clone()}</h3>
            <div>
                <h4>{similar_heading}</h4>
                {list(entry.most_similar, "most-similar")}
            </div>
            <div>
                <h4>{different_heading}</h4>
                {list(entry.most_different, "most-different")}
            </div>
        </div>
    }
}

/// The matrix in clustering order, one row per culture.
fn matrix_table(relations: &Relations, order: &[String]) -> DataTable {
    let mut columns = vec!["country_code"];
    columns.extend(order.iter().map(String::as_str));
    let name = format!("relations-{}", relations.source.replace(':', "-"));
    let mut table = DataTable::new(name, &columns);
    let position = |code: &str| relations.country_codes.iter().position(|known| known == code);
    for row_code in order {
        let mut row = vec![Cell::text(row_code.clone())];
        row.extend(order.iter().map(|column_code| {
            Cell::Number(position(row_code).zip(position(column_code)).and_then(|(a, b)| relations.values[a][b]))
        }));
        table.rows.push(row);
    }
    table
}

fn neighbour_table(relations: &Relations) -> DataTable {
    let mut table = DataTable::new(
        format!("neighbours-{}", relations.source.replace(':', "-")),
        &["country_code", "rank", "most_similar", "similar_value", "most_different", "different_value"],
    );
    for entry in &relations.neighbours {
        for (rank, (similar, different)) in entry.most_similar.iter().zip(&entry.most_different).enumerate() {
            table.rows.push(vec![
                Cell::text(entry.country_code.clone()),
                Cell::Number(Some(rank as f64 + 1.0)),
                Cell::text(similar.country_code.clone()),
                Cell::Number(Some(similar.value)),
                Cell::text(different.country_code.clone()),
                Cell::Number(Some(different.value)),
            ]);
        }
    }
    table
}
