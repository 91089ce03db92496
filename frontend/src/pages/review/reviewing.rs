//! Reviewing a queue: the current instance, the actions by key or button, undo, the queues.

use gloo_net::http::Method;
use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::params::ParamsMap;
use leptos_router::NavigateOptions;
use shared::api::Page;
use shared::review::{InstanceDetail, InstanceItem, NewReview};
use shared::{Culture, Review, ReviewDecision, Run, Topic};
use wasm_bindgen::JsCast;

use super::agreement::AgreementPanel;
use super::instance::InstanceView;
use super::keys::{key_action, page_handles, KeyAction};
use crate::api;
use crate::components::review_status::decision_label;
use crate::components::{loaded, query_string};

const QUEUES: [(&str, &str); 3] = [("pending", "Pending"), ("submitted", "Submitted"), ("discarded", "Discarded")];
const DEFAULT_QUEUE: &str = "pending";
const KEY_HINTS: &str =
    "a accept · x reject · option number changes the answer (Enter after 1 where there is a 10) · e edit · f flag stereotype · space skip · ⌫ undo";

/// Whether a decision keeps the instance (it then sits in the reviewer's submitted queue).
fn keeps(decision: &ReviewDecision) -> bool {
    matches!(decision, ReviewDecision::Accept | ReviewDecision::ChangeAnswer { .. })
}

fn queue_of(query: &ParamsMap) -> String {
    query
        .get("queue")
        .filter(|queue| QUEUES.iter().any(|(name, _)| name == queue))
        .unwrap_or_else(|| DEFAULT_QUEUE.to_string())
}

/// What the page shows: the queue's size, where in it, and the instance (none when it is empty).
#[derive(Debug, Clone)]
struct Current {
    total: u64,
    position: Option<u32>,
    detail: Option<InstanceDetail>,
}

