//! The review page: one instance at a time with everything needed to judge it, decided with keys
//! or buttons (a accept, x reject, 0–9 change the answer, e edit, f flag, space skip, backspace
//! undo); pending / submitted / discarded queues; agreement and settings for collaborators.

use gloo_net::http::Method;
use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::params::ParamsMap;
use leptos_router::NavigateOptions;
use shared::api::Page;
use shared::auth::{AccessMode, Login, Me};
use shared::review::{Agreement, InstanceDetail, InstanceItem, NewReview, ReviewSettings};
use shared::{Answer, Culture, Review, ReviewDecision, ReviewStatus, Run, Topic};
use wasm_bindgen::JsCast;

use crate::api;
use crate::app::loaded;
use crate::pages::question::{option_label, reply_text, OptionBars};

/// Where open mode keeps the reviewer's name in this browser.
const REVIEWER_STORAGE_KEY: &str = "culturespa.reviewer";
const QUEUES: [(&str, &str); 3] = [("pending", "Pending"), ("submitted", "Submitted"), ("discarded", "Discarded")];
const DEFAULT_QUEUE: &str = "pending";
const KEY_HINTS: &str = "a accept · x reject · 0–9 change answer · e edit · f flag stereotype · space skip · ⌫ undo";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The name this browser reviews under in open mode.
pub fn stored_reviewer_name() -> Option<String> {
    local_storage()?.get_item(REVIEWER_STORAGE_KEY).ok()?.filter(|name| !name.trim().is_empty())
}

fn store_reviewer_name(name: Option<&str>) {
    if let Some(storage) = local_storage() {
        // A browser that refuses storage simply asks again next time.
        let _ = match name {
            Some(name) => storage.set_item(REVIEWER_STORAGE_KEY, name),
            None => storage.remove_item(REVIEWER_STORAGE_KEY),
        };
    }
}

pub fn status_label(status: ReviewStatus) -> &'static str {
    match status {
        ReviewStatus::Pending => "pending",
        ReviewStatus::Accepted => "accepted",
        ReviewStatus::Rejected => "rejected",
        ReviewStatus::Flagged => "flagged",
        ReviewStatus::Disputed => "disputed",
    }
}

fn decision_label(decision: &ReviewDecision) -> String {
    match decision {
        ReviewDecision::Accept => "accepted".to_string(),
        ReviewDecision::Reject => "rejected".to_string(),
        ReviewDecision::ChangeAnswer { code } => format!("changed the answer to {code}"),
        ReviewDecision::FlagStereotype => "flagged as stereotyping".to_string(),
    }
}

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

#[component]
pub fn ReviewPage() -> impl IntoView {
    let me_resource = LocalResource::new(|| api::get::<Me>("/me"));
    // A link may name the reviewer (`/review?reviewer=ann`); open mode keeps it like a typed name.
    let linked_name = use_query_map()
        .with_untracked(|query| query.get("reviewer"))
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty());
    if let Some(name) = &linked_name {
        store_reviewer_name(Some(name));
    }
    let open_name = RwSignal::new(linked_name.or_else(stored_reviewer_name));
    view! {
        <h1>"Review"</h1>
        {loaded(me_resource, move |me| match (me.mode, me.user) {
            (AccessMode::Open, _) => {
                move || match open_name.get() {
                    None => view! { <NameForm open_name=open_name /> }.into_any(),
                    Some(name) => view! {
                        <p class="reviewer-line">
                            "Reviewing as " <strong data-testid="reviewer">{name.clone()}</strong>
                            " (open local mode) · "
                            <button class="link" on:click=move |_| {
                                store_reviewer_name(None);
                                open_name.set(None);
                            }>"Change name"</button>
                        </p>
                        <Reviewing reviewer=name open_mode=true collaborator=true />
                    }
                    .into_any(),
                }
            }
            .into_any(),
            (AccessMode::Accounts, None) => view! { <LoginForm me=me_resource /> }.into_any(),
            (AccessMode::Accounts, Some(user)) => {
                let collaborator = user.role.is_collaborator();
                view! {
                    <p class="reviewer-line">
                        "Reviewing as " <strong data-testid="reviewer">{user.username.clone()}</strong>
                        " (" {user.role.as_str()} ") · "
                        <button class="link" on:click=move |_| {
                            spawn_local(async move {
                                let _ = api::send::<(), Me>(Method::POST, "/logout", None).await;
                                me_resource.refetch();
                            });
                        }>"Log out"</button>
                    </p>
                    <Reviewing reviewer=user.username open_mode=false collaborator=collaborator />
                }
                .into_any()
            }
        })}
    }
}

