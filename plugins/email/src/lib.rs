//! `email`: send one message through the daemon's SMTP relay (needs the `mail` grant,
//! which the bundled plugin has; the relay is the operator's `[mail]` config).
//!
//! Params:
//!
//! ```json
//! {"to": ["ops@example.com"], "cc": [], "bcc": [], "from": "Sundial <sundial@example.com>",
//!  "reply_to": null, "subject": "Update ${event.data.version} installed on ${event.subject}",
//!  "body": "Finished at ${event.time}.", "html": null}
//! ```
//!
//! `to`, `cc` and `bcc` take a list or one string (commas separate several); at least
//! one recipient in all. `from` defaults to the relay's `from`. `subject`, `body` and
//! `html` are templates: `${event.type}`, `${event.subject}`, `${event.data.PATH}`,
//! `${params.PATH}`, `${task.name}`, `${run.id}`, `${DATE}`, ... (see
//! `sundial_sdk::template`). Output: `{"accepted": "<the relay's answer>", "to": [...],
//! "subject": "..."}`. A bad address fails the run at once (invalid params), a refused
//! message or recipient fails it with the relay's answer, an unreachable relay or a 4xx
//! answer is retryable.

use serde::Deserialize;
use serde_json::{Value, json};
use sundial_sdk::mail::{self, MailError, Message};
use sundial_sdk::{Action, ActionError, Invocation, log, template};

/// One address or several.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Addresses {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Addresses {
    fn list(self, inv: &Invocation) -> Vec<String> {
        let raw = match self {
            Addresses::None => Vec::new(),
            Addresses::One(s) => s.split(',').map(str::to_string).collect(),
            Addresses::Many(v) => v,
        };
        raw.iter()
            .map(|a| template::render_run(a, inv, false).trim().to_string())
            .filter(|a| !a.is_empty())
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    to: Addresses,
    #[serde(default)]
    cc: Addresses,
    #[serde(default)]
    bcc: Addresses,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    html: Option<String>,
}

struct Email;

impl Action for Email {
    type Params = Params;
    type Output = Value;

    fn run(inv: Invocation, p: Params) -> Result<Value, ActionError> {
        let render = |t: &str| template::render_run(t, &inv, false);
        let message = Message {
            to: p.to.list(&inv),
            cc: p.cc.list(&inv),
            bcc: p.bcc.list(&inv),
            from: p.from.as_deref().map(render),
            reply_to: p.reply_to.as_deref().map(render),
            subject: render(&p.subject),
            body: render(&p.body),
            html: p.html.as_deref().map(render),
        };
        if message.to.is_empty() && message.cc.is_empty() && message.bcc.is_empty() {
            return Err(ActionError::InvalidParams(
                "to: at least one recipient (to, cc or bcc)".into(),
            ));
        }
        log::info(&format!(
            "sending {:?} to {}",
            message.subject,
            message.to.join(", ")
        ));
        match mail::send(&message) {
            Ok(answer) => Ok(json!({ "accepted": answer, "to": message.to, "subject": message.subject })),
            Err(e @ MailError::Invalid(_)) => Err(ActionError::InvalidParams(mail::describe(&e))),
            Err(e @ (MailError::Denied(_) | MailError::Rejected(_))) => {
                Err(ActionError::Failed(mail::describe(&e)))
            }
            Err(e @ MailError::Unavailable(_)) => Err(ActionError::Retryable(mail::describe(&e))),
        }
    }
}

sundial_sdk::export_action!(Email);
