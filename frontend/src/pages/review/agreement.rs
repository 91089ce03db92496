//! The collaborators' panel: agreement between reviewers and the review settings.

use gloo_net::http::Method;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::review::{Agreement, ReviewSettings};

use crate::api;
use crate::components::loaded;

#[component]
pub fn AgreementPanel(run_id: Signal<Option<i64>>, refresh: RwSignal<u32>) -> impl IntoView {
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
