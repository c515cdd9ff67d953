//! `echo`: returns its params and the invocation it was given. For tests and demos.
//!
//! Output: `{"params": <params>, "run_id", "task", "attempt", "cause", "event"}`.

use serde_json::{Value, json};
use sundial_sdk::{Action, ActionError, Cause, Invocation};

struct Echo;

fn cause(cause: &Cause) -> Value {
    match cause {
        Cause::Schedule(name) => json!({ "schedule": name }),
        Cause::Event => json!("event"),
        Cause::Manual => json!("manual"),
        Cause::Retry(attempt) => json!({ "retry": attempt }),
    }
}

impl Action for Echo {
    type Params = Value;
    type Output = Value;

    fn run(inv: Invocation, params: Value) -> Result<Value, ActionError> {
        let event = inv.event.as_ref().map(|e| {
            json!({
                "id": e.id, "type": e.kind, "source": e.source, "subject": e.subject,
                "time": e.time, "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
            })
        });
        Ok(json!({
            "params": params,
            "run_id": inv.run_id,
            "task": inv.task,
            "attempt": inv.attempt,
            "cause": cause(&inv.cause),
            "event": event,
        }))
    }
}

sundial_sdk::export_action!(Echo);
