//! The culture map: an Inglehart–Welzel style scatter (traditional ↔ secular-rational,
//! survival ↔ self-expression) of the 18 human cultures and a run's culture personas, with arrows
//! to another run's personas when `compare` is set. State in the URL: `run` (an id, or `none`),
//! `compare` and `gaps` (lines from each culture to its persona).

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use shared::analysis::{CultureMap, MapDimension, MapPersonas, MapPoint};

use crate::api;
use crate::components::charts::{ticks, Linear};
use crate::components::download::{Cell, DataTable, DataTableView, Download};
use crate::components::loaded;
use crate::components::runs::{all_runs, default_run_id};
use crate::components::url_with_query;

const PAGE_PATH: &str = "/map";
/// `run=none`: the human cultures alone.
const NO_RUN: &str = "none";
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 520.0;
const MARGIN: f64 = 44.0;
/// The axes always show at least ±this many standard units.
const MIN_EXTENT: f64 = 1.5;
/// Room around the outermost point, in standard units.
const PADDING: f64 = 0.3;
const POINT_RADIUS: f64 = 5.0;
const PERSONA_SIZE: f64 = 8.0;

#[derive(Debug, Clone, PartialEq)]
struct MapState {
    run: Option<String>,
    compare: Option<String>,
    gaps: bool,
}

impl MapState {
    fn href(&self) -> String {
        url_with_query(
            PAGE_PATH,
            &[
                ("run", self.run.clone()),
                ("compare", self.compare.clone()),
                ("gaps", self.gaps.then(|| "1".to_string())),
            ],
        )
    }
}

#[component]
pub fn CultureMapPage() -> impl IntoView {
    let query = use_query_map();
    let view_state = Memo::new(move |_| {
        let query = query.read();
        MapState {
            run: query.get("run"),
            compare: query.get("compare").filter(|compare| !compare.is_empty() && compare != NO_RUN),
            gaps: query.get("gaps").is_some_and(|gaps| gaps == "1"),
        }
    });
    let runs_asked = Memo::new(move |_| view_state.with(|state| (state.run.clone(), state.compare.clone())));
    let map = LocalResource::new(move || {
        let (run, compare) = runs_asked.get();
        async move {
            let run = match run {
                Some(run) if run == NO_RUN => None,
                Some(run) => Some(run),
                None => Some(default_run_id().await?.to_string()),
            };
            let pairs = [("run", run), ("compare", compare)];
            let path = url_with_query("/culture-map", &pairs);
            api::get::<CultureMap>(&path).await
        }
    });
    let runs = LocalResource::new(all_runs);
    let navigate = use_navigate();
    let go = move |href: String| navigate(&href, NavigateOptions::default());

    view! {
        <h1>"Culture map"</h1>
        <p class="lead">
            "An Inglehart–Welzel style map from the WVS items that define its two dimensions, standardised over "
            "the 18 cultures. Squares: a run's culture personas (prompt P1) placed with the human scales."
        </p>
        {loaded(map, move |map| {
            let go = go.clone();
            let persona_run = map.personas.as_ref().map(|personas| personas.run_id);
            let compare_run = map.compare.as_ref().map(|compare| compare.run_id);
            let controls = loaded(runs, move |runs| {
                let go_run = go.clone();
                let go_compare = go.clone();
                let options = move |selected: Option<i64>, none_label: &'static str| {
                    let mut views = vec![
                        view! { <option value=NO_RUN selected=selected.is_none()>{none_label}</option> }.into_any(),
                    ];
                    views.extend(runs.iter().map(|run| {
                        view! {
                            <option value=run.run_id.to_string() selected=selected == Some(run.run_id)>
                                {format!("{} · {}", run.run_id, run.config.name)}
                            </option>
                        }
                        .into_any()
                    }));
                    views
                };
                view! {
                    <div class="controls">
                        <label>
                            "Personas of "
                            <select
                                class="run"
                                on:change=move |event| {
                                    let run = event_target_value(&event);
                                    go_run(MapState { run: Some(run), ..view_state.get_untracked() }.href());
                                }
                            >
                                {options(persona_run, "no run (humans only)")}
                            </select>
                        </label>
                        <label>
                            "Arrows to "
                            <select
                                class="compare"
                                on:change=move |event| {
                                    let compare = Some(event_target_value(&event)).filter(|value| value != NO_RUN);
                                    go_compare(MapState { compare, ..view_state.get_untracked() }.href());
                                }
                            >
                                {options(compare_run, "no comparison")}
                            </select>
                        </label>
                        <a
                            class="toggle"
                            class:active=move || view_state.with(|state| state.gaps)
                            href=move || view_state.with(|state| MapState { gaps: !state.gaps, ..state.clone() }.href())
                        >
                            "Lines from culture to persona"
                        </a>
                    </div>
                }
            });
            view! {
                {controls}
                <MapFigure map=map gaps=view_state.get().gaps />
            }
        })}
    }
}

fn persona_title(personas: &MapPersonas, point: &MapPoint) -> String {
    format!(
        "{} as seen by run {} ({}): secular {:.2}, self-expression {:.2}",
        point.country_code,
        personas.run_id,
        personas.variant.label(),
        point.secular_rational,
        point.self_expression
    )
}

