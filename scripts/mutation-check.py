#!/usr/bin/env python3
"""Mutation checks: break one behaviour of the code on purpose, run the test that is
about it, and require that test to fail. A mutation whose code does not build counts as
not caught (a build error proves nothing about the test). The file is restored after
each mutation, whatever happens.

    scripts/mutation-check.py                 # every mutation
    scripts/mutation-check.py cron-and-days   # some of them
    scripts/mutation-check.py --list

Not part of `cargo test` (each mutation rebuilds). Results: docs/RELIABILITY.md.
"""
import os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, command that must fail, what it breaks, file, text, replacement). Rows with the
# same name are one mutation (applied together); only its first row names the command.
M=[
 ('cron-and-days', 'cargo test -p sundial-core --lib schedule::',
  'both day fields must match (the `cron` crate\'s reading, not crontab\'s)',
  'host/core/src/schedule/cron_rule.rs',
  '''    !(field.starts_with('*') || field == "?")''', '''    false'''),
 ('cron-weekday-off-by-one', 'cargo test -p sundial-core --lib schedule::proptests',
  'weekday numbers shifted by one (Monday read as Sunday)',
  'host/core/src/schedule/cron_rule.rs',
  '''const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];''',
  '''const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];'''),
 ('secret-in-nonce', 'cargo test -p sundial-tests --test secrets',
  'the plaintext is stored after the nonce (base64), and opening still works',
  'host/store/src/sealing.rs',
  '''        Ok(Sealed {
            nonce: STANDARD.encode(nonce),''',
  '''        Ok(Sealed {
            nonce: STANDARD.encode([&nonce[..], value].concat()),'''),
 ('secret-in-nonce', None, None, 'host/store/src/sealing.rs',
  '''        if nonce.len() != 12 {
            return Err("corrupt nonce".into());
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&nonce),''',
  '''        if nonce.len() < 12 {
            return Err("corrupt nonce".into());
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&nonce[..12]),'''),
 ('secret-not-sealed', 'cargo test -p sundial-store --lib sealing::',
  'the "ciphertext" is the plaintext itself, base64',
  'host/store/src/sealing.rs',
  '''            ciphertext: STANDARD.encode(ciphertext),''',
  '''            ciphertext: { let _ = ciphertext; STANDARD.encode(value) },'''),
 ('route-undocumented', 'cargo test -p sundial-server --lib openapi',
  'a route the OpenAPI document does not describe',
  'host/server/src/lib.rs',
  '''    "/healthz" => { get: healthz },''',
  '''    "/healthz" => { get: healthz },
    "/v1/debug" => { get: healthz },'''),
 ('index-linear-scan', 'cargo test -p sundial-core --lib event::index',
  'exact types found by scanning every trigger (same results, cost grows with triggers)',
  'host/core/src/event/index.rs',
  '''        if let Some(list) = self.exact.get(kind) {
            cost.examined += list.len();
            out.extend(list.iter().filter(|t| t.matches_rest(event)).cloned());
        }''',
  '''        for list in self.exact.values() {
            cost.examined += list.len();
            out.extend(
                list.iter()
                    .filter(|t| matches!(&t.kind, Pattern::Exact(k) if k == kind) && t.matches_rest(event))
                    .cloned(),
            );
        }'''),
 ('sandbox-sockets-open', 'cargo test -p sundial-tests --test sandbox no_environment_files_or_sockets',
  'plugins may open sockets',
  'host/runtime/src/lib.rs',
  '''        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));''',
  '''        .inherit_network()
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { true }));'''),
 ('store-keeps-deleted-schedule', 'cargo test -p sundial-store --lib model_tests',
  'deleting a schedule drops its links and name but keeps the record',
  'host/store/src/schedules.rs',
  '''            txn.open_table(SCHEDULES)?.remove(record.id.as_str())?;''',
  '''            let _ = &record.id; // the record stays'''),
 ('interrupted-not-retried', 'cargo test -p sundial-tests --test chaos',
  'a run cut by a kill is never retried',
  'host/core/src/run.rs',
  '''        (true, _) => (policy.retry_on.interrupted, RunStatus::Interrupted),''',
  '''        (true, _) => (false, RunStatus::Interrupted),'''),
 ('queue-overlap-is-allow', 'cargo test -p sundial-tests --test daemon overlap_policies',
  'the `queue` overlap policy starts the next run at once',
  'host/engine/src/executor/overlap.rs',
  '''            OverlapPolicy::Queue if !runs.is_empty() => {''',
  '''            OverlapPolicy::Queue if false => {'''),
 ('no-jitter', 'cargo test -p sundial-engine --lib scheduler::tests && cargo test -p sundial-tests --test schedules jitter',
  'schedule jitter is always zero',
  'host/engine/src/scheduler.rs',
  '''    if jitter_ms == 0 {
        return chrono::Duration::zero();
    }''',
  '''    if jitter_ms < u64::MAX {
        return chrono::Duration::zero();
    }'''),
 ('variable-width-timestamps', 'cargo test -p sundial-tests --test api every_timestamp',
  'timestamps written with chrono\'s variable-width default',
  'host/core/src/timestamp.rs',
  '''pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}''',
  '''pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}'''),
 ('starttls-opportunistic', 'cargo test -p sundial-tests --test mail',
  'STARTTLS is opportunistic: a relay that does not offer it gets the mail in the clear',
  'host/runtime/src/mail.rs',
  '''            Security::Starttls => Tls::Required(tls(&config.host)?),''',
  '''            Security::Starttls => Tls::Opportunistic(tls(&config.host)?),'''),
 ('follow-first-page-only', 'cargo test -p sundial-tests --test cli_client logs_follow',
  '`logs --follow` as it was: each poll reads only the newest hundred runs',
  'host/src/cli/remote.rs',
  """            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        // The old unfinished runs the pages did not reach, one by one.""",
  """            let _ = (&mut cursor, page["next_cursor"].as_str(), &filter, &bound);
            break;
        }
        let old_pending: Vec<String> = Vec::new();
        // The old unfinished runs the pages did not reach, one by one."""),
 ('follow-first-page-only', None, None, 'host/src/cli/remote.rs',
  """                None => format!("/v1/runs?limit=1000{filter}"),
            };
            let page = remote.call("GET", &page_path, None).await?;""",
  """                None => format!("/v1/runs?limit=100{filter}"),
            };
            let page = remote.call("GET", &page_path, None).await?;"""),
 ('follow-no-lookups', 'cargo test -p sundial-tests --test cli_client logs_follow',
  '`logs --follow` never looks up unfinished runs older than its margin',
  'host/src/cli/remote.rs',
  """        // The old unfinished runs the pages did not reach, one by one.""",
  """        let old_pending: Vec<String> = Vec::new();
        // The old unfinished runs the pages did not reach, one by one."""),
]


