//! `culturespa users add|list|remove|role|reset-password|revoke|token`: accounts and their personal
//! API tokens. While no account exists the server runs in open local mode.

use std::path::PathBuf;

use anyhow::Context;
use culturespa::auth;
use culturespa::store::Store;
use shared::auth::Role;

/// The environment variable `users add` reads the password from without --password-stdin.
const PASSWORD_VARIABLE: &str = "CULTURESPA_PASSWORD";

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add an account; the password comes from --password-stdin or CULTURESPA_PASSWORD.
    Add {
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// List the accounts.
    List {
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Remove an account and its sessions (its reviews stay, under its name).
    Remove {
        username: String,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Change an account's role.
    Role {
        username: String,
        #[arg(value_parser = parse_role)]
        role: Role,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Set a new password (from --password-stdin or CULTURESPA_PASSWORD); ends the account's sessions.
    ResetPassword {
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// End every session of an account (it logs in again) and revoke its API tokens.
    Revoke {
        username: String,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Personal API tokens of an account, for scripts: `Authorization: Bearer csp_...`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token named NAME for USERNAME and print its secret (shown this once).
    Add {
        username: String,
        name: String,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// List an account's tokens (id, name, created, last used).
    List {
        username: String,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Revoke one token by its id.
    Revoke {
        username: String,
        token_id: i64,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

/// The password from standard input's first line, or from CULTURESPA_PASSWORD.
fn read_password(password_stdin: bool) -> anyhow::Result<String> {
    if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        std::env::var(PASSWORD_VARIABLE)
            .with_context(|| format!("no password: pass --password-stdin or set {PASSWORD_VARIABLE}"))
    }
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("'{text}': one of annotator, collaborator, admin"))
}

pub async fn run(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add { username, role, password_stdin, data_dir } => {
            auth::validate_username(&username)?;
            let password_hash = auth::hash_password(&read_password(password_stdin)?)?;
            let user = Store::open(&data_dir).await?.add_user(&username, &password_hash, role).await?;
            println!("added {} ({}); the server now asks for a login to review", user.username, user.role.as_str());
        }
        UsersCommand::List { data_dir } => {
            let users = Store::open(&data_dir).await?.users().await?;
            if users.is_empty() {
                println!("no accounts: the server runs in open local mode");
            }
            for user in users {
                println!("{}\t{}", user.username, user.role.as_str());
            }
        }
        UsersCommand::Remove { username, data_dir } => {
            Store::open(&data_dir).await?.remove_user(&username).await?;
            println!("removed {username}");
        }
        UsersCommand::Role { username, role, data_dir } => {
            let user = Store::open(&data_dir).await?.set_role(&username, role).await?;
            println!("{} is now {}", user.username, user.role.as_str());
        }
        UsersCommand::ResetPassword { username, password_stdin, data_dir } => {
            let password_hash = auth::hash_password(&read_password(password_stdin)?)?;
            Store::open(&data_dir).await?.set_password(&username, &password_hash).await?;
            println!("new password for {username}; its sessions ended");
        }
        UsersCommand::Revoke { username, data_dir } => {
            let revoked = Store::open(&data_dir).await?.revoke_credentials(&username).await?;
            println!(
                "ended {} session(s) and revoked {} API token(s) of {username}",
                revoked.sessions, revoked.api_tokens
            );
        }
        UsersCommand::Token { command } => run_token(command).await?,
    }
    Ok(())
}

async fn run_token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Add { username, name, data_dir } => {
            let name = auth::validate_token_name(&name)?;
            let secret = auth::new_api_token();
            let token =
                Store::open(&data_dir).await?.create_api_token(&username, name, &auth::token_digest(&secret)).await?;
            eprintln!("token {} ({}) of {username}; the secret is shown this once:", token.token_id, token.name);
            println!("{secret}");
        }
        TokenCommand::List { username, data_dir } => {
            let store = Store::open(&data_dir).await?;
            if store.credentials(&username).await?.is_none() {
                anyhow::bail!("user '{username}' not found");
            }
            for token in store.api_tokens(&username).await? {
                let last_used = token.last_used_at.as_deref().unwrap_or("never used");
                println!("{}\t{}\t{}\t{last_used}", token.token_id, token.name, token.created_at);
            }
        }
        TokenCommand::Revoke { username, token_id, data_dir } => {
            Store::open(&data_dir).await?.revoke_api_token(&username, token_id).await?;
            println!("revoked API token {token_id} of {username}");
        }
    }
    Ok(())
}
