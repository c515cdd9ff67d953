//! `sundial logs`: finished runs with their plugin logs; `--follow` keeps printing.

use super::EXIT_USAGE;
use super::client::{Failure, Remote, text};
use super::noun::q;
use serde_json::Value;
use std::time::Duration;

/// How far back (in queue time) a poll of `logs --follow` looks for runs it has not
/// seen: runs queued in the same moment as the newest one of the previous poll may be
/// stored just after it was read.
const FOLLOW_MARGIN_MS: u64 = 5_000;

/// Unfinished runs older than the margin that a poll of `logs --follow` looks up one by
/// one; with more, it pages back to the oldest of them instead.
const FOLLOW_LOOKUPS: usize = 100;

/// Print finished runs; with `follow`, keep printing new ones as they finish.
///
/// Following starts from the runs queued or running, and on every poll pages through the
/// run list (newest first) down to [`FOLLOW_MARGIN_MS`] before the newest run seen; the
/// runs still unfinished from before that are looked up one by one (up to
/// [`FOLLOW_LOOKUPS`]; beyond, the poll pages back to the oldest of them). Each run is
/// printed once, when it is first seen finished, however many finish between two polls
/// and however long one takes; memory holds only the unfinished runs and those of the
/// margin. A closed stdout (`| head`) ends it quietly.
pub(crate) async fn logs(remote: &Remote, task: Option<String>, follow: bool) -> Result<(), Failure> {
    let filter = task.map(|t| format!("&task={}", q(&t))).unwrap_or_default();
    // The first poll prints the newest finished runs, like `tail`.
    let first = remote
        .call("GET", &format!("/v1/runs?limit=100{filter}"), None)
        .await?;
    let runs: Vec<Value> = first["runs"].as_array().cloned().unwrap_or_default();
    let mut follow_state = Follow::default();
    for r in &runs {
        follow_state.known.insert(text(&r["id"]), is_finished(r));
    }
    if print_runs(remote, runs.iter().rev().filter(|r| is_finished(r))).is_err() || !follow {
        return Ok(());
    }
    let mut seeded = false;
    let mut lost: Option<u32> = None;
    loop {
        if seeded || lost.is_some() {
            // After a lost connection, wait longer each time (up to 10 s) and try again.
            let pause = lost.map_or(1, |n| (1u64 << n.min(3)).min(10));
            tokio::time::sleep(Duration::from_secs(pause)).await;
        }
        // A poll works on a copy: one broken off by a lost connection leaves the state
        // as it was, so the runs it had seen are printed by the next one.
        let mut trial = follow_state.clone();
        let step = async {
            if !seeded {
                seed(remote, &filter, &mut trial).await?;
                return Ok(None);
            }
            poll(remote, &filter, &mut trial).await.map(Some)
        };
        let result = step.await;
        if result.is_ok() {
            follow_state = trial;
            seeded = true;
        }
        match result.map(Option::unwrap_or_default) {
            Ok(finished) => {
                if lost.take().is_some() {
                    eprintln!("sundial logs: reconnected");
                }
                if print_runs(remote, finished.iter()).is_err() {
                    return Ok(());
                }
            }
            // The daemon went away (restart, network: every transport error is a
            // usage-code failure, API answers are not): keep following once it is back.
            Err((code, msg)) if code == EXIT_USAGE => {
                if lost.is_none() {
                    eprintln!("sundial logs: lost the daemon ({msg}); reconnecting");
                }
                lost = Some(lost.map_or(0, |n| n + 1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Before the first poll: every unfinished run, however old, is printed when it
/// finishes.
async fn seed(remote: &Remote, filter: &str, follow_state: &mut Follow) -> Result<(), Failure> {
    for status in ["queued", "running"] {
        let path = format!("/v1/runs?status={status}{filter}");
        let page = remote.call_all(&path, "runs").await?;
        for r in page["runs"].as_array().into_iter().flatten() {
            follow_state.known.entry(text(&r["id"])).or_insert(false);
        }
    }
    follow_state.horizon = follow_state.margin();
    Ok(())
}

/// One poll of `logs --follow`: the runs that finished since the last one, oldest
/// first.
async fn poll(remote: &Remote, filter: &str, follow_state: &mut Follow) -> Result<Vec<Value>, Failure> {
    {
        // Page down to the margin (or the horizon, if higher: below it all is handled);
        // unfinished runs older than that are looked up, unless there are many.
        let mut bound = follow_state.margin().max(follow_state.horizon.clone());
        let old_pending = follow_state.pending_before(bound.as_deref());
        if old_pending.len() > FOLLOW_LOOKUPS {
            bound = old_pending.first().cloned();
        }
        let mut finished = Vec::new();
        let mut listed = std::collections::BTreeSet::new();
        let mut cursor: Option<String> = None;
        'pages: loop {
            let page_path = match &cursor {
                Some(c) => format!("/v1/runs?limit=1000{filter}&cursor={c}"),
                None => format!("/v1/runs?limit=1000{filter}"),
            };
            let page = remote.call("GET", &page_path, None).await?;
            for r in page["runs"].as_array().cloned().unwrap_or_default() {
                let id = text(&r["id"]);
                if bound.as_ref().is_some_and(|b| id < *b) {
                    break 'pages;
                }
                listed.insert(id.clone());
                if follow_state.see(id, is_finished(&r)) {
                    finished.push(r);
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        // The old unfinished runs the pages did not reach, one by one.
        let lookups: Vec<String> = old_pending
            .into_iter()
            .filter(|id| !listed.contains(id))
            .collect();
        for id in &lookups {
            match remote.request("GET", &format!("/v1/runs/{id}"), None).await? {
                (200, r) => {
                    listed.insert(id.clone());
                    if follow_state.see(id.clone(), is_finished(&r)) {
                        finished.push(r);
                    }
                }
                (404, _) => {} // deleted by retention: forgotten below
                (status, v) => {
                    let msg = v["error"]["message"].as_str().unwrap_or("(no message)");
                    return Err((
                        super::client::EXIT_API_ERROR,
                        format!("GET /v1/runs/{id}: {status} {msg}"),
                    ));
                }
            }
        }
        follow_state.forget(&listed);
        // Oldest first (by queue time): what finished in this poll.
        finished.sort_by(|a, b| text(&a["id"]).cmp(&text(&b["id"])));
        Ok(finished)
    }
}

/// What `logs --follow` remembers between polls: run id → printed (finished) or not,
/// and the horizon below which every run not remembered was handled by an earlier poll.
#[derive(Default, Clone)]
struct Follow {
    known: std::collections::BTreeMap<String, bool>,
    horizon: Option<String>,
}

impl Follow {
    /// The unfinished runs older than `bound`, oldest first.
    fn pending_before(&self, bound: Option<&str>) -> Vec<String> {
        self.known
            .iter()
            .filter(|(id, done)| !**done && bound.is_some_and(|b| id.as_str() < b))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The id [`FOLLOW_MARGIN_MS`] before the newest known run.
    fn margin(&self) -> Option<String> {
        let newest = self.known.keys().next_back()?;
        let ms = ulid::Ulid::from_string(newest).ok()?.timestamp_ms();
        Some(ulid::Ulid::from_parts(ms.saturating_sub(FOLLOW_MARGIN_MS), 0).to_string())
    }

    /// A run listed now: true when it is to be printed (finished, and not printed yet).
    fn see(&mut self, id: String, finished: bool) -> bool {
        match self.known.get(&id) {
            Some(true) => false,
            Some(false) => {
                self.known.insert(id, finished);
                finished
            }
            // Below the horizon and not remembered: printed long ago.
            None if self.horizon.as_ref().is_some_and(|h| id < *h) => false,
            None => {
                self.known.insert(id, finished);
                finished
            }
        }
    }

    /// After a poll that listed `listed`: forget printed runs older than the margin
    /// (never listed as new again) and unfinished runs that were not listed (deleted by
    /// retention; the poll reached every unfinished run).
    fn forget(&mut self, listed: &std::collections::BTreeSet<String>) {
        let margin = self.margin();
        self.known.retain(|id, done| {
            if *done {
                margin.as_ref().is_none_or(|m| id >= m)
            } else {
                listed.contains(id)
            }
        });
        // The horizon only moves forward: runs below it were handled.
        if margin > self.horizon {
            self.horizon = margin;
        }
    }
}

fn is_finished(run: &Value) -> bool {
    !matches!(run["status"].as_str(), Some("queued" | "running"))
}

/// Print runs (with their log lines), one JSON object per line under `--json`. Errs
/// when stdout is closed.
fn print_runs<'a>(remote: &Remote, runs: impl Iterator<Item = &'a Value>) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for r in runs {
        if remote.json {
            writeln!(out, "{r}")?;
        } else {
            let err = r["error"]["message"]
                .as_str()
                .map(|e| format!(": {}", text(&Value::String(e.to_string()))))
                .unwrap_or_default();
            let id = text(&r["id"]);
            writeln!(
                out,
                "{} {} {} attempt {} run {id}{err}",
                text(&r["finished_at"]),
                text(&r["task_name"]),
                text(&r["status"]),
                text(&r["attempt"]),
            )?;
            // Each log line carries its run, so `grep` keeps the context.
            for line in r["log"]["lines"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "    {id} [{} {}] {}",
                    text(&line["level"]),
                    text(&line["origin"]),
                    text(&line["message"])
                )?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::Follow;
    use std::collections::BTreeSet;

    fn id(ms: u64, n: u128) -> String {
        ulid::Ulid::from_parts(ms, n).to_string()
    }

    #[test]
    fn follow_prints_each_run_once_and_remembers_only_what_it_must() {
        let mut f = Follow::default();
        // A poll lists runs newest first: one unfinished, two finished.
        let (a, b, c) = (id(1_000, 1), id(2_000, 1), id(3_000, 1));
        assert!(f.see(c.clone(), true), "new and finished: print");
        assert!(!f.see(b.clone(), false), "unfinished: not yet");
        assert!(f.see(a.clone(), true));
        f.forget(&[a.clone(), b.clone(), c.clone()].into());
        assert!(!f.see(c.clone(), true), "printed once");
        assert!(f.see(b.clone(), true), "finished now: print");
        assert!(!f.see(b.clone(), true), "and only once");
        // Much later: printed runs older than the margin are forgotten.
        let d = id(60_000, 1);
        assert!(f.see(d.clone(), true));
        f.forget(&[d.clone()].into());
        assert_eq!(f.known.len(), 1, "{:?}", f.known);
        assert_eq!(f.margin(), Some(id(55_000, 0)));
        // A run that stays unfinished while newer ones come: below the margin it is
        // looked up by id; the forgotten runs listed again are below the horizon and
        // not printed twice.
        let p = id(56_000, 1);
        assert!(!f.see(p.clone(), false));
        f.forget(&[d.clone(), p.clone()].into());
        let late = id(200_000, 1);
        assert!(f.see(late.clone(), true));
        f.forget(&[late.clone(), d.clone(), p.clone()].into());
        assert_eq!(
            f.pending_before(f.margin().as_deref()),
            vec![p.clone()],
            "looked up one by one"
        );
        assert!(
            !f.see(d.clone(), true),
            "d was printed before; below the horizon now"
        );
        assert!(f.see(p.clone(), true), "the pending run, finished");
        f.forget(&[late.clone(), p.clone()].into());
        assert!(f.pending_before(f.margin().as_deref()).is_empty());
        // An unfinished run that is no longer listed (deleted) is dropped.
        let e = id(201_000, 1);
        assert!(!f.see(e.clone(), false));
        f.forget(&BTreeSet::from([late.clone(), e.clone()]));
        assert!(f.known.contains_key(&e));
        f.forget(&BTreeSet::from([late.clone()]));
        assert!(
            !f.known.contains_key(&e),
            "a deleted pending run is not waited for forever"
        );
        // The horizon never moves back, even when the newest run goes.
        let horizon = f.horizon.clone();
        f.known.clear();
        f.forget(&BTreeSet::new());
        assert_eq!(f.horizon, horizon);
        assert!(!f.see(d, true), "still handled");
    }
}
