use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

use crate::pages::{cultures::CulturesPage, questions::QuestionsPage};

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <header class="top">
                <A href="/" attr:class="brand">"CultureSPA Studio"</A>
                <nav>
                    <A href="/">"Cultures"</A>
                    <A href="/questions">"Questions"</A>
                </nav>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="error">"This page does not exist."</p> }>
                    <Route path=path!("/") view=CulturesPage />
                    <Route path=path!("/questions") view=QuestionsPage />
                </Routes>
            </main>
            <footer>
                "Data: World Values Survey wave 7 (academic, non-commercial use) and "
                <a href="https://arxiv.org/abs/2410.12971">"CultureSPA (Xu et al., 2024)"</a>
                "."
            </footer>
        </Router>
    }
}

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