def mutations():
    out = {}
    for name, test, why, path, old, new in M:
        m = out.setdefault(name, {"test": None, "why": None, "edits": []})
        m["test"] = m["test"] or test
        m["why"] = m["why"] or why
        m["edits"].append((path, old, new))
    return out


def run(name, m):
    originals = {}
    try:
        for path, old, new in m["edits"]:
            full = os.path.join(ROOT, path)
            text = originals.get(full) or open(full).read()
            originals.setdefault(full, text)
            current = open(full).read()
            if current.count(old) != 1:
                return "STALE: the text to replace is not in %s exactly once" % path
            with open(full, "w") as f:
                f.write(current.replace(old, new))
        log_path = os.path.join(ROOT, "target", "mutation-%s.log" % name)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        start = time.time()
        with open(log_path, "w") as log:
            code = subprocess.call(m["test"], shell=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        output = open(log_path).read()
        took = time.time() - start
        if code == 0:
            return "NOT CAUGHT: the test passed with the behaviour broken (%s)" % log_path
        if re.search(r"^error\[E\d+\]|^error: could not compile", output, re.M):
            return "INVALID: the mutated code does not build (%s)" % log_path
        failed = sorted(set(re.findall(r"^test (\S+) \.\.\. FAILED$", output, re.M)))
        return "caught in %.0f s by %s" % (took, ", ".join(failed) or "a failing test")
    finally:
        for full, text in originals.items():
            with open(full, "w") as f:
                f.write(text)


def main():
    all_m = mutations()
    if "--list" in sys.argv:
        for name, m in all_m.items():
            print("%-32s %s\n%-32s   %s" % (name, m["why"], "", m["test"]))
        return 0
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or list(all_m)
    unknown = [n for n in names if n not in all_m]
    if unknown:
        print("unknown mutation(s): %s" % ", ".join(unknown), file=sys.stderr)
        return 2
    missed = []
    for name in names:
        m = all_m[name]
        print("== %s: %s\n   %s" % (name, m["why"], m["test"]), flush=True)
        result = run(name, m)
        print("   " + result, flush=True)
        if not result.startswith("caught"):
            missed.append(name)
    print("mutation-check: %d caught, %d not: %s" % (len(names) - len(missed), len(missed), " ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