#[component]
fn MapFigure(map: CultureMap, gaps: bool) -> impl IntoView {
    let mut all_points: Vec<&MapPoint> = map.cultures.iter().collect();
    for personas in map.personas.iter().chain(map.compare.iter()) {
        all_points.extend(personas.points.iter());
        all_points.extend(personas.unaware.iter());
    }
    let extent = |axis: fn(&MapPoint) -> f64| {
        let low = all_points.iter().map(|point| axis(point)).fold(-MIN_EXTENT, f64::min) - PADDING;
        let high = all_points.iter().map(|point| axis(point)).fold(MIN_EXTENT, f64::max) + PADDING;
        (low, high)
    };
    let x = Linear { domain: extent(|point| point.secular_rational), range: (MARGIN, WIDTH - MARGIN / 2.0) };
    let y = Linear { domain: extent(|point| point.self_expression), range: (HEIGHT - MARGIN, MARGIN / 2.0) };
    let at = move |point: &MapPoint| (x.at(point.secular_rational), y.at(point.self_expression));

    let grid_x = ticks(x.domain.0, x.domain.1, 8)
        .into_iter()
        .map(|tick| {
            let position = x.at(tick);
            view! {
                <line class=if tick == 0.0 { "axis" } else { "grid" } x1=position x2=position y1=y.range.1 y2=y.range.0 />
                <text class="tick" x=position y=HEIGHT - MARGIN + 14.0 text-anchor="middle">{format!("{tick}")}</text>
            }
        })
        .collect_view();
    let grid_y = ticks(y.domain.0, y.domain.1, 8)
        .into_iter()
        .map(|tick| {
            let position = y.at(tick);
            view! {
                <line class=if tick == 0.0 { "axis" } else { "grid" } x1=x.range.0 x2=x.range.1 y1=position y2=position />
                <text class="tick" x=MARGIN - 6.0 y=position + 4.0 text-anchor="end">{format!("{tick}")}</text>
            }
        })
        .collect_view();

    let gap_lines = map.personas.as_ref().filter(|_| gaps).map(|personas| {
        personas
            .points
            .iter()
            .filter_map(|persona| {
                let human = map.cultures.iter().find(|culture| culture.country_code == persona.country_code)?;
                let ((x1, y1), (x2, y2)) = (at(human), at(persona));
                Some(view! { <line class="gap" x1=x1 y1=y1 x2=x2 y2=y2 /> })
            })
            .collect_view()
    });
    let arrows = map
        .arrows
        .iter()
        .map(|arrow| {
            let title = format!(
                "{}: ({:.2}, {:.2}) → ({:.2}, {:.2})",
                arrow.country_code,
                arrow.from_secular_rational,
                arrow.from_self_expression,
                arrow.to_secular_rational,
                arrow.to_self_expression
            );
            view! {
                <line
                    class="arrow"
                    x1=x.at(arrow.from_secular_rational)
                    y1=y.at(arrow.from_self_expression)
                    x2=x.at(arrow.to_secular_rational)
                    y2=y.at(arrow.to_self_expression)
                    marker-end="url(#arrowhead)"
                >
                    <title>{title}</title>
                </line>
            }
        })
        .collect_view();
    let persona_marks = |personas: &MapPersonas, class: &'static str| {
        personas
            .points
            .iter()
            .map(|point| {
                let (cx, cy) = at(point);
                let title = persona_title(personas, point);
                view! {
                    <g class=format!("{class}-group")>
                        <rect
                            class=class
                            x=cx - PERSONA_SIZE / 2.0
                            y=cy - PERSONA_SIZE / 2.0
                            width=PERSONA_SIZE
                            height=PERSONA_SIZE
                        >
                            <title>{title}</title>
                        </rect>
                        <text class="persona-label" x=cx + 6.0 y=cy + 11.0>{point.country_code.to_ascii_lowercase()}</text>
                    </g>
                }
            })
            .collect_view()
    };
    let persona_views = map.personas.as_ref().map(|personas| persona_marks(personas, "persona-point"));
    let compare_views = map.compare.as_ref().map(|compare| persona_marks(compare, "compare-point"));
    let unaware_view = map.personas.as_ref().and_then(|personas| {
        let point = personas.unaware.as_ref()?;
        let (cx, cy) = at(point);
        let path = format!("M {cx} {} L {} {cy} L {cx} {} L {} {cy} Z", cy - 7.0, cx + 7.0, cy + 7.0, cx - 7.0);
        let title = format!(
            "Run {} without a culture (unaware): secular {:.2}, self-expression {:.2}",
            personas.run_id, point.secular_rational, point.self_expression
        );
        Some(view! {
            <path class="unaware-point" d=path><title>{title}</title></path>
            <text class="persona-label" x=cx + 9.0 y=cy + 4.0>"unaware"</text>
        })
    });
    let culture_views = map
        .cultures
        .iter()
        .map(|point| {
            let (cx, cy) = at(point);
            let title = format!(
                "{} (humans): secular {:.2}, self-expression {:.2}",
                point.country_code, point.secular_rational, point.self_expression
            );
            view! {
                <g class="culture">
                    <circle class="culture-point" cx=cx cy=cy r=POINT_RADIUS><title>{title}</title></circle>
                    <text class="culture-label" x=cx + 7.0 y=cy - 5.0>{point.country_code.clone()}</text>
                </g>
            }
        })
        .collect_view();

    let coordinates = coordinates_table(&map);
    let items = items_table(&map);
    let legend_compare = map.compare.as_ref().map(|compare| {
        view! { <li><span class="swatch compare"></span>{format!("run {} ({}) — arrows end here", compare.run_id, compare.run_name)}</li> }
    });
    let legend_personas = map.personas.as_ref().map(|personas| {
        view! { <li><span class="swatch persona"></span>{format!("run {} ({}), {}", personas.run_id, personas.run_name, personas.variant.label())}</li> }
    });
    view! {
        <figure class="chart map">
            <svg class="chart culture-map" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label="Culture map">
                <defs>
                    <marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
                        <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
                    </marker>
                </defs>
                {grid_x}
                {grid_y}
                <text class="axis-label" x=WIDTH - MARGIN / 2.0 y=HEIGHT - 6.0 text-anchor="end">"secular-rational →"</text>
                <text class="axis-label" x=MARGIN y=HEIGHT - 6.0>"← traditional"</text>
                <text class="axis-label" x=MARGIN + 4.0 y=MARGIN / 2.0 + 12.0>"↑ self-expression"</text>
                <text class="axis-label" x=MARGIN + 4.0 y=HEIGHT - MARGIN - 6.0>"↓ survival"</text>
                {gap_lines}
                {arrows}
                {culture_views}
                {persona_views}
                {compare_views}
                {unaware_view}
            </svg>
            <figcaption>
                <ul class="legend">
                    <li><span class="swatch human"></span>"humans (WVS-7)"</li>
                    {legend_personas}
                    {legend_compare}
                </ul>
            </figcaption>
        </figure>
        <h2>"Coordinates"</h2>
        <DataTableView table=coordinates.clone() class="map-coordinates" />
        <Download table=coordinates />
        <h2>"Items"</h2>
        <p class="note">{map.method.clone()}</p>
        <div class="table-scroll">
            <table class="map-items">
                <thead>
                    <tr><th>"Item"</th><th>"Axis"</th><th>"Questions"</th><th>"Orientation"</th><th class="num">"Mean (oriented)"</th><th class="num">"SD"</th></tr>
                </thead>
                <tbody>
                    {map
                        .items
                        .iter()
                        .map(|item| {
                            let questions = item.question_ids.join(", ");
                            view! {
                                <tr>
                                    <td>{item.label.clone()}</td>
                                    <td>{dimension_label(item.dimension)}</td>
                                    <td>{questions}</td>
                                    <td>{item.orientation.clone()}</td>
                                    <td class="num">{format!("{:.3}", item.human_mean)}</td>
                                    <td class="num">{format!("{:.3}", item.human_std)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        <Download table=items />
    }
}

fn dimension_label(dimension: MapDimension) -> &'static str {
    match dimension {
        MapDimension::SecularRational => "traditional → secular-rational",
        MapDimension::SelfExpression => "survival → self-expression",
    }
}

/// Every culture's human place and, where present, its personas'.
fn coordinates_table(map: &CultureMap) -> DataTable {
    let mut table = DataTable::new(
        "culture-map",
        &[
            "country_code",
            "human_secular_rational",
            "human_self_expression",
            "persona_secular_rational",
            "persona_self_expression",
            "compare_secular_rational",
            "compare_self_expression",
        ],
    );
    let place = |personas: &Option<MapPersonas>, code: &str| {
        personas.as_ref().and_then(|personas| personas.points.iter().find(|point| point.country_code == code).cloned())
    };
    for culture in &map.cultures {
        let persona = place(&map.personas, &culture.country_code);
        let compare = place(&map.compare, &culture.country_code);
        table.rows.push(vec![
            Cell::text(culture.country_code.clone()),
            Cell::Number(Some(culture.secular_rational)),
            Cell::Number(Some(culture.self_expression)),
            Cell::Number(persona.as_ref().map(|point| point.secular_rational)),
            Cell::Number(persona.as_ref().map(|point| point.self_expression)),
            Cell::Number(compare.as_ref().map(|point| point.secular_rational)),
            Cell::Number(compare.as_ref().map(|point| point.self_expression)),
        ]);
    }
    table
}

fn items_table(map: &CultureMap) -> DataTable {
    let mut table = DataTable::new(
        "culture-map-items",
        &["key", "label", "dimension", "questions", "orientation", "human_mean", "human_std"],
    );
    for item in &map.items {
        table.rows.push(vec![
            Cell::text(item.key.clone()),
            Cell::text(item.label.clone()),
            Cell::text(dimension_label(item.dimension)),
            Cell::text(item.question_ids.join(" ")),
            Cell::text(item.orientation.clone()),
            Cell::Number(Some(item.human_mean)),
            Cell::Number(Some(item.human_std)),
        ]);
    }
    table
}
