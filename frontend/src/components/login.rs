//! The login form, and the line that says who is logged in with a way to log out.

use gloo_net::http::Method;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::auth::{Login, Me, User};

use crate::api;

/// Username and password; a successful login refetches `me`.
#[component]
pub fn LoginForm(me: LocalResource<Result<Me, String>>, purpose: &'static str) -> impl IntoView {
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
            <p>"Log in to " {purpose} "."</p>
            <label>"Username " <input name="username" autocomplete="username" bind:value=username /></label>
            <label>"Password " <input name="password" type="password" autocomplete="current-password" bind:value=password /></label>
            <button type="submit">"Log in"</button>
            {move || (!error.get().is_empty()).then(|| view! { <p class="error">{error.get()}</p> })}
        </form>
    }
}

/// "Logged in as NAME (role) · Log out" (`label` says what the page does as the user).
#[component]
pub fn LoggedIn(
    user: User,
    me: LocalResource<Result<Me, String>>,
    #[prop(default = "Logged in as")] label: &'static str,
    #[prop(default = "username")] testid: &'static str,
) -> impl IntoView {
    view! {
        <p class="reviewer-line">
            {label} " " <strong data-testid=testid>{user.username.clone()}</strong>
            " (" {user.role.as_str()} ") · "
            <button class="link" on:click=move |_| {
                spawn_local(async move {
                    let _ = api::send::<(), Me>(Method::POST, "/logout", None).await;
                    me.refetch();
                });
            }>"Log out"</button>
        </p>
    }
}
