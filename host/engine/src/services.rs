//! The [`HostServices`] the daemon gives plugins, backed by the store: key-value
//! writes are durable before the plugin call returns, secrets are opened with the
//! daemon's key, mail goes to the configured SMTP relay.

use sundial_runtime::mail::{MailError, Mailer, Message};
use sundial_runtime::services::{BoxFuture, HostResult, HostServices};
use sundial_store::SharedStore;
use sundial_store::sealing::SecretKey;

/// Host services backed by the store: key-value writes are durable before the plugin
/// call returns; secrets are opened with the daemon's key (the runtime has already
/// checked that the plugin is granted the secret).
#[derive(Clone)]
pub struct StoreServices {
    /// The store.
    pub store: SharedStore,
    /// The key that opens stored secrets.
    pub key: SecretKey,
    /// The SMTP relay, when `[mail]` is configured.
    pub mailer: Option<Mailer>,
}

impl HostServices for StoreServices {
    fn kv_get<'a>(&'a self, plugin: &'a str, key: &'a str) -> HostResult<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(
            self.store.kv_get(plugin, key).map_err(|e| e.to_string()),
        ))
    }

    fn kv_set<'a>(&'a self, plugin: &'a str, key: &'a str, value: Vec<u8>) -> HostResult<'a, ()> {
        Box::pin(async move {
            self.store
                .kv_set(plugin, key, value)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn kv_delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> HostResult<'a, ()> {
        Box::pin(async move { self.store.kv_delete(plugin, key).await.map_err(|e| e.to_string()) })
    }

    fn send_mail<'a>(
        &'a self,
        plugin: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<String, MailError>> {
        Box::pin(async move {
            let Some(mailer) = &self.mailer else {
                return Err(MailError::Denied(
                    "no SMTP relay is configured on this daemon ([mail] in the config)".into(),
                ));
            };
            let password = match &mailer.config().password_secret {
                None => None,
                Some(name) => match self.secret(name).await {
                    Some(p) => Some(p),
                    None => {
                        return Err(MailError::Denied(format!(
                            "mail.password_secret: secret {name:?} does not exist (sundial secret set {name})"
                        )));
                    }
                },
            };
            tracing::debug!(plugin, "sending mail");
            mailer.send(&message, password).await
        })
    }

    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<String>> {
        let value = match self.store.secret(name) {
            Ok(Some(record)) => match self.key.open(name, &record.sealed) {
                Ok(bytes) => String::from_utf8(bytes).ok(),
                Err(e) => {
                    tracing::warn!(secret = name, "{e}");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(secret = name, "reading the secret failed: {e}");
                None
            }
        };
        Box::pin(std::future::ready(value))
    }
}
