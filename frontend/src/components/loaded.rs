//! A request's outcome as a view: a loading line, the error, or what the page renders.

use leptos::prelude::*;

/// A request's outcome: a loading line, the error, or the view.
pub fn loaded<T: Clone + Send + Sync + 'static, V: IntoView + 'static>(
    resource: LocalResource<Result<T, String>>,
    render: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView {
    move || match resource.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        Some(Err(message)) => view! { <p class="error">{message}</p> }.into_any(),
        Some(Ok(value)) => render(value).into_any(),
    }
}
