//! {{name}}: a Sundial action plugin in Rust.
//!
//! Build it with `sundial plugin build`, try it with
//! `sundial plugin run build/{{name}}.wasm --params '{"name": "Ada"}'`.

use serde::Deserialize;
use sundial_sdk::{Action, ActionError, Invocation, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "world")]
    name: String,
}

fn world() -> String {
    "world".into()
}

struct Plugin;

impl Action for Plugin {
    type Params = Params;
    type Output = serde_json::Value;

    fn run(inv: Invocation, params: Params) -> Result<Self::Output, ActionError> {
        if params.name.is_empty() {
            return Err(ActionError::InvalidParams("params.name must be a non-empty string".into()));
        }
        log::info(&format!(
            "greeting {} (run {}, attempt {})",
            params.name, inv.run_id, inv.attempt
        ));
        Ok(serde_json::json!({ "greeting": format!("hello, {}", params.name) }))
    }
}

sundial_sdk::export_action!(Plugin);
