//! The admin page: every account with its role, sessions and tokens; add an account, change a
//! role, set a new password, end an account's sessions and tokens, remove it. The server refuses
//! what would leave no admin.

use gloo_net::http::Method;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::auth::{AccessMode, Account, Me, NewUser, Revoked, Role, User, UserChange};

use crate::api;
use crate::components::loaded;
use crate::components::login::{LoggedIn, LoginForm};

#[component]
pub fn AdminPage() -> impl IntoView {
    let me = LocalResource::new(|| api::get::<Me>("/me"));
    view! {
        <h1>"Accounts"</h1>
        {loaded(me, move |current| match (current.mode, current.user) {
            (AccessMode::Open, _) => view! {
                <p>"This server has no accounts (open local mode). Add the first admin on the server's machine: "
                   <code>"culturespa users add NAME --role admin"</code> "."</p>
            }
            .into_any(),
            (AccessMode::Accounts, None) => view! { <LoginForm me=me purpose="administer the accounts" /> }.into_any(),
            (AccessMode::Accounts, Some(user)) if user.role != Role::Admin => view! {
                <LoggedIn user=user me=me />
                <p class="error">"Only an admin administers accounts."</p>
            }
            .into_any(),
            (AccessMode::Accounts, Some(user)) => view! { <LoggedIn user=user me=me /> <Accounts /> }.into_any(),
        })}
    }
}

#[component]
fn Accounts() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let accounts = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<Account>>("/users")
    });
    let message = RwSignal::new(String::new());
    // Every action reports and reloads the list.
    let done = move |outcome: Result<String, String>| {
        message.set(outcome.unwrap_or_else(|error| error));
        refresh.update(|count| *count += 1);
    };
    view! {
        {loaded(accounts, move |accounts| view! {
            <table class="accounts">
                <thead><tr>
                    <th>"User"</th><th>"Role"</th><th>"Sessions"</th><th>"API tokens"</th><th>"Created"</th><th>"New password"</th><th></th>
                </tr></thead>
                <tbody>
                    {accounts.into_iter().map(|account| view! { <AccountRow account=account done=done /> }).collect_view()}
                </tbody>
            </table>
        })}
        {move || (!message.get().is_empty()).then(|| view! { <p class="message" data-testid="admin-message">{message.get()}</p> })}
        <AddAccount done=done />
    }
}

#[component]
fn AccountRow(account: Account, done: impl Fn(Result<String, String>) + Copy + Send + Sync + 'static) -> impl IntoView {
    let username = account.username.clone();
    let path = format!("/users/{}", crate::components::encode_uri_component(&username));
    let password = RwSignal::new(String::new());
    let change = {
        let path = path.clone();
        move |change: UserChange| {
            let path = path.clone();
            spawn_local(async move {
                let outcome = api::send::<_, User>(Method::PUT, &path, Some(&change)).await;
                let password =
                    if change.password.is_some() { ", with a new password (their sessions ended)" } else { "" };
                done(outcome.map(|user| format!("{} is {}{password}", user.username, user.role.as_str())));
            });
        }
    };
    let change_role = change.clone();
    let revoke = {
        let (path, username) = (path.clone(), username.clone());
        move |_| {
            let (path, username) = (path.clone(), username.clone());
            spawn_local(async move {
                let outcome = api::send::<(), Revoked>(Method::POST, &format!("{path}/revoke"), None).await;
                done(outcome.map(|revoked| {
                    format!(
                        "Ended {} session(s) and revoked {} API token(s) of {username}",
                        revoked.sessions, revoked.api_tokens
                    )
                }));
            });
        }
    };
    let remove = {
        let (path, username) = (path.clone(), username.clone());
        move |_| {
            let (path, username) = (path.clone(), username.clone());
            spawn_local(async move {
                let outcome = api::send_without_reply::<()>(Method::DELETE, &path, None).await;
                done(outcome.map(|()| format!("Removed {username} (their reviews stay, under their name)")));
            });
        }
    };
    view! {
        <tr data-username=username.clone()>
            <td>{username.clone()}</td>
            <td>
                <select name="role" on:change=move |event| {
                    if let Some(role) = Role::parse(&event_target_value(&event)) {
                        change_role(UserChange { role: Some(role), password: None });
                    }
                }>
                    {Role::ALL.into_iter().map(|role| view! {
                        <option value=role.as_str() selected=role == account.role>{role.as_str()}</option>
                    }).collect_view()}
                </select>
            </td>
            <td>{account.sessions}</td>
            <td>{account.api_tokens}</td>
            <td>{account.created_at}</td>
            <td>
                <form class="inline" on:submit=move |event| {
                    event.prevent_default();
                    change(UserChange { role: None, password: Some(password.get_untracked()) });
                    password.set(String::new());
                }>
                    <input name="new-password" type="password" autocomplete="new-password" minlength="8" required bind:value=password />
                    <button type="submit">"Set"</button>
                </form>
            </td>
            <td>
                <button on:click=revoke>"End sessions and tokens"</button>
                " "
                <button on:click=remove>"Remove"</button>
            </td>
        </tr>
    }
}

#[component]
fn AddAccount(done: impl Fn(Result<String, String>) + Copy + Send + Sync + 'static) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Annotator);
    view! {
        <h2>"Add an account"</h2>
        <form class="add-account" on:submit=move |event| {
            event.prevent_default();
            let new_user = NewUser { username: username.get_untracked(), password: password.get_untracked(), role: role.get_untracked() };
            spawn_local(async move {
                let outcome = api::send::<_, User>(Method::POST, "/users", Some(&new_user)).await;
                if outcome.is_ok() {
                    username.set(String::new());
                    password.set(String::new());
                }
                done(outcome.map(|user| format!("Added {} ({})", user.username, user.role.as_str())));
            });
        }>
            <label>"Username " <input name="new-username" required bind:value=username /></label>
            <label>"Password " <input name="password" type="password" autocomplete="new-password" minlength="8" required bind:value=password /></label>
            <label>"Role "
                <select name="new-role" on:change=move |event| {
                    if let Some(chosen) = Role::parse(&event_target_value(&event)) {
                        role.set(chosen);
                    }
                }>
                    {Role::ALL.into_iter().map(|choice| view! {
                        <option value=choice.as_str() selected=choice == Role::Annotator>{choice.as_str()}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Add"</button>
        </form>
    }
}
