//! Installed plugins: the record the store keeps for each (pure data).

use crate::grants::Grants;
use crate::limits::Limits;
use serde::{Deserialize, Serialize};

/// An installed plugin, as stored and served (the component bytes are kept apart,
/// by digest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PluginRecord {
    /// Unique name, used by tasks and webhooks.
    pub name: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// The world it implements.
    pub world: World,
    /// Size of the component, in bytes.
    pub size_bytes: u64,
    /// Its imports, as declared by the component.
    pub imports: Vec<String>,
    /// What it may do.
    pub grants: Grants,
    /// Its per-run limits.
    pub limits: Limits,
    /// Free text.
    pub description: String,
    /// True for the plugins shipped inside the binary.
    pub bundled: bool,
    /// Pinned by the operator: a bundled plugin keeps these bytes when a newer Sundial
    /// ships different ones (unpinned bundled plugins are updated on start).
    #[serde(default)]
    pub pinned: bool,
    /// When it was installed, RFC 3339.
    pub installed_at: String,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
}

/// A change to an installed plugin's settings (absent fields stay as they are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginUpdate {
    /// New grants.
    pub grants: Option<Grants>,
    /// New limits.
    pub limits: Option<Limits>,
    /// New description.
    pub description: Option<String>,
    /// Pin (or unpin) a bundled plugin's bytes across upgrades.
    pub pinned: Option<bool>,
}

impl PluginRecord {
    /// The digest without its `sha256:` prefix (the blob key).
    pub fn blob_key(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Exports `run`: the body of a task.
    Action,
    /// Exports `format`: a webhook formatter.
    Formatter,
}

impl World {
    /// The world's name as in the WIT file.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Action => "action",
            World::Formatter => "formatter",
        }
    }
}
