//! The plugins' key-value namespaces, persisted in redb, and the [`HostServices`]
//! the daemon gives plugins.

use super::tables::KV;
use super::{Store, StoreError};
use crate::runtime::services::{BoxFuture, HostServices};

fn kv_key(plugin: &str, key: &str) -> String {
    // Plugin names never contain '/', so the prefix is unambiguous.
    format!("{plugin}/{key}")
}

/// Host services backed by the store: key-value writes are durable before the plugin
/// call returns; secrets are opened with the daemon's key (the runtime has already
/// checked that the plugin is granted the secret).
#[derive(Clone)]
pub struct StoreServices {
    /// The store.
    pub store: Store,
    /// The key that opens stored secrets.
    pub key: crate::secrets::SecretKey,
    /// The SMTP relay, when `[mail]` is configured.
    pub mailer: Option<crate::mail::Mailer>,
}

impl HostServices for StoreServices {
    fn kv_get<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        let result = (|| -> Result<Option<Vec<u8>>, StoreError> {
            let txn = self.store.read()?;
            let Ok(t) = txn.open_table(KV) else {
                return Ok(None);
            };
            Ok(t.get(kv_key(plugin, key).as_str())?.map(|v| v.value().to_vec()))
        })()
        .map_err(|e| e.to_string());
        Box::pin(std::future::ready(result))
    }

    fn kv_set<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        let k = kv_key(plugin, key);
        Box::pin(async move {
            self.store
                .write(move |txn| {
                    txn.open_table(KV)?.insert(k.as_str(), value.as_slice())?;
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn kv_delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let k = kv_key(plugin, key);
        Box::pin(async move {
            self.store
                .write(move |txn| {
                    txn.open_table(KV)?.remove(k.as_str())?;
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn send_mail<'a>(
        &'a self,
        plugin: &'a str,
        message: crate::mail::Message,
    ) -> BoxFuture<'a, Result<String, crate::mail::MailError>> {
        Box::pin(async move {
            let Some(mailer) = &self.mailer else {
                return Err(crate::mail::MailError::Denied(
                    "no SMTP relay is configured on this daemon ([mail] in the config)".into(),
                ));
            };
            let password = match &mailer.config().password_secret {
                None => None,
                Some(name) => match self.secret(name).await {
                    Some(p) => Some(p),
                    None => {
                        return Err(crate::mail::MailError::Denied(format!(
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