#[component]
fn NameForm(open_name: RwSignal<Option<String>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    view! {
        <form class="name-form" on:submit=move |event| {
            event.prevent_default();
            let chosen = name.get_untracked().trim().to_string();
            if !chosen.is_empty() {
                store_reviewer_name(Some(&chosen));
                open_name.set(Some(chosen));
            }
        }>
            <p>"No accounts on this server: reviews are kept under the name you give (asked once, kept in this browser)."</p>
            <label>"Your name " <input name="reviewer" required bind:value=name autofocus /></label>
            <button type="submit">"Start reviewing"</button>
        </form>
    }
}

#[component]
fn LoginForm(me: LocalResource<Result<Me, String>>) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    view! {
        <form class="login-form" on:submit=move |event| {
            event.prevent_default();
            let login = Login { username: username.get_untracked(), password: password.get_untracked() };
            spawn_local(async move {
                match api::send::<_, Me>(Method::POST, "/login", Some(&login)).await {
                    Ok(_) => me.refetch(),
                    Err(message) => error.set(message),
                }
            });
        }>
            <p>"Log in to review."</p>
            <label>"Username " <input name="username" autocomplete="username" bind:value=username /></label>
            <label>"Password " <input name="password" type="password" autocomplete="current-password" bind:value=password /></label>
            <button type="submit">"Log in"</button>
            {move || (!error.get().is_empty()).then(|| view! { <p class="error">{error.get()}</p> })}
        </form>
    }
}

/// What the page shows: the queue's size, where in it, and the instance (none when it is empty).
#[derive(Debug, Clone)]
struct Current {
    total: u64,
    position: Option<u32>,
    detail: Option<InstanceDetail>,
}

