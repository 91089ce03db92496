//! The review page: one instance at a time with everything needed to judge it, decided with keys
//! or buttons (a accept, x reject, an option's number changes the answer, e edit, f flag, space
//! skip, backspace undo); pending / submitted / discarded queues; agreement and settings for
//! collaborators. The parts: [`reviewing`] (the queue and the actions), [`instance`] (one
//! instance), [`agreement`] (the collaborators' panel), [`keys`] (the keyboard, pure).

mod agreement;
mod instance;
mod keys;
mod reviewing;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use shared::auth::{AccessMode, Me};

use crate::api;
use crate::components::loaded;
use crate::components::login::{LoggedIn, LoginForm};
use crate::components::reviewer::{store_reviewer_name, stored_reviewer_name};
use reviewing::Reviewing;

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
            (AccessMode::Accounts, None) => view! { <LoginForm me=me_resource purpose="review" /> }.into_any(),
            (AccessMode::Accounts, Some(user)) => {
                let collaborator = user.role.is_collaborator();
                let username = user.username.clone();
                view! {
                    <LoggedIn user=user me=me_resource label="Reviewing as" testid="reviewer" />
                    <Reviewing reviewer=username open_mode=false collaborator=collaborator />
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
