use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

use crate::pages::runs::{CompareRunsPage, RunPage, RunsPage};
use crate::pages::{account::AccountPage, admin::AdminPage};
use crate::pages::{culture_map::CultureMapPage, relations::RelationsPage};
use crate::pages::{cultures::CulturesPage, questions::QuestionsPage};
use crate::pages::{instances::InstancesPage, question::QuestionPage, review::ReviewPage};

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <header class="top">
                <A href="/" attr:class="brand">"CultureSPA Studio"</A>
                <nav>
                    <A href="/">"Cultures"</A>
                    <A href="/questions">"Questions"</A>
                    <A href="/instances">"Instances"</A>
                    <A href="/review">"Review"</A>
                    <A href="/relations">"Relations"</A>
                    <A href="/map">"Culture map"</A>
                    <A href="/runs">"Runs"</A>
                    <A href="/account">"Account"</A>
                </nav>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="error">"This page does not exist."</p> }>
                    <Route path=path!("/") view=CulturesPage />
                    <Route path=path!("/questions") view=QuestionsPage />
                    <Route path=path!("/questions/:id") view=QuestionPage />
                    <Route path=path!("/instances") view=InstancesPage />
                    <Route path=path!("/review") view=ReviewPage />
                    <Route path=path!("/relations") view=RelationsPage />
                    <Route path=path!("/map") view=CultureMapPage />
                    <Route path=path!("/runs") view=RunsPage />
                    <Route path=path!("/runs/compare") view=CompareRunsPage />
                    <Route path=path!("/runs/:run_id") view=RunPage />
                    <Route path=path!("/account") view=AccountPage />
                    <Route path=path!("/admin") view=AdminPage />
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
