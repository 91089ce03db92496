//! A run's downloads on its page: the adapters it trained (a tar of each PEFT folder, ready for
//! `PeftModel.from_pretrained`) and its reviews, raw, as CSV or JSON (collaborators).

use leptos::prelude::*;
use serde::Deserialize;

use crate::api;

/// An adapter as `GET /api/runs/{id}/adapters` lists it.
#[derive(Debug, Clone, Deserialize)]
struct AdapterListing {
    name: String,
    bytes: u64,
}

#[component]
pub fn RunFiles(run_id: i64) -> impl IntoView {
    let adapters = LocalResource::new(move || async move {
        api::get::<Vec<AdapterListing>>(&format!("/runs/{run_id}/adapters")).await
    });
    view! {
        <div class="run-files" data-testid="run-files">
            {move || adapters.get().and_then(Result::ok).filter(|list| !list.is_empty()).map(|list| view! {
                <p>"Adapters: "
                    {list.into_iter().map(|adapter| view! {
                        <a class="adapter" href=format!("/api/runs/{run_id}/adapters/{}/download", adapter.name)>
                            {format!("{} ({:.1} MB)", adapter.name, adapter.bytes as f64 / 1e6)}
                        </a>
                        " "
                    }).collect_view()}
                </p>
            })}
            <p>"Reviews (collaborators): "
                <a href=format!("/api/runs/{run_id}/reviews/export?format=csv")>"CSV"</a>
                " · "
                <a href=format!("/api/runs/{run_id}/reviews/export?format=json")>"JSON"</a>
            </p>
        </div>
    }
}
