//! Runs for collaborators: the list, a form that starts a run, and each run at its own URL with
//! live stage progress, the log and the loss curve (server-sent events), cancel and resume.

use std::collections::BTreeMap;

use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use shared::api::Page;
use shared::{
    AnswerMode, Calibration, Culture, ModelListing, PersonaPlacement, PromptVariant, QuestionSelection,
    RemoteEngineConfig, RemoteEngineListing, Run, RunConfig, RunEvent, RunStatus, ScoringFormulation, Stage, Topic,
    TrainingConfig, TrainingMode,
};
use wasm_bindgen::prelude::*;

use crate::api;
use crate::components::loaded;
use crate::components::persona_meter::PersonaMeters;
use crate::components::run_files::RunFiles;

/// The stages a run can be launched with from the browser in this version.
const LAUNCHABLE_STAGES: [Stage; 6] =
    [Stage::Generate, Stage::Answer, Stage::Collect, Stage::Export, Stage::Train, Stage::Evaluate];
const DEFAULT_QUESTIONS_PER_TOPIC: u32 = 10;

#[component]
pub fn RunsPage() -> impl IntoView {
    let runs = LocalResource::new(|| api::get::<Page<Run>>("/runs?limit=100"));
    view! {
        <h1>"Runs"</h1>
        <NewRunForm />
        <h2>"All runs"</h2>
        {loaded(runs, |page| {
            view! {
                <table class="runs" data-testid="runs">
                    <thead>
                        <tr><th>"#"</th><th>"Name"</th><th>"Model"</th><th>"Stages"</th><th>"Status"</th><th>"Created"</th></tr>
                    </thead>
                    <tbody>
                        {page.items.into_iter().map(|run| {
                            let href = format!("/runs/{}", run.run_id);
                            let stages = run.config.stages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                            view! {
                                <tr class="run">
                                    <td><a href=href.clone()>{run.run_id}</a></td>
                                    <td><a href=href>{run.config.name.clone()}</a></td>
                                    <td>{run.config.model.clone().unwrap_or_else(|| "default".into())}</td>
                                    <td>{stages}</td>
                                    <td class=format!("status {}", run.status.as_str())>{run.status.as_str()}</td>
                                    <td>{run.created_at.clone()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }
        })}
    }
}

/// A checkbox list bound to a set of values.
fn toggle<T: Clone + PartialEq + Send + Sync + 'static>(
    selected: RwSignal<Vec<T>>,
    value: T,
) -> impl Fn(leptos::ev::Event) {
    move |_| {
        selected.update(|values| {
            if let Some(position) = values.iter().position(|v| *v == value) {
                values.remove(position);
            } else {
                values.push(value.clone());
            }
        })
    }
}

#[component]
fn NewRunForm() -> impl IntoView {
    let cultures = LocalResource::new(|| api::get::<Page<Culture>>("/cultures"));
    let topics = LocalResource::new(|| api::get::<Page<Topic>>("/topics"));
    let models = LocalResource::new(|| api::get::<Vec<ModelListing>>("/models"));
    // The server's remote engines (`serve --engines`); none, or not ours to see: no choice shown.
    let engines =
        LocalResource::new(|| async { api::get::<Vec<RemoteEngineListing>>("/engines").await.unwrap_or_default() });
    // `None`: the in-process engine.
    let engine = RwSignal::new(None::<RemoteEngineConfig>);
    // `None`: the server's default model.
    let model = RwSignal::new(None::<String>);
    let name = RwSignal::new("small run".to_string());
    let chosen_cultures = RwSignal::new(vec!["USA".to_string(), "CHN".to_string(), "NGA".to_string()]);
    let chosen_topics = RwSignal::new(vec![0u8, 1u8]);
    let per_topic = RwSignal::new(DEFAULT_QUESTIONS_PER_TOPIC);
    let variants = RwSignal::new(vec![PromptVariant::Unaware, PromptVariant::P1]);
    let stages = RwSignal::new(vec![Stage::Answer, Stage::Collect]);
    let mode = RwSignal::new(AnswerMode::Scoring);
    let persona = RwSignal::new(PersonaPlacement::System);
    let scoring = RwSignal::new(ScoringFormulation::Digits);
    let calibration = RwSignal::new(Calibration::None);
    let question_selection = RwSignal::new(QuestionSelection::First);
    // `None`: P1, else the first culture-aware variant the run answers.
    let collect_from = RwSignal::new(None::<PromptVariant>);
    let training_mode = RwSignal::new(TrainingMode::Joint);
    let max_steps = RwSignal::new(None::<u32>);
    // `None`: the server's `--device`.
    let device = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let config = RunConfig {
            name: name.get(),
            // A remote engine names its own model and decides where it runs.
            model: if engine.read().is_some() { None } else { model.get() },
            question_set: None,
            cultures: chosen_cultures.get(),
            topics: chosen_topics.get(),
            questions_per_topic: per_topic.get(),
            variants: variants.get(),
            answer_mode: mode.get(),
            persona: persona.get(),
            // The scoring levers apply to scoring mode only (the server refuses them otherwise).
            scoring: if mode.get() == AnswerMode::Scoring { scoring.get() } else { Default::default() },
            calibration: if mode.get() == AnswerMode::Scoring { calibration.get() } else { Default::default() },
            question_selection: question_selection.get(),
            collect_from: collect_from.get().filter(|variant| variants.get().contains(variant)),
            seed: shared::DEFAULT_SEED,
            generation: Default::default(),
            training: TrainingConfig { mode: training_mode.get(), max_steps: max_steps.get(), ..Default::default() },
            adapter: None,
            device: if engine.read().is_some() { None } else { device.get() },
            engine: engine.get(),
            stages: stages.get(),
        };
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::send::<_, Run>(Method::POST, "/runs", Some(&config)).await {
                Ok(run) => navigate(&format!("/runs/{}", run.run_id), Default::default()),
                Err(message) => error.set(Some(message)),
            }
        });
    };
    view! {
        <form class="new-run" on:submit=submit data-testid="new-run">
            <h2>"Start a run"</h2>
            <label>"Name " <input type="text" name="name" prop:value=name on:input=move |e| name.set(event_target_value(&e)) /></label>
            <label>"Model "
                {loaded(models, move |listings| view! {
                    <select name="model" on:change=move |e| {
                        let chosen = event_target_value(&e);
                        model.set((!chosen.is_empty()).then_some(chosen));
                    }>
                        <option value="" selected=true>"the server's default"</option>
                        {listings.into_iter().filter(|listing| listing.installed).map(|listing| {
                            let label = if listing.default { format!("{} (default)", listing.title) } else { listing.title.clone() };
                            view! { <option value=listing.name.clone()>{label}</option> }
                        }).collect_view()}
                    </select>
                })}
            </label>
            <label>"Device "
                <select name="device" on:change=move |e| {
                    let chosen = event_target_value(&e);
                    device.set((!chosen.is_empty()).then_some(chosen));
                }>
                    <option value="" selected=true>"the server's (--device)"</option>
                    <option value="cpu">"CPU (f32)"</option>
                    <option value="cuda:0">"GPU cuda:0 (bf16)"</option>
                    <option value="cuda:1">"GPU cuda:1 (bf16)"</option>
                </select>
            </label>
            {move || engines.get().filter(|listings| !listings.is_empty()).map(|listings| {
                let offered = listings.clone();
                view! {
                    <label>"Engine "
                        <select name="engine" on:change=move |e| {
                            let chosen = event_target_value(&e);
                            engine.set(offered.iter().find(|listing| listing.name == chosen).map(|listing| listing.engine.clone()));
                        }>
                            <option value="" selected=true>"in process (the model and device above)"</option>
                            {listings.into_iter().map(|listing| {
                                let label = format!("{} ({})", listing.name, listing.engine.model);
                                view! { <option value=listing.name.clone()>{label}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                }
            })}
            <fieldset>
                <legend>"Cultures"</legend>
                {loaded(cultures, move |page| page.items.into_iter().map(|culture| {
                    let code = culture.country_code.clone();
                    let checked = { let code = code.clone(); move || chosen_cultures.read().contains(&code) };
                    view! {
                        <label class="check"><input type="checkbox" name="culture" value=code.clone() prop:checked=checked on:change=toggle(chosen_cultures, code.clone()) />{code.clone()}</label>
                    }
                }).collect_view())}
            </fieldset>
            <fieldset>
                <legend>"Topics"</legend>
                {loaded(topics, move |page| page.items.into_iter().map(|topic| {
                    let index = topic.index;
                    view! {
                        <label class="check"><input type="checkbox" name="topic" prop:checked=move || chosen_topics.read().contains(&index) on:change=toggle(chosen_topics, index) />{topic.name}</label>
                    }
                }).collect_view())}
            </fieldset>
            <label>"Questions per topic "
                <input type="number" name="questions_per_topic" min="1" prop:value=move || per_topic.get().to_string()
                    on:input=move |e| per_topic.set(event_target_value(&e).parse().unwrap_or(DEFAULT_QUESTIONS_PER_TOPIC)) />
            </label>
            <fieldset>
                <legend>"Prompt variants"</legend>
                {PromptVariant::ALL.into_iter().map(|variant| view! {
                    <label class="check"><input type="checkbox" name="variant" prop:checked=move || variants.read().contains(&variant) on:change=toggle(variants, variant) />{variant.label()}</label>
                }).collect_view()}
            </fieldset>
            <fieldset>
                <legend>"Stages"</legend>
                {LAUNCHABLE_STAGES.into_iter().map(|stage| view! {
                    <label class="check"><input type="checkbox" name="stage" prop:checked=move || stages.read().contains(&stage) on:change=toggle(stages, stage) />{stage.as_str()}</label>
                }).collect_view()}
            </fieldset>
            <Show when=move || stages.read().contains(&Stage::Train)>
                <fieldset class="training">
                    <legend>"Training (LoRA rank 8, alpha 16, lr 1e-4)"</legend>
                    <label>"Adapters "
                        <select name="training_mode" on:change=move |e| training_mode.set(if event_target_value(&e) == "specific" { TrainingMode::Specific } else { TrainingMode::Joint })>
                            <option value="joint" selected=true>"culture-joint (one adapter)"</option>
                            <option value="specific">"culture-specific (one per culture)"</option>
                        </select>
                    </label>
                    <label>"Max steps per adapter "
                        <input type="number" name="max_steps" min="1" placeholder="one epoch"
                            on:input=move |e| max_steps.set(event_target_value(&e).parse().ok()) />
                    </label>
                </fieldset>
            </Show>
            <label>"Answer mode "
                <select name="mode" on:change=move |e| mode.set(if event_target_value(&e) == "sampling" { AnswerMode::Sampling } else { AnswerMode::Scoring })>
                    <option value="scoring" selected=true>"scoring (one pass, distributions)"</option>
                    <option value="sampling">"sampling (the paper's way)"</option>
                </select>
            </label>
            <label>"Persona in "
                <select name="persona" on:change=move |e| {
                    let chosen = event_target_value(&e);
                    persona.set(PersonaPlacement::ALL.into_iter().find(|p| p.as_str() == chosen).unwrap_or_default());
                }>
                    <option value="system" selected=true>"the system turn (the paper)"</option>
                    <option value="user">"the user turn"</option>
                    <option value="both">"both turns"</option>
                </select>
            </label>
            <Show when=move || mode.get() == AnswerMode::Scoring>
                <label>"Scoring "
                    <select name="scoring" on:change=move |e| {
                        let chosen = event_target_value(&e);
                        scoring.set(ScoringFormulation::ALL.into_iter().find(|s| s.as_str() == chosen).unwrap_or_default());
                    }>
                        <option value="digits" selected=true>"option codes (the paper)"</option>
                        <option value="cloze">"option texts, per character (cloze)"</option>
                    </select>
                </label>
                <label>"Calibration "
                    <select name="calibration" on:change=move |e| {
                        let chosen = event_target_value(&e);
                        calibration.set(Calibration::ALL.into_iter().find(|c| c.as_str() == chosen).unwrap_or_default());
                    }>
                        <option value="none" selected=true>"none"</option>
                        <option value="content_free">"content-free prompt (Zhao et al. 2021)"</option>
                        <option value="permutation">"option-position prior (PriDe)"</option>
                    </select>
                </label>
            </Show>
            <label>"Questions "
                <select name="question_selection" on:change=move |e| {
                    let seeded = event_target_value(&e) == "random";
                    question_selection.set(if seeded { QuestionSelection::Random } else { QuestionSelection::First });
                }>
                    <option value="first" selected=true>"the first of each topic"</option>
                    <option value="random">"a seeded sample of each topic"</option>
                </select>
            </label>
            <label>"Instances from "
                <select name="collect_from" on:change=move |e| {
                    let chosen = event_target_value(&e);
                    collect_from.set(PromptVariant::ALL.into_iter().find(|v| v.label() == chosen));
                }>
                    <option value="" selected=true>"P1 (else the first culture-aware variant)"</option>
                    {move || variants.get().into_iter().filter(|v| v.is_culture_specific()).map(|variant| {
                        view! { <option value=variant.label()>{variant.label()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Start"</button>
            {move || error.get().map(|message| view! { <p class="error">{message}</p> })}
        </form>
    }
}

/// What the run page shows, folded from the run's events.
#[derive(Debug, Clone, Default)]
struct Progress {
    stages: BTreeMap<Stage, (u64, u64, bool)>,
    log: Vec<String>,
    losses: Vec<(u64, f64)>,
    finished: Option<RunStatus>,
}

impl Progress {
    fn apply(&mut self, event: RunEvent) {
        match event {
            RunEvent::StageStarted { stage, total } => {
                let entry = self.stages.entry(stage).or_insert((0, total, false));
                entry.1 = total;
                self.finished = None;
            }
            RunEvent::Progress { stage, done, total } => {
                let entry = self.stages.entry(stage).or_insert((0, total, false));
                *entry = (done, total, entry.2);
            }
            RunEvent::StageFinished { stage } => {
                let entry = self.stages.entry(stage).or_insert((0, 0, false));
                entry.0 = entry.1.max(entry.0);
                entry.2 = true;
            }
            RunEvent::Log { message } => self.log.push(message),
            RunEvent::Loss { step, loss } => self.losses.push((step, loss)),
            RunEvent::Finished { status } => self.finished = Some(status),
        }
    }
}

#[derive(serde::Deserialize)]
struct StreamedEvent {
    event: RunEvent,
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let run_id = move || params.read().get("run_id").and_then(|id| id.parse::<i64>().ok()).unwrap_or(0);
    let reload = RwSignal::new(0u32);
    let run = LocalResource::new(move || {
        reload.track();
        let path = format!("/runs/{}", run_id());
        async move { api::get::<Run>(&path).await }
    });
    let progress = RwSignal::new(Progress::default());
    let action_error = RwSignal::new(None::<String>);

    // Follow the run's events: the stream replays the stored ones, then sends the new ones live.
    Effect::new(move |previous: Option<Option<web_sys::EventSource>>| {
        if let Some(Some(source)) = previous {
            source.close();
        }
        reload.track();
        progress.set(Progress::default());
        let source = web_sys::EventSource::new(&format!("/api/runs/{}/stream", run_id())).ok()?;
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |message: web_sys::MessageEvent| {
            let Some(text) = message.data().as_string() else { return };
            if let Ok(streamed) = serde_json::from_str::<StreamedEvent>(&text) {
                let ended = matches!(streamed.event, RunEvent::Finished { .. });
                progress.update(|p| p.apply(streamed.event));
                if ended {
                    run.refetch();
                }
            }
        });
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let closing = source.clone();
        on_cleanup(move || closing.close());
        Some(source)
    });

    let act = move |action: &'static str| {
        let path = format!("/runs/{}/{action}", run_id());
        leptos::task::spawn_local(async move {
            match api::send::<(), Run>(Method::POST, &path, None).await {
                Ok(_) => {
                    action_error.set(None);
                    if action == "resume" {
                        reload.update(|n| *n += 1);
                    }
                }
                Err(message) => action_error.set(Some(message)),
            }
        });
    };

    view! {
        {loaded(run, move |run| {
            let config = serde_json::to_string_pretty(&run.config).unwrap_or_default();
            view! {
                <h1>"Run " {run.run_id} ": " {run.config.name.clone()}</h1>
                <p class="run-status">"Status: " <strong class="status" data-testid="run-status">{move || progress.read().finished.map(RunStatus::as_str).unwrap_or(run.status.as_str())}</strong></p>
                <div class="actions">
                    <button on:click=move |_| act("cancel")>"Cancel"</button>
                    <button on:click=move |_| act("resume")>"Resume"</button>
                    <a href=format!("/runs/compare?a={}", run.run_id)>"Compare with another run"</a>
                </div>
                <details><summary>"Configuration"</summary><pre>{config}</pre></details>
                <RunFiles run_id=run.run_id />
                {(run.status == RunStatus::Completed).then(|| view! { <PersonaMeters run_id=run.run_id variants=run.config.variants.clone() /> })}
            }
        })}
        {move || action_error.get().map(|message| view! { <p class="error">{message}</p> })}
        <h2>"Stages"</h2>
        <div class="stages" data-testid="stages">
            {move || progress.read().stages.iter().map(|(stage, (done, total, finished))| {
                let percent = if *total == 0 { if *finished { 100.0 } else { 0.0 } } else { 100.0 * *done as f64 / *total as f64 };
                view! {
                    <div class="stage" data-stage=(*stage).as_str() data-done=done.to_string() data-total=total.to_string()>
                        <span class="stage-name">{(*stage).as_str()}</span>
                        <progress max="100" value=format!("{percent:.1}")></progress>
                        <span class="stage-count">{format!("{done}/{total}")}{if *finished { " ✓" } else { "" }}</span>
                    </div>
                }
            }).collect_view()}
        </div>
        {move || (!progress.read().losses.is_empty()).then(|| view! { <h2>"Loss"</h2><LossCurve losses=progress.read().losses.clone() /> })}
        <h2>"Log"</h2>
        <pre class="log" data-testid="log">{move || progress.read().log.join("\n")}</pre>
    }
}

const CURVE_WIDTH: f64 = 600.0;
const CURVE_HEIGHT: f64 = 200.0;

#[component]
fn LossCurve(losses: Vec<(u64, f64)>) -> impl IntoView {
    let max_step = losses.iter().map(|(step, _)| *step).max().unwrap_or(1).max(1) as f64;
    let (low, high) = losses.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (_, loss)| (lo.min(*loss), hi.max(*loss)));
    let span = (high - low).max(1e-9);
    let points = losses
        .iter()
        .map(|(step, loss)| {
            format!(
                "{:.1},{:.1}",
                *step as f64 / max_step * CURVE_WIDTH,
                CURVE_HEIGHT - (loss - low) / span * CURVE_HEIGHT
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    view! {
        <svg class="loss" viewBox=format!("0 0 {CURVE_WIDTH} {CURVE_HEIGHT}") role="img" aria-label="training loss">
            <polyline points=points fill="none" stroke="currentColor" stroke-width="2" />
        </svg>
        <p class="count">{format!("loss {high:.3} → {:.3}", losses.last().map(|(_, l)| *l).unwrap_or(high))}</p>
    }
}

/// One row of the configuration diff: a field and its value in each run.
fn config_rows(a: &RunConfig, b: &RunConfig) -> Vec<(&'static str, String, String)> {
    let list = |items: &[String]| if items.is_empty() { "all".to_string() } else { items.join(", ") };
    let topics = |topics: &[u8]| {
        if topics.is_empty() {
            "all".to_string()
        } else {
            topics.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    let variants = |variants: &[PromptVariant]| variants.iter().map(|v| v.label()).collect::<Vec<_>>().join(", ");
    let stages = |stages: &[Stage]| stages.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let mode = |mode: AnswerMode| if mode == AnswerMode::Scoring { "scoring" } else { "sampling" }.to_string();
    vec![
        ("name", a.name.clone(), b.name.clone()),
        (
            "model",
            a.model.clone().unwrap_or_else(|| "default".into()),
            b.model.clone().unwrap_or_else(|| "default".into()),
        ),
        (
            "question set",
            a.question_set.clone().unwrap_or_else(|| "wvs".into()),
            b.question_set.clone().unwrap_or_else(|| "wvs".into()),
        ),
        ("cultures", list(&a.cultures), list(&b.cultures)),
        ("topics", topics(&a.topics), topics(&b.topics)),
        ("questions per topic", a.questions_per_topic.to_string(), b.questions_per_topic.to_string()),
        ("variants", variants(&a.variants), variants(&b.variants)),
        ("answer mode", mode(a.answer_mode), mode(b.answer_mode)),
        ("persona in", a.persona.as_str().to_string(), b.persona.as_str().to_string()),
        ("scoring", a.scoring.as_str().to_string(), b.scoring.as_str().to_string()),
        ("calibration", a.calibration.as_str().to_string(), b.calibration.as_str().to_string()),
        (
            "collect from",
            a.collect_from.map_or("default".into(), |v| v.label().to_string()),
            b.collect_from.map_or("default".into(), |v| v.label().to_string()),
        ),
        ("seed", a.seed.to_string(), b.seed.to_string()),
        ("stages", stages(&a.stages), stages(&b.stages)),
    ]
}

/// `/runs/compare?a=ID&b=ID`: the configuration diff and the per-culture scores side by side.
#[component]
pub fn CompareRunsPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let run_param = move |key: &'static str| query.read().get(key).and_then(|id| id.parse::<i64>().ok());
    let runs = LocalResource::new(|| api::get::<Page<Run>>("/runs?limit=200"));
    let compared = LocalResource::new(move || {
        let (a, b) = (run_param("a"), run_param("b"));
        async move {
            let (Some(a), Some(b)) = (a, b) else { return Ok(None) };
            let run_a = api::get::<Run>(&format!("/runs/{a}")).await?;
            let run_b = api::get::<Run>(&format!("/runs/{b}")).await?;
            // Runs without WVS answers have no scores; the diff still shows.
            let scores_a = api::get::<shared::analysis::RunScores>(&format!("/scores?run={a}")).await.ok();
            let scores_b = api::get::<shared::analysis::RunScores>(&format!("/scores?run={b}")).await.ok();
            Ok::<_, String>(Some((run_a, run_b, scores_a, scores_b)))
        }
    });
    let navigate = use_navigate();
    let choose = move |key: &'static str, value: String| {
        let (mut a, mut b) = (
            run_param("a").map(|v| v.to_string()).unwrap_or_default(),
            run_param("b").map(|v| v.to_string()).unwrap_or_default(),
        );
        if key == "a" {
            a = value
        } else {
            b = value
        }
        navigate(&format!("/runs/compare?a={a}&b={b}"), Default::default());
    };
    view! {
        <h1>"Compare runs"</h1>
        {loaded(runs, move |page| {
            let picker = |key: &'static str| {
                let choose = choose.clone();
                let options = page.items.iter().map(|run| {
                    let id = run.run_id.to_string();
                    let selected = run_param(key) == Some(run.run_id);
                    view! { <option value=id.clone() selected=selected>{format!("{} · {}", run.run_id, run.config.name)}</option> }
                }).collect_view();
                view! {
                    <select name=key on:change=move |e| choose(key, event_target_value(&e))>
                        <option value="">"choose a run"</option>
                        {options}
                    </select>
                }
            };
            view! { <div class="filters compare-pickers">{picker("a")}" vs "{picker("b")}</div> }
        })}
        {loaded(compared, |compared| match compared {
            None => view! { <p class="lead">"Choose two runs."</p> }.into_any(),
            Some((a, b, scores_a, scores_b)) => {
                let rows = config_rows(&a.config, &b.config).into_iter().map(|(field, left, right)| {
                    let differs = left != right;
                    view! { <tr class:differs=differs><th>{field}</th><td>{left}</td><td>{right}</td></tr> }
                }).collect_view();
                let score_of = |scores: &Option<shared::analysis::RunScores>, code: &str| {
                    scores.as_ref().and_then(|s| s.scores.iter().find(|c| c.country_code == code)).map(|c| c.score)
                };
                let codes: Vec<String> = scores_a.iter().chain(scores_b.iter()).flat_map(|s| s.scores.iter().map(|c| c.country_code.clone())).fold(Vec::new(), |mut codes, code| { if !codes.contains(&code) { codes.push(code) } codes });
                let score_rows = codes.iter().map(|code| {
                    let (left, right) = (score_of(&scores_a, code), score_of(&scores_b, code));
                    let cell = |score: Option<f64>| score.map(|s| format!("{s:.2}")).unwrap_or_else(|| "–".into());
                    let delta = left.zip(right).map(|(l, r)| format!("{:+.2}", r - l)).unwrap_or_default();
                    view! { <tr class="culture-score"><td>{code.clone()}</td><td class="num">{cell(left)}</td><td class="num">{cell(right)}</td><td class="num">{delta}</td></tr> }
                }).collect_view();
                let average = |scores: &Option<shared::analysis::RunScores>| scores.as_ref().and_then(|s| s.average).map(|a| format!("{a:.2}")).unwrap_or_else(|| "–".into());
                view! {
                    <h2>"Configuration"</h2>
                    <table class="config-diff" data-testid="config-diff">
                        <thead><tr><th></th><th>{format!("run {}", a.run_id)}</th><th>{format!("run {}", b.run_id)}</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <h2>"Alignment (the paper's score, P1 or the first variant)"</h2>
                    <table class="compare-scores" data-testid="compare-scores">
                        <thead><tr><th>"Culture"</th><th class="num">{format!("run {}", a.run_id)}</th><th class="num">{format!("run {}", b.run_id)}</th><th class="num">"Δ"</th></tr></thead>
                        <tbody>{score_rows}</tbody>
                        <tfoot><tr><th>"Average"</th><td class="num">{average(&scores_a)}</td><td class="num">{average(&scores_b)}</td><td></td></tr></tfoot>
                    </table>
                }.into_any()
            }
        })}
    }
}