#[component]
pub fn Reviewing(reviewer: String, open_mode: bool, collaborator: bool) -> impl IntoView {
    let reviewer = StoredValue::new(reviewer);
    let query = use_query_map();
    let queue = move || queue_of(&query.read());
    let culture = move || query.read().get("culture").unwrap_or_default();
    let runs = LocalResource::new(|| api::get::<Page<Run>>("/runs?limit=100"));
    let run_id = move || {
        let from_url = query.read().get("run").and_then(|run| run.parse::<i64>().ok());
        from_url.or_else(|| runs.get().and_then(Result::ok).and_then(|page| page.items.first().map(|run| run.run_id)))
    };
    let cultures = LocalResource::new(|| api::get::<Page<Culture>>("/cultures"));
    let topics = LocalResource::new(|| api::get::<Page<Topic>>("/topics"));

    let offset = RwSignal::new(0u32);
    let focus =
        RwSignal::new(query.with_untracked(|query| query.get("instance").and_then(|id| id.parse::<i64>().ok())));
    let refresh = RwSignal::new(0u32);
    let message = RwSignal::new(String::new());
    let editing = RwSignal::new(false);
    let edit_text = RwSignal::new(String::new());
    let note = RwSignal::new(String::new());
    let edit_input = NodeRef::<html::Input>::new();

    let current = LocalResource::new(move || {
        let (run_id, queue, culture, offset, focus) = (run_id(), queue(), culture(), offset.get(), focus.get());
        refresh.track();
        let reviewer = reviewer.get_value();
        async move {
            let Some(run_id) = run_id else {
                return Ok(Current { total: 0, position: None, detail: None });
            };
            if let Some(instance_id) = focus {
                let detail = api::get::<InstanceDetail>(&format!("/instances/{instance_id}")).await?;
                return Ok(Current { total: 1, position: None, detail: Some(detail) });
            }
            let filters = query_string(&[
                ("run", run_id.to_string()),
                ("status", queue),
                ("reviewer", reviewer),
                ("culture", culture),
            ]);
            let page = api::get::<Page<InstanceItem>>(&format!("/instances?limit=1&offset={offset}&{filters}")).await?;
            let detail = match page.items.first() {
                Some(item) => {
                    Some(api::get::<InstanceDetail>(&format!("/instances/{}", item.instance.instance_id)).await?)
                }
                None => None,
            };
            Ok::<_, String>(Current { total: page.total, position: Some(offset), detail })
        }
    });
    let current_detail = move || current.get_untracked().and_then(Result::ok).and_then(|current| current.detail);

    let decide = move |decision: ReviewDecision, edited_output: Option<String>| {
        let Some(detail) = current_detail() else { return };
        let instance = detail.item.instance;
        let body = NewReview {
            decision: decision.clone(),
            note: Some(note.get_untracked()).filter(|note| !note.trim().is_empty()),
            edited_output: edited_output.clone(),
            reviewer: open_mode.then(|| reviewer.get_value()),
        };
        let queue = query.with_untracked(queue_of);
        spawn_local(async move {
            let path = format!("/instances/{}/reviews", instance.instance_id);
            match api::send::<_, Review>(Method::POST, &path, Some(&body)).await {
                Ok(_) => {
                    let what = match &edited_output {
                        Some(output) => format!("edited the answer to {output}"),
                        None => decision_label(&decision),
                    };
                    message.set(format!("{} · {}: {what}", instance.question_id, instance.country_code));
                    note.set(String::new());
                    editing.set(false);
                    // The pending queue moves on by itself; the others keep what stays in them.
                    let stays = match queue.as_str() {
                        "submitted" => keeps(&decision),
                        "discarded" => !keeps(&decision),
                        _ => false,
                    };
                    if focus.get_untracked().is_some() {
                        focus.set(None);
                    } else if stays {
                        offset.update(|offset| *offset += 1);
                    }
                    refresh.update(|count| *count += 1);
                }
                Err(error) => message.set(error),
            }
        });
    };
    let skip = move || {
        editing.set(false);
        if focus.get_untracked().is_some() {
            focus.set(None);
        } else {
            offset.update(|offset| *offset += 1);
        }
        message.set("Skipped".to_string());
    };
    let undo = move || {
        let name = reviewer.get_value();
        let owner = if open_mode { name.clone() } else { String::new() };
        spawn_local(async move {
            // Asked afresh: the latest review may be seconds old.
            let latest = format!("/reviews?limit=1&newest_first=true&{}", query_string(&[("reviewer", name)]));
            let review = match api::get::<Page<Review>>(&latest).await.map(|page| page.items.into_iter().next()) {
                Ok(Some(review)) => review,
                Ok(None) => return message.set("Nothing to undo".to_string()),
                Err(error) => return message.set(error),
            };
            let path = format!("/reviews/{}?{}", review.review_id, query_string(&[("reviewer", owner)]));
            match api::send::<(), Review>(Method::DELETE, &path, None).await {
                Ok(undone) => {
                    message.set(format!("Undid: {}", decision_label(&undone.decision)));
                    focus.set(Some(undone.instance_id));
                    refresh.update(|count| *count += 1);
                }
                Err(error) => message.set(error),
            }
        });
    };
    let start_edit = move || {
        let Some(detail) = current_detail() else { return };
        edit_text.set(detail.item.instance.aware_code.to_string());
        editing.set(true);
        request_animation_frame(move || {
            if let Some(input) = edit_input.get_untracked() {
                let _ = input.focus();
                input.select();
            }
        });
    };
    let change_answer = move |code: u32| {
        let known =
            current_detail().is_some_and(|detail| detail.question.options.iter().any(|option| option.code == code));
        if known {
            decide(ReviewDecision::ChangeAnswer { code }, None);
        } else {
            message.set(format!("{code} is not an option of this question"));
        }
    };

    // Digits typed towards an option code that may go on (`1` of `10`); see `keys`.
    let typed = RwSignal::new(String::new());
    let keys = window_event_listener(ev::keydown, move |event: web_sys::KeyboardEvent| {
        if event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        let target_tag = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            .map(|element| element.tag_name())
            .unwrap_or_default();
        let key = event.key();
        if !page_handles(&key, &target_tag) {
            if key == "Escape" {
                editing.set(false);
            }
            return;
        }
        let codes: Vec<u32> = current_detail()
            .map(|detail| detail.question.options.iter().map(|option| option.code).collect())
            .unwrap_or_default();
        let action = key_action(&key, &typed.get_untracked(), &codes);
        typed.set(match &action {
            KeyAction::Typing(digits) => digits.clone(),
            _ => String::new(),
        });
        match action {
            KeyAction::Accept => decide(ReviewDecision::Accept, None),
            KeyAction::Reject => decide(ReviewDecision::Reject, None),
            KeyAction::FlagStereotype => decide(ReviewDecision::FlagStereotype, None),
            KeyAction::Edit => start_edit(),
            KeyAction::Skip => skip(),
            KeyAction::Undo => undo(),
            KeyAction::ChangeAnswer(code) => change_answer(code),
            KeyAction::Typing(digits) => message.set(format!("{digits}… (Enter for {digits}, or its next digit)")),
            KeyAction::NotAnOption(digits) => message.set(format!("{digits} is not an option of this question")),
            KeyAction::Cleared => message.set(String::new()),
            KeyAction::Ignored => return,
        }
        event.prevent_default();
    });
    on_cleanup(move || keys.remove());

    let queue_link = move |name: &str| {
        let mut pairs = vec![("queue", name.to_string()), ("culture", culture())];
        if let Some(run_id) = run_id() {
            pairs.insert(0, ("run", run_id.to_string()));
        }
        format!("/review?{}", query_string(&pairs))
    };
    // A new queue, run or culture starts from its beginning.
    Effect::new(move |_| {
        let _ = (queue(), culture(), run_id());
        offset.set(0);
    });

    let navigate = use_navigate();
    let choose_run = move |run: String| {
        let pairs = [("run", run), ("queue", query.with_untracked(queue_of)), ("culture", culture())];
        navigate(&format!("/review?{}", query_string(&pairs)), NavigateOptions::default());
    };

    view! {
        {move || {
            let choose_run = choose_run.clone();
            loaded(runs, move |runs| {
                let choose_run = choose_run.clone();
                let chosen = run_id();
                view! {
                    <label class="run-select">
                        "Run "
                        <select name="run" on:change=move |event| choose_run(event_target_value(&event))>
                            {runs
                                .items
                                .into_iter()
                                .map(|run| {
                                    let selected = Some(run.run_id) == chosen;
                                    let label = format!("{} · {}", run.run_id, run.config.name);
                                    view! { <option value=run.run_id.to_string() selected=selected>{label}</option> }
                                })
                                .collect_view()}
                        </select>
                    </label>
                }
            })
        }}
        <nav class="queues">
            {QUEUES
                .iter()
                .map(|(name, label)| {
                    let active = move || queue() == *name;
                    view! { <a href=move || queue_link(name) class:active=active>{*label}</a> }
                })
                .collect_view()}
        </nav>
        <p class="key-hints" data-testid="key-hints">{KEY_HINTS}</p>
        <p class="review-message" aria-live="polite">{move || message.get()}</p>
        {loaded(current, move |current| {
            let Some(detail) = current.detail else {
                let text = match current.position {
                    Some(position) if position > 0 => "No more instances in this queue (some were skipped).",
                    _ => "Nothing in this queue.",
                };
                return view! { <p class="empty-queue" data-testid="empty-queue">{text}</p> }.into_any();
            };
            let position = current.position.map(|position| format!("{} of {}", position + 1, current.total));
            let culture_names = cultures.get().and_then(Result::ok).map(|page| page.items).unwrap_or_default();
            let topic_names = topics.get().and_then(Result::ok).map(|page| page.items).unwrap_or_default();
            view! {
                <InstanceView
                    detail=detail
                    position=position
                    cultures=culture_names
                    topics=topic_names
                    on_code=Callback::new(change_answer)
                />
            }
            .into_any()
        })}
        <EditBox
            editing=editing
            edit_text=edit_text
            edit_input=edit_input
            on_save=Callback::new(move |text: String| decide(ReviewDecision::Accept, Some(text)))
        />
        <ActionBar
            note=note
            on_decide=Callback::new(move |decision: ReviewDecision| decide(decision, None))
            on_edit=Callback::new(move |()| start_edit())
            on_skip=Callback::new(move |()| skip())
            on_undo=Callback::new(move |()| undo())
        />
        {collaborator.then(|| view! { <AgreementPanel run_id=Signal::derive(run_id) refresh=refresh /> })}
    }
}