#[component]
fn Reviewing(reviewer: String, open_mode: bool, collaborator: bool) -> impl IntoView {
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
            let filters = api::query_string(&[
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
            let latest = format!("/reviews?limit=1&newest_first=true&{}", api::query_string(&[("reviewer", name)]));
            let review = match api::get::<Page<Review>>(&latest).await.map(|page| page.items.into_iter().next()) {
                Ok(Some(review)) => review,
                Ok(None) => return message.set("Nothing to undo".to_string()),
                Err(error) => return message.set(error),
            };
            let path = format!("/reviews/{}?{}", review.review_id, api::query_string(&[("reviewer", owner)]));
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

    let keys = window_event_listener(ev::keydown, move |event: web_sys::KeyboardEvent| {
        if event.ctrl_key() || event.meta_key() || event.alt_key() {
            return;
        }
        if typing_in_a_field(&event) {
            if event.key() == "Escape" {
                editing.set(false);
            }
            return;
        }
        let key = event.key();
        let handled = match key.as_str() {
            "a" => {
                decide(ReviewDecision::Accept, None);
                true
            }
            "x" => {
                decide(ReviewDecision::Reject, None);
                true
            }
            "f" => {
                decide(ReviewDecision::FlagStereotype, None);
                true
            }
            "e" => {
                start_edit();
                true
            }
            " " => {
                skip();
                true
            }
            "Backspace" => {
                undo();
                true
            }
            digit => match digit.parse::<u32>() {
                Ok(code) if digit.len() == 1 => {
                    change_answer(code);
                    true
                }
                _ => false,
            },
        };
        if handled {
            event.prevent_default();
        }
    });
    on_cleanup(move || keys.remove());

    let queue_link = move |name: &str| {
        let mut pairs = vec![("queue", name.to_string()), ("culture", culture())];
        if let Some(run_id) = run_id() {
            pairs.insert(0, ("run", run_id.to_string()));
        }
        format!("/review?{}", api::query_string(&pairs))
    };
    // A new queue, run or culture starts from its beginning.
    Effect::new(move |_| {
        let _ = (queue(), culture(), run_id());
        offset.set(0);
    });

    let navigate = use_navigate();
    let choose_run = move |run: String| {
        let pairs = [("run", run), ("queue", query.with_untracked(queue_of)), ("culture", culture())];
        navigate(&format!("/review?{}", api::query_string(&pairs)), NavigateOptions::default());
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
        <div class="edit-box" class:open=move || editing.get()>
            <form on:submit=move |event| {
                event.prevent_default();
                let text = edit_text.get_untracked().trim().to_string();
                if !text.is_empty() {
                    decide(ReviewDecision::Accept, Some(text));
                }
            }>
                <label>"Edited answer " <input name="edited_output" node_ref=edit_input bind:value=edit_text /></label>
                <button type="submit">"Save edit (Enter)"</button>
                <button type="button" on:click=move |_| editing.set(false)>"Cancel (Esc)"</button>
            </form>
        </div>
        <div class="review-actions">
            <input class="note" name="note" placeholder="Note (optional)" bind:value=note />
            <div class="buttons">
                <button class="accept" on:click=move |_| decide(ReviewDecision::Accept, None)>"Accept " <kbd>"a"</kbd></button>
                <button class="reject" on:click=move |_| decide(ReviewDecision::Reject, None)>"Reject " <kbd>"x"</kbd></button>
                <button on:click=move |_| start_edit()>"Edit " <kbd>"e"</kbd></button>
                <button class="flag" on:click=move |_| decide(ReviewDecision::FlagStereotype, None)>"Flag stereotype " <kbd>"f"</kbd></button>
                <button on:click=move |_| skip()>"Skip " <kbd>"space"</kbd></button>
                <button on:click=move |_| undo()>"Undo " <kbd>"⌫"</kbd></button>
            </div>
        </div>
        {collaborator.then(|| view! { <AgreementPanel run_id=Signal::derive(run_id) refresh=refresh /> })}
    }
}

fn typing_in_a_field(event: &web_sys::KeyboardEvent) -> bool {
    event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|element| matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

#[component]
fn InstanceView(
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
    let question_href = format!("/questions/{}?run={}", api::encode(&instance.question_id), instance.run_id);
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

#[component]
fn AgreementPanel(run_id: Signal<Option<i64>>, refresh: RwSignal<u32>) -> impl IntoView {
    let agreement = LocalResource::new(move || {
        refresh.track();
        let run_id = run_id.get();
        async move {
            match run_id {
                Some(run_id) => api::get::<Agreement>(&format!("/runs/{run_id}/agreement")).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let settings = LocalResource::new(move || {
        let run_id = run_id.get();
        async move {
            match run_id {
                Some(run_id) => api::get::<ReviewSettings>(&format!("/runs/{run_id}/review-settings")).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let reviewers_wanted = RwSignal::new(String::new());
    let settings_message = RwSignal::new(String::new());
    let save = move |_| {
        let Some(run_id) = run_id.get_untracked() else { return };
        let Ok(count) = reviewers_wanted.get_untracked().trim().parse::<u32>() else {
            settings_message.set("a whole number of reviewers".to_string());
            return;
        };
        let body = ReviewSettings { reviewers_per_instance: count };
        spawn_local(async move {
            let path = format!("/runs/{run_id}/review-settings");
            match api::send::<_, ReviewSettings>(Method::PUT, &path, Some(&body)).await {
                Ok(saved) => {
                    settings_message
                        .set(format!("Each instance now needs {} reviewer(s)", saved.reviewers_per_instance));
                    settings.refetch();
                    refresh.update(|count| *count += 1);
                }
                Err(error) => settings_message.set(error),
            }
        });
    };
    let percent = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |value| format!("{:.1} %", 100.0 * value));
    let kappa = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |value| format!("{value:.3}"));
    view! {
        <section class="agreement" data-testid="agreement">
            <h2>"Agreement between reviewers"</h2>
            {loaded(agreement, move |agreement| match agreement {
                None => ().into_any(),
                Some(agreement) => view! {
                    <table class="agreement-table">
                        <tr><th>"Reviewers"</th><td>{agreement.reviewers.join(", ")}</td></tr>
                        <tr><th>"Instances with ≥ 2 reviews"</th><td>{agreement.instances}</td></tr>
                        <tr><th>"Exact match"</th><td>{percent(agreement.exact_match_rate)}</td></tr>
                        <tr><th>"Cohen's κ (2 reviewers)"</th><td>{kappa(agreement.cohen_kappa)}</td></tr>
                        <tr><th>"Fleiss' κ"</th><td>{kappa(agreement.fleiss_kappa)}</td></tr>
                    </table>
                }
                .into_any(),
            })}
            <form class="settings" on:submit=move |event| {
                event.prevent_default();
                save(());
            }>
                <label>
                    "Reviewers per instance "
                    <input
                        name="reviewers_per_instance"
                        type="number"
                        min="1"
                        max="100"
                        prop:value=move || {
                            settings.get().and_then(Result::ok).flatten().map(|settings| settings.reviewers_per_instance.to_string()).unwrap_or_default()
                        }
                        on:input=move |event| reviewers_wanted.set(event_target_value(&event))
                    />
                </label>
                <button type="submit">"Save"</button>
                <span class="muted">{move || settings_message.get()}</span>
            </form>
        </section>
    }
}
