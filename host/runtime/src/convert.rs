//! Conversions between the domain's invocation types (`sundial_core::invocation`) and
//! the WIT types the bindings generate.

use crate::bindings::action::sundial::plugin::types as wit;
use serde_json::Value;
use sundial_core::invocation::{Cause, Delivery, Event, Invocation, RunError};

impl From<&Event> for wit::Event {
    fn from(e: &Event) -> wit::Event {
        wit::Event {
            id: e.id.clone(),
            kind: e.kind.clone(),
            source: e.source.clone(),
            subject: e.subject.clone(),
            time: e.time.clone(),
            data: e.data.to_string(),
        }
    }
}

impl From<&Invocation> for wit::Invocation {
    fn from(inv: &Invocation) -> wit::Invocation {
        wit::Invocation {
            run_id: inv.run_id.clone(),
            task: inv.task.clone(),
            attempt: inv.attempt,
            cause: match &inv.cause {
                Cause::Schedule(s) => wit::Cause::Schedule(s.clone()),
                Cause::Event => wit::Cause::Event,
                Cause::Manual => wit::Cause::Manual,
                Cause::Retry(n) => wit::Cause::Retry(*n),
            },
            params: inv.params.to_string(),
            event: inv.event.as_ref().map(Into::into),
        }
    }
}

impl From<&Delivery> for wit::Delivery {
    fn from(d: &Delivery) -> wit::Delivery {
        wit::Delivery {
            id: d.id.clone(),
            webhook: d.webhook.clone(),
            attempt: d.attempt,
            timestamp: d.timestamp.clone(),
            event: d.event.as_ref().map(Into::into),
            run: d.run.as_ref().map(Value::to_string),
            config: d.config.to_string(),
            template: d.template.clone(),
        }
    }
}

impl From<wit::ActionError> for RunError {
    fn from(e: wit::ActionError) -> RunError {
        match e {
            wit::ActionError::InvalidParams(m) => RunError::InvalidParams(m),
            wit::ActionError::Failed(m) => RunError::Failed(m),
            wit::ActionError::Retryable(m) => RunError::Retryable(m),
        }
    }
}
