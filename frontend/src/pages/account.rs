//! The account page: who is logged in, and their personal API tokens for scripts and the command
//! line (made here, the secret shown once; listed with when each was last used; revoked here).

use gloo_net::http::Method;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use shared::auth::{AccessMode, ApiToken, CreatedApiToken, Me, NewApiToken, Role};

use crate::api;
use crate::components::loaded;
use crate::components::login::{LoggedIn, LoginForm};

#[component]
pub fn AccountPage() -> impl IntoView {
    let me = LocalResource::new(|| api::get::<Me>("/me"));
    view! {
        <h1>"Account"</h1>
        {loaded(me, move |current| match (current.mode, current.user) {
            (AccessMode::Open, _) => view! {
                <p>
                    "This server has no accounts: it runs in open local mode, where anyone who can reach it "
                    "may review under a name. Add the first account on the server's machine with "
                    <code>"culturespa users add NAME --role admin"</code> "."
                </p>
            }
            .into_any(),
            (AccessMode::Accounts, None) => view! { <LoginForm me=me purpose="see your account" /> }.into_any(),
            (AccessMode::Accounts, Some(user)) => {
                let admin = user.role == Role::Admin;
                view! {
                    <LoggedIn user=user me=me />
                    {admin.then(|| view! { <p><A href="/admin">"Administer the accounts"</A></p> })}
                    <Tokens />
                }
                .into_any()
            }
        })}
    }
}

#[component]
fn Tokens() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let tokens = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<ApiToken>>("/tokens")
    });
    let name = RwSignal::new(String::new());
    let created = RwSignal::new(None::<CreatedApiToken>);
    let message = RwSignal::new(String::new());
    let create = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let new_token = NewApiToken { name: name.get_untracked() };
        spawn_local(async move {
            match api::send::<_, CreatedApiToken>(Method::POST, "/tokens", Some(&new_token)).await {
                Ok(token) => {
                    created.set(Some(token));
                    name.set(String::new());
                    message.set(String::new());
                    refresh.update(|count| *count += 1);
                }
                Err(error) => message.set(error),
            }
        });
    };
    let revoke = move |token: ApiToken| {
        spawn_local(async move {
            match api::send_without_reply::<()>(Method::DELETE, &format!("/tokens/{}", token.token_id), None).await {
                Ok(()) => {
                    message.set(format!("Revoked “{}”.", token.name));
                    refresh.update(|count| *count += 1);
                }
                Err(error) => message.set(error),
            }
        });
    };
    view! {
        <h2>"Personal API tokens"</h2>
        <p class="hint">
            "A token lets a script or the command line act as you: send it as "
            <code>"Authorization: Bearer csp_…"</code> ". Only its digest is stored, so the secret is shown once."
        </p>
        {move || created.get().map(|token| view! {
            <div class="secret" data-testid="token-secret">
                <p>"New token “" {token.token.name.clone()} "”: copy it now, it is not shown again."</p>
                <pre>{token.secret.clone()}</pre>
                <pre>{format!("curl -H 'Authorization: Bearer {}' {}/api/me", token.secret, origin())}</pre>
                <button class="link" on:click=move |_| created.set(None)>"I have copied it"</button>
            </div>
        })}
        {loaded(tokens, move |tokens| {
            if tokens.is_empty() {
                return view! { <p>"No tokens."</p> }.into_any();
            }
            view! {
                <table class="tokens">
                    <thead><tr><th>"Name"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                    <tbody>
                        {tokens.into_iter().map(|token| {
                            let shown = token.clone();
                            view! {
                                <tr>
                                    <td>{shown.name}</td>
                                    <td>{shown.created_at}</td>
                                    <td>{shown.last_used_at.unwrap_or_else(|| "never".to_string())}</td>
                                    <td><button on:click=move |_| revoke(token.clone())>"Revoke"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }
            .into_any()
        })}
        <form class="token-form" on:submit=create>
            <label>"Name " <input name="token-name" required placeholder="table script" bind:value=name /></label>
            <button type="submit">"Create a token"</button>
        </form>
        {move || (!message.get().is_empty()).then(|| view! { <p class="message">{message.get()}</p> })}
    }
}

/// This page's origin (`https://host:port`), for the example command.
fn origin() -> String {
    web_sys::window().and_then(|window| window.location().origin().ok()).unwrap_or_default()
}