/// The edited answer's form (opened with `e`; Enter saves it as an accepted edit, Esc closes).
#[component]
fn EditBox(
    editing: RwSignal<bool>,
    edit_text: RwSignal<String>,
    edit_input: NodeRef<html::Input>,
    on_save: Callback<String>,
) -> impl IntoView {
    view! {
        <div class="edit-box" class:open=move || editing.get()>
            <form on:submit=move |event| {
                event.prevent_default();
                let text = edit_text.get_untracked().trim().to_string();
                if !text.is_empty() {
                    on_save.run(text);
                }
            }>
                <label>"Edited answer " <input name="edited_output" node_ref=edit_input bind:value=edit_text /></label>
                <button type="submit">"Save edit (Enter)"</button>
                <button type="button" on:click=move |_| editing.set(false)>"Cancel (Esc)"</button>
            </form>
        </div>
    }
}

/// The note and the decision buttons, each with its key.
#[component]
fn ActionBar(
    note: RwSignal<String>,
    on_decide: Callback<ReviewDecision>,
    on_edit: Callback<()>,
    on_skip: Callback<()>,
    on_undo: Callback<()>,
) -> impl IntoView {
    view! {
        <div class="review-actions">
            <input class="note" name="note" placeholder="Note (optional)" bind:value=note />
            <div class="buttons">
                <button class="accept" on:click=move |_| on_decide.run(ReviewDecision::Accept)>"Accept " <kbd>"a"</kbd></button>
                <button class="reject" on:click=move |_| on_decide.run(ReviewDecision::Reject)>"Reject " <kbd>"x"</kbd></button>
                <button on:click=move |_| on_edit.run(())>"Edit " <kbd>"e"</kbd></button>
                <button class="flag" on:click=move |_| on_decide.run(ReviewDecision::FlagStereotype)>"Flag stereotype " <kbd>"f"</kbd></button>
                <button on:click=move |_| on_skip.run(())>"Skip " <kbd>"space"</kbd></button>
                <button on:click=move |_| on_undo.run(())>"Undo " <kbd>"⌫"</kbd></button>
            </div>
        </div>
    }
}
