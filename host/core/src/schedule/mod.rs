//! Schedules say when tasks run. This module is the pure part: rules (cron, calendar,
//! one-time `at`), time zones and DST, start/end bounds, and "when is the next slot".
//! No I/O and no clock: every function takes the time it reasons about.
//!
//! The durable scheduler (timer heap, exactly-once slots, misfires) builds on this
//! (issue 4, in progress).

pub mod agenda;
pub mod calendar;
pub mod cron_rule;
pub mod misfire;
pub mod spec;
pub mod words;
pub mod zone;

use calendar::CalendarRule;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cron_rule::CronRule;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
pub use zone::DstNote;

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A cron expression (5, 6 or 7 fields, or a nickname such as `@daily`).
    Cron(String),
    /// A calendar rule (every N units, weekdays, day of month, time, window).
    Calendar(CalendarRule),
    /// Once, at this instant.
    At(
        #[serde(with = "crate::timestamp::serde_millis")]
        #[schemars(with = "DateTime<Utc>")]
        DateTime<Utc>,
    ),
}

/// A rule bound to its zone and bounds, ready to compute fire times.
#[derive(Debug, Clone)]
pub struct Timing {
    rule: Compiled,
    tz: Tz,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
enum Compiled {
    Cron(Arc<CronRule>),
    Calendar(CalendarRule),
    At(DateTime<Utc>),
}

/// Cron expressions compiled once for the many schedules that share them (a scheduler
/// loading a million schedules compiles each distinct expression once). Holds at most
/// [`CronCache::CAPACITY`] expressions; when full it starts over.
#[derive(Default)]
pub struct CronCache(HashMap<String, Arc<CronRule>>);

impl CronCache {
    /// Most expressions kept: 4 096 (a compiled expression takes a few hundred bytes).
    pub const CAPACITY: usize = 4096;

    /// `expr` compiled, from the cache when it was compiled before.
    fn get(&mut self, expr: &str) -> Result<Arc<CronRule>, String> {
        if let Some(rule) = self.0.get(expr) {
            return Ok(rule.clone());
        }
        let rule = Arc::new(CronRule::parse(expr).map_err(|e| format!("rule.{e}"))?);
        if self.0.len() >= Self::CAPACITY {
            self.0.clear();
        }
        self.0.insert(expr.to_string(), rule.clone());
        Ok(rule)
    }
}

/// One fire time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Slot {
    /// The instant it fires.
    pub at: DateTime<Utc>,
    /// The same instant on the schedule's wall clock, RFC 3339 with offset.
    pub local: String,
    /// Set when a DST transition moved this slot or made its wall time repeat.
    pub dst: Option<DstNote>,
}

impl Timing {
    /// Compile `rule` for zone `tz` (IANA name), active from `start` until `end`.
    /// `now` is only used to refuse an `at` rule in the past.
    pub fn new(
        rule: &Rule,
        tz: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Timing, String> {
        Timing::compile(rule, tz, start, end, now, None)
    }

    /// [`Timing::new`], taking a cron expression compiled before from `crons` (and
    /// leaving a new one there).
    pub fn new_cached(
        rule: &Rule,
        tz: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        crons: &mut CronCache,
    ) -> Result<Timing, String> {
        Timing::compile(rule, tz, start, end, now, Some(crons))
    }

    fn compile(
        rule: &Rule,
        tz: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        crons: Option<&mut CronCache>,
    ) -> Result<Timing, String> {
        let tz = zone::parse_tz(tz).map_err(|e| format!("timezone: {e}"))?;
        if end.is_some_and(|e| e <= start) {
            return Err("end: must be after start".into());
        }
        let rule = match rule {
            Rule::Cron(expr) => Compiled::Cron(match crons {
                Some(crons) => crons.get(expr)?,
                None => Arc::new(CronRule::parse(expr).map_err(|e| format!("rule.{e}"))?),
            }),
            Rule::Calendar(c) => {
                c.validate().map_err(|e| format!("rule.{e}"))?;
                Compiled::Calendar(c.clone())
            }
            Rule::At(t) => {
                if *t <= now {
                    return Err(format!(
                        "rule.at: {} is in the past (now is {})",
                        crate::timestamp::text(*t),
                        crate::timestamp::text(now)
                    ));
                }
                Compiled::At(*t)
            }
        };
        Ok(Timing { rule, tz, start, end })
    }

    /// The zone the rule's wall times are in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first slot strictly after `after` (and not before the start), if any.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<Slot> {
        let (at, dst) = self.next_instant(after)?;
        let local = crate::timestamp::local_text(&at.with_timezone(&self.tz));
        Some(Slot { at, local, dst })
    }

    /// [`Timing::next_after`] without the wall-clock text: the instant and its DST note.
    pub fn next_instant(&self, after: DateTime<Utc>) -> Option<(DateTime<Utc>, Option<DstNote>)> {
        let from = after.max(self.start - chrono::Duration::nanoseconds(1));
        let (at, dst) = match &self.rule {
            Compiled::At(t) => (*t > from).then_some((*t, None))?,
            Compiled::Calendar(c) => c.next_after(self.tz, self.start, from)?,
            Compiled::Cron(c) => {
                let mut wall = from.with_timezone(&self.tz).naive_local();
                loop {
                    let next = c.next_wall_after(wall)?;
                    let (t, note) = zone::resolve(self.tz, next);
                    // Slots inside a spring-forward gap collapse onto its end: fire once.
                    if t > from {
                        break (t, note);
                    }
                    wall = next;
                }
            }
        };
        if self.end.is_some_and(|e| at > e) {
            return None;
        }
        Some((at, dst))
    }

    /// Up to `count` slots after `after`.
    pub fn preview(&self, after: DateTime<Utc>, count: usize) -> Vec<Slot> {
        let mut out = Vec::with_capacity(count.min(1440));
        let mut t = after;
        while out.len() < count.min(1440) {
            match self.next_after(t) {
                Some(slot) => {
                    t = slot.at;
                    out.push(slot);
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
