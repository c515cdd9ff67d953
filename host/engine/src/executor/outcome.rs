//! What an attempt's end produces besides the run itself: the `sundial.run.*` event,
//! the events its plugin emitted, and webhook deliveries (the task's own and those it
//! notifies), all committed with the run in one transaction.

use super::{Executor, now};
use crate::outbox::Committed;
use sundial_core::run::{Run, RunStatus};
use sundial_runtime as runtime;
use sundial_store::StoreError;

/// What a finished attempt brings besides its result: the plugin's name and the
/// events it emitted, and webhook deliveries the run queues (a webhook-action task).
#[derive(Default)]
pub(super) struct Extras {
    pub(super) plugin: String,
    pub(super) events: Vec<runtime::EmittedEvent>,
    pub(super) deliveries: Vec<sundial_store::webhooks::Delivery>,
}

impl Executor {
    /// The events an attempt's end produces: one about the run (`kind`, carrying the
    /// run's deliveries: its own and the notified webhooks') and those its plugin
    /// emitted, each planned through the outbox. An emitted
    /// event the router holds back (depth, chain budget, full queue) is noted in the
    /// run's log, so the run shows why what it emitted started nothing.
    pub(super) fn run_events(
        &self,
        run: &mut Run,
        kind: &str,
        Extras {
            plugin,
            events: emitted,
            deliveries,
        }: Extras,
    ) -> Result<Vec<sundial_store::events::Planned>, StoreError> {
        let depth = run.depth + 1;
        let chain = Some(run.chain().to_string());
        let stamp = now();
        let mut data = serde_json::json!({
            "run": run.id,
            "task": run.task_name,
            "task_id": run.task_id,
            "status": run.status.as_str(),
            "attempt": run.attempt,
            "cause": run.cause,
            "error": run.error,
            "not_before": run.not_before,
        });
        if let Some(out) = &run.output
            && sundial_core::json::fits(out, 64 * 1024)
        {
            data["output"] = out.clone();
        }
        let run_id = run.id.clone();
        let origin = |queued_with| crate::router::Origin {
            depth,
            caused_by: Some(run_id.clone()),
            root: chain.clone(),
            queued_with,
        };
        let mut planned = vec![self.inner.outbox.plan(
            sundial_core::event::internal(kind, &run.task_name, data, &stamp),
            origin(0),
        )?];
        let mut queued_with = planned[0].runs.len();
        if !deliveries.is_empty() {
            let run_json = serde_json::to_value(&*run).ok();
            for mut d in deliveries {
                d.run = run_json.clone();
                planned[0].deliveries.push(d);
            }
        }
        let notify = self.notify_deliveries(run, depth)?;
        planned[0].deliveries.extend(notify);
        for e in emitted {
            let mut event = sundial_core::event::internal(&e.kind, "", e.data, &stamp);
            event.source = format!("{}{plugin}", sundial_core::event::PLUGIN_SOURCE_PREFIX);
            event.subject = e.subject;
            let p = self.inner.outbox.plan(event, origin(queued_with))?;
            queued_with += p.runs.len();
            if let Some(why) = &p.record.stopped {
                let at_ms = run.log.lines.last().map(|l| l.at_ms).unwrap_or(0);
                run.log.lines.push(sundial_core::log::LogLine {
                    at_ms,
                    level: sundial_core::log::Level::Warn,
                    origin: sundial_core::log::Origin::Host,
                    message: format!("emitted event {} ({}): {why}", p.record.seq, p.record.event.kind),
                });
            }
            planned.push(p);
        }
        Ok(planned)
    }

    /// Deliveries of a run that just ended to the webhooks its task notifies: the task
    /// as it is now (read again, so a task deleted or a notification removed during the
    /// run is honoured).
    fn notify_deliveries(
        &self,
        run: &Run,
        depth: u32,
    ) -> Result<Vec<sundial_store::webhooks::Delivery>, StoreError> {
        use sundial_core::task::NotifyOn;
        let ending = match run.status {
            RunStatus::Succeeded => NotifyOn::Succeeded,
            RunStatus::Queued | RunStatus::Running | RunStatus::Cancelled | RunStatus::Skipped => {
                return Ok(Vec::new());
            }
            _ => NotifyOn::Failed,
        };
        let Some(task) = self.inner.store.task(&run.task_id)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for n in task.spec.notify.iter().filter(|n| n.on.contains(&ending)) {
            match self.inner.store.webhook(&n.webhook)? {
                Some(hook) if hook.spec.enabled => {
                    let mut d = sundial_store::webhooks::Delivery::queued(&hook, "run", depth);
                    d.root = Some(run.chain().to_string());
                    d.run = serde_json::to_value(run).ok();
                    out.push(d);
                }
                _ => {
                    tracing::warn!(task = %task.spec.name, webhook = %n.webhook, "notify: the webhook is missing or disabled")
                }
            }
        }
        Ok(out)
    }

    /// Save a run with its events in one commit, then dispatch what they started (and
    /// the run itself when it is queued again for a retry).
    pub(super) async fn save_with_events(
        &self,
        run: Run,
        events: Vec<sundial_store::events::Planned>,
    ) -> Result<Run, StoreError> {
        let store = &self.inner.store;
        let committed = self
            .inner
            .outbox
            .commit(async {
                let (run, stored) = store.save_run_with_events(run, events).await?;
                let again = (run.status == RunStatus::Queued).then(|| run.clone());
                Ok(Committed::new(run)
                    .events(stored)
                    .runs(again.into_iter().collect()))
            })
            .await?;
        Ok(committed.value)
    }
}
