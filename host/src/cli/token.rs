//! `sundial token ...`: API tokens. List, create (`--write-file` keeps the secret off
//! the terminal), revoke on the daemon; `reset` works on a stopped daemon's data
//! directory and writes a new admin token when the old one is lost.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, columns, text};
use super::noun::q;
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};
use sundial_store::prelude::*;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// List tokens (never their secrets).
    List,
    /// Create a token; its secret is printed once (or written to --write-file).
    Create {
        name: String,
        /// admin, operator, viewer or ingest.
        #[arg(long)]
        role: String,
        /// Write the secret to this new file (mode 0600) instead of printing it.
        #[arg(long, value_name = "PATH")]
        write_file: Option<PathBuf>,
    },
    /// Revoke a token (by name or id).
    Revoke {
        /// Token name or id.
        name: String,
    },
    /// With the daemon stopped: make a new admin token and write it to DATA/admin.token
    /// (the token that file held before is revoked).
    Reset {
        /// The data directory [default: $SUNDIAL_DATA, else sundial-data].
        #[arg(long, env = "SUNDIAL_DATA")]
        data: Option<PathBuf>,
    },
}

/// A new file only its owner can read.
fn new_private(path: &Path) -> Result<std::fs::File, Failure> {
    sundial_store::backup::new_private_file(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            " (it exists; choose another path or remove it)"
        } else {
            ""
        };
        (EXIT_USAGE, format!("--write-file {}: {e}{hint}", path.display()))
    })
}

pub(crate) async fn token(remote: &Remote, cmd: TokenCommand) -> Result<(), Failure> {
    match cmd {
        TokenCommand::List => {
            let v = remote.call("GET", "/v1/tokens", None).await?;
            remote.print(&v, |v| {
                columns(
                    v,
                    "tokens",
                    &[
                        ("NAME", "name"),
                        ("ROLE", "role"),
                        ("CREATED", "created_at"),
                        ("ID", "id"),
                    ],
                )
            });
        }
        TokenCommand::Create {
            name,
            role,
            write_file,
        } => {
            // The file is made before the token, so a path that cannot be written never
            // leaves a token whose secret nobody saw.
            let mut file = match &write_file {
                Some(path) => Some(new_private(path)?),
                None => None,
            };
            let answer = remote
                .call("POST", "/v1/tokens", Some(&json!({"name": name, "role": role})))
                .await;
            let mut v = match answer {
                Ok(v) => v,
                Err(e) => {
                    if let Some(path) = &write_file {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(e);
                }
            };
            match write_file {
                Some(path) => {
                    use std::io::Write;
                    let secret = v["secret"].as_str().unwrap_or_default().to_string();
                    if let Some(f) = file.as_mut() {
                        f.write_all(format!("{secret}\n").as_bytes())
                            .and_then(|_| f.sync_all())
                            .map_err(|e| {
                                (
                                    EXIT_USAGE,
                                    format!(
                                        "--write-file {}: {e}; the token was made, its secret: {secret}",
                                        path.display()
                                    ),
                                )
                            })?;
                    }
                    if let Some(o) = v.as_object_mut() {
                        o.remove("secret");
                        o.insert("secret_file".into(), json!(path.display().to_string()));
                    }
                    remote.print(&v, |t| {
                        format!(
                            "created {} token {}; its secret is in {} (mode 0600)\n",
                            text(&t["role"]),
                            text(&t["name"]),
                            path.display()
                        )
                    });
                }
                None => remote.print(&v, |t| {
                    format!(
                        "created {} token {}; its secret (shown once):\n{}\n",
                        text(&t["role"]),
                        text(&t["name"]),
                        text(&t["secret"])
                    )
                }),
            }
        }
        TokenCommand::Revoke { name } => {
            remote
                .call("DELETE", &format!("/v1/tokens/{}", q(&name)), None)
                .await?;
            remote.done(
                json!({"revoked": "token", "name": name}),
                &format!("revoked token {name}"),
            );
        }
        TokenCommand::Reset { data } => {
            let dir = data.unwrap_or_else(|| PathBuf::from("sundial-data"));
            let name = reset(&dir).await?;
            println!(
                "wrote a new admin token ({name}) to {}",
                dir.join("admin.token").display()
            );
        }
    }
    Ok(())
}

/// `token reset`: a new admin token in the store of `dir` (the daemon must be stopped:
/// the store is opened exclusively) and in `dir/admin.token`; the token the file held
/// before, if it is still in the store, is revoked. Returns the new token's name.
async fn reset(dir: &Path) -> Result<String, Failure> {
    use sundial_store::tokens::{Role, TokenRecord, token_hash};
    let fail = |m: String| (EXIT_USAGE, m);
    if !dir.join("sundial.redb").is_file() {
        return Err(fail(format!(
            "{} holds no Sundial store (sundial.redb); give the daemon's --data",
            dir.display()
        )));
    }
    let store = sundial_store::Store::open(dir, 64).map_err(|e| {
        fail(format!(
            "cannot open the store in {} ({e}); is the daemon still running? Stop it first",
            dir.display()
        ))
    })?;
    let file = dir.join("admin.token");
    let old = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .filter(|t| !t.is_empty())
        .and_then(|secret| store.token_by_hash(&token_hash(&secret)).ok().flatten());
    let secret = sundial_store::tokens::new_token_secret().map_err(fail)?;
    let id = sundial_core::ids::new_id();
    // The time says when; the id's tail keeps two resets in one second apart.
    let name = format!(
        "admin-reset-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        id[id.len() - 4..].to_ascii_lowercase()
    );
    let record = TokenRecord {
        id,
        name: name.clone(),
        role: Role::Admin,
        created_at: sundial_core::timestamp::now(),
    };
    store
        .insert_token(&secret, record, "sundial token reset")
        .await
        .map_err(|e| fail(format!("storing the new token: {e}")))?;
    // The new file replaces the old one at once (a rename), never half-written.
    let tmp = dir.join("admin.token.new");
    let _ = std::fs::remove_file(&tmp);
    sundial_store::private_file::write_private(&tmp, &format!("{secret}\n"))
        .map_err(|e| fail(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &file).map_err(|e| fail(format!("writing {}: {e}", file.display())))?;
    if let Some(old) = old {
        store
            .revoke_token(&old.id, "sundial token reset")
            .await
            .map_err(|e| fail(format!("revoking the old admin token {:?}: {e}", old.name)))?;
    }
    Ok(name)
}
