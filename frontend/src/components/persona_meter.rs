//! The persona meter of a run (`GET /api/persona-meter`): one panel per culture-aware variant the
//! run answered beside its unaware answers — how much the persona moved the answers, and whether
//! toward each culture's people (the change of the paper's metric and of 1 − JSD with 95 %
//! bootstrap intervals, beside a uniform answerer).

use leptos::prelude::*;
use shared::analysis::PersonaMeter;
use shared::PromptVariant;

use crate::api;
use crate::components::encode_uri_component;

fn percent(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.1} %", 100.0 * v))
}

fn signed(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:+.2}"))
}

/// Panels for each aware variant of `variants` when the run also answered unaware.
#[component]
pub fn PersonaMeters(run_id: i64, variants: Vec<PromptVariant>) -> impl IntoView {
    let aware: Vec<PromptVariant> = variants.iter().copied().filter(|v| *v != PromptVariant::Unaware).collect();
    let comparable = variants.contains(&PromptVariant::Unaware) && !aware.is_empty();
    comparable.then(|| {
        view! {
            <h2>"Persona meter"</h2>
            <p class="hint">"Does the culture persona move the answers, and toward that culture's people? Δ: culture-aware minus unaware, on the same questions."</p>
            {aware.into_iter().map(|variant| view! { <PersonaMeterPanel run_id variant /> }).collect_view()}
        }
    })
}

#[component]
fn PersonaMeterPanel(run_id: i64, variant: PromptVariant) -> impl IntoView {
    let path = format!("/persona-meter?run={run_id}&variant={}", encode_uri_component(variant.label()));
    let meter = LocalResource::new(move || {
        let path = path.clone();
        async move { api::get::<PersonaMeter>(&path).await }
    });
    move || {
        match meter.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        // A run still answering, or without answers of this variant yet.
        Some(Err(message)) => view! { <p class="muted">{variant.label()} ": " {message}</p> }.into_any(),
        Some(Ok(meter)) => view! {
            <section class="persona-meter" data-testid="persona-meter" data-variant=meter.variant_label.clone()>
                <h3>{meter.variant_label.clone()}</h3>
                <p>
                    {format!(
                        "{} pairs · first option {} unaware, {} aware · aware ≠ unaware {} · mean TV {} · mean Δ score {} · mean Δ 1 − JSD {}",
                        meter.pairs,
                        percent(meter.first_option_unaware),
                        percent(meter.first_option_aware),
                        percent(meter.changed),
                        meter.mean_total_variation.map_or("–".into(), |v| format!("{v:.4}")),
                        signed(meter.mean_delta_score),
                        signed(meter.mean_delta_one_minus_jsd),
                    )}
                </p>
                <table>
                    <thead><tr>
                        <th>"culture"</th><th>"questions"</th><th>"changed"</th><th>"unaware"</th><th>"aware"</th>
                        <th>"Δ score [95 %]"</th><th>"uniform"</th><th>"Δ 1 − JSD [95 %]"</th><th>"uniform 1 − JSD"</th>
                    </tr></thead>
                    <tbody>
                        {meter.cultures.iter().map(|c| {
                            let jsd = match (c.delta_one_minus_jsd, c.delta_one_minus_jsd_interval) {
                                (Some(d), Some(i)) => format!("{d:+.2} [{:+.2}, {:+.2}]", i.low, i.high),
                                _ => "–".into(),
                            };
                            view! {
                                <tr>
                                    <td>{c.country_code.clone()}</td>
                                    <td>{c.questions}</td>
                                    <td>{percent(Some(c.changed))}</td>
                                    <td>{format!("{:.2}", c.unaware_score)}</td>
                                    <td>{format!("{:.2}", c.aware_score)}</td>
                                    <td>{format!("{:+.2} [{:+.2}, {:+.2}]", c.delta_score, c.delta_score_interval.low, c.delta_score_interval.high)}</td>
                                    <td>{format!("{:.2}", c.uniform_score)}</td>
                                    <td>{jsd}</td>
                                    <td>{c.uniform_one_minus_jsd.map_or("–".into(), |v| format!("{v:.2}"))}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
        .into_any(),
    }
    }
}
