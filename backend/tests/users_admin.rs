//! Administering accounts: change a role, end sessions, reset a password, remove an account; from
//! the store and from the command line.

mod common;

use culturespa::store::Store;
use shared::auth::Role;

#[tokio::test]
async fn roles_sessions_passwords_and_accounts_are_administered() {
    let store = Store::in_memory().await.unwrap();
    store.add_user("ann", "hash-1", Role::Annotator).await.unwrap();
    store.create_session(store.credentials("ann").await.unwrap().unwrap().user_id, "token-1", 1).await.unwrap();
    assert_eq!(store.session_user("token-1").await.unwrap().unwrap().role, Role::Annotator);

    // A new role holds from the session's next request.
    store.set_role("ann", Role::Collaborator).await.unwrap();
    assert_eq!(store.session_user("token-1").await.unwrap().unwrap().role, Role::Collaborator);

    assert_eq!(store.revoke_sessions("ann").await.unwrap(), 1);
    assert_eq!(store.session_user("token-1").await.unwrap(), None);

    let user_id = store.credentials("ann").await.unwrap().unwrap().user_id;
    store.create_session(user_id, "token-2", 1).await.unwrap();
    store.set_password("ann", "hash-2").await.unwrap();
    assert_eq!(store.credentials("ann").await.unwrap().unwrap().password_hash, "hash-2");
    assert_eq!(store.session_user("token-2").await.unwrap(), None, "a new password ends the sessions");

    store.create_session(user_id, "token-3", 1).await.unwrap();
    store.remove_user("ann").await.unwrap();
    assert!(store.users().await.unwrap().is_empty());
    assert_eq!(store.session_user("token-3").await.unwrap(), None);
    for missing in [store.remove_user("ann").await.unwrap_err(), store.set_role("ann", Role::Admin).await.unwrap_err()]
    {
        assert!(missing.to_string().contains("user 'ann' not found"), "{missing}");
    }
}

#[test]
fn the_command_line_administers_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let users = |args: &[&str]| {
        let output = common::culturespa(dir.path())
            .arg("users")
            .args(args)
            .env("CULTURESPA_PASSWORD", "a-long-password")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    assert!(users(&["add", "ann", "--role", "annotator"]).0);
    let (ok, text) = users(&["role", "ann", "admin"]);
    assert!(ok && text.contains("ann is now admin"), "{text}");
    let (ok, text) = users(&["list"]);
    assert!(ok && text.contains("ann\tadmin"), "{text}");
    let (ok, text) = users(&["revoke", "ann"]);
    assert!(ok && text.contains("ended 0 session(s) of ann"), "{text}");
    assert!(users(&["reset-password", "ann"]).0);
    assert!(users(&["remove", "ann"]).0);
    let (ok, text) = users(&["remove", "ann"]);
    assert!(!ok && text.contains("not found"), "{text}");
}
