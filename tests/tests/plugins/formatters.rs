//! The five bundled formatters: json, template, slack, teams and pagerduty, each alone
//! and all of them against every cause of a delivery (`every_cause`).

/// json formatter
mod json_formatter {
    use crate::*;

    #[test]
    fn an_event_delivery_is_the_whole_context_with_data_embedded() {
        let report = format("json", &delivery(Some(sync_event()), None));
        assert_eq!(
            json_body(&report),
            json!({"id": "D1", "webhook": "alerts", "attempt": 2, "timestamp": "2026-11-27T10:00:05Z",
                   "event": {"specversion": "1.0", "id": "e-1", "type": "sync.failed", "source": "/sync",
                             "subject": "vm-7", "time": "2026-11-27T10:00:00Z",
                             "data": {"host": "node-3", "errors": 2}},
                   "run": null,
                   "message": {"cause": "event", "title": "sync.failed", "text": "vm-7: {\"errors\":2,\"host\":\"node-3\"}"}}),
            "{report:#?}"
        );
    }

    #[test]
    fn a_run_notification_embeds_the_run() {
        let d = Delivery {
            attempt: 1,
            ..delivery(None, Some(failed_run()))
        };
        let report = format("json", &d);
        assert_eq!(
            json_body(&report),
            json!({"id": "D1", "webhook": "alerts", "attempt": 1, "timestamp": "2026-11-27T10:00:05Z",
                   "event": null, "run": failed_run(),
                   "message": {"cause": "run", "title": "Task backup failed",
                               "text": "Run 01RUNID of task backup failed after 1 attempt: failed: boom"}}),
            "{report:#?}"
        );
    }

    #[test]
    fn a_webhook_test_and_a_bare_event() {
        let report = format("json", &delivery(Some(test_event()), None));
        assert_eq!(
            json_body(&report)["event"],
            json!({"specversion": "1.0", "id": "t-1", "type": "sundial.webhook.test", "source": "sundial",
                   "subject": "alerts", "time": "2026-11-27T10:00:00Z",
                   "data": {"message": "a test delivery from Sundial", "by": "admin"}}),
            "{report:#?}"
        );

        let bare = Event {
            subject: None,
            data: Value::Null,
            ..sync_event()
        };
        let d = Delivery {
            id: "D9".into(),
            attempt: 7,
            timestamp: "2026-11-28T00:00:00Z".into(),
            ..delivery(Some(bare), None)
        };
        let report = format("json", &d);
        assert_eq!(
            json_body(&report),
            json!({"id": "D9", "webhook": "alerts", "attempt": 7, "timestamp": "2026-11-28T00:00:00Z",
                   "event": {"specversion": "1.0", "id": "e-1", "type": "sync.failed", "source": "/sync",
                             "subject": null, "time": "2026-11-27T10:00:00Z", "data": null},
                   "run": null,
                   "message": {"cause": "event", "title": "sync.failed", "text": "sync.failed from /sync"}}),
            "{report:#?}"
        );
    }
}

/// template formatter
mod template_formatter {
    use crate::*;

    const TEXT: &str = "text/plain; charset=utf-8";

    fn text(report: &RunReport<HttpBody>) -> (String, String) {
        formatted(report)
    }

    #[test]
    fn without_a_template_the_body_is_the_delivery_in_words() {
        let report = format("template", &delivery(Some(sync_event()), None));
        assert_eq!(
            text(&report),
            (
                TEXT.to_string(),
                r#"sync.failed: vm-7: {"errors":2,"host":"node-3"}"#.to_string()
            ),
            "{report:#?}"
        );
        let report = format("template", &delivery(Some(test_event()), None));
        assert_eq!(
            text(&report),
            (
                TEXT.to_string(),
                "Test delivery to webhook alerts: a test delivery from Sundial (webhook alerts, attempt 2, sent by admin)."
                    .to_string()
            ),
            "{report:#?}"
        );
        let report = format("template", &delivery(None, Some(failed_run())));
        assert_eq!(
            text(&report).1,
            "Task backup failed: Run 01RUNID of task backup failed after 1 attempt: failed: boom",
            "{report:#?}"
        );
    }

    #[test]
    fn a_json_template_is_escaped_and_its_content_type_detected_or_set() {
        let data = json!({"msg": "disk \"full\"\nnow", "errors": 3});
        let ev = || event("sync.failed", data.clone());
        let json_template = r#"{"text": "${event.data.msg}", "n": ${event.data.errors}}"#;
        let cases = [
            // Detected from the leading `{` (after blanks): every value JSON-escaped.
            (
                json!({}),
                json_template.to_string(),
                "application/json",
                r#"{"text": "disk \"full\"\nnow", "n": 3}"#.to_string(),
            ),
            (
                json!({}),
                format!("\n  {json_template}"),
                "application/json",
                format!("\n  {}", r#"{"text": "disk \"full\"\nnow", "n": 3}"#),
            ),
            // A content type without "json": no escaping.
            (
                json!({"content_type": "text/csv"}),
                json_template.to_string(),
                "text/csv",
                "{\"text\": \"disk \"full\"\nnow\", \"n\": 3}".to_string(),
            ),
            // A JSON array needs the content type set.
            (
                json!({}),
                "[${event.data.errors}]".to_string(),
                TEXT,
                "[3]".to_string(),
            ),
            (
                json!({"content_type": "application/json"}),
                "[${event.data.errors}]".to_string(),
                "application/json",
                "[3]".to_string(),
            ),
        ];
        for (config, template, content_type, body) in cases {
            let report = format(
                "template",
                &configured(ev(), config.clone(), Some(template.as_str())),
            );
            assert_eq!(
                text(&report),
                (content_type.to_string(), body),
                "{config} {template:?}: {report:#?}"
            );
        }
        let parsed: Value = serde_json::from_str(
            &text(&format(
                "template",
                &configured(ev(), json!({}), Some(json_template)),
            ))
            .1,
        )
        .expect("still JSON");
        assert_eq!(parsed, json!({"text": "disk \"full\"\nnow", "n": 3}));
    }

    #[test]
    fn a_bad_content_type_or_a_filled_template_that_is_not_json_fails() {
        let report = format(
            "template",
            &configured(sync_event(), json!({"content_type": 1}), Some("x")),
        );
        assert_eq!(
            report.result,
            Err(RunError::Failed("config.content_type: expected a string".into())),
            "{report:#?}"
        );
        let report = format(
            "template",
            &configured(sync_event(), json!({}), Some(r#"{"n": ${event.data.missing}}"#)),
        );
        let m = error_message(&report, "failed");
        assert!(
            m.starts_with("the filled template is not JSON (") && m.ends_with("); check its quotes"),
            "{m}"
        );
    }

    #[test]
    fn placeholders_fill_from_the_delivery_and_the_event() {
        let data = json!({"hosts": ["a", "b"], "count": 3, "nested": {"ok": true}});
        let template = "${NAME}|${webhook}|${delivery.id}|${delivery.attempt}|${event.id}|${event.type}|\
                        ${event.source}|${event.subject}|${event.time}|${ event.data.hosts.1 }|${event.data.count}|\
                        ${event.data.nested.ok}|${event.data.hosts}|${nope}|${event.data.missing}|${params.x}|\
                        ${run.status}|${task.name}|end ${unclosed";
        let report = format(
            "template",
            &configured(event("sync.failed", data), json!({}), Some(template)),
        );
        assert_eq!(
            text(&report),
            (
                TEXT.to_string(),
                "alerts|alerts|D1|2|e-1|sync.failed|/sync|vm-7|2026-11-27T10:00:00Z|b|3|true|[\"a\",\"b\"]|||||\
                 |end ${unclosed"
                    .to_string()
            ),
            "{report:#?}"
        );
    }

    #[test]
    fn run_fields_come_from_the_run_or_a_run_event() {
        let template =
            "${task.name} ${run.status}: ${run.error.message} (run ${run.id}, attempt ${run.attempt})";
        let d = Delivery {
            template: Some(template.into()),
            ..delivery(None, Some(failed_run()))
        };
        let report = format("template", &d);
        assert_eq!(
            text(&report),
            (
                TEXT.to_string(),
                "backup failed: boom (run 01RUNID, attempt 1)".to_string()
            ),
            "{report:#?}"
        );
        let d = Delivery {
            template: Some("${task.name} ${run.status}: ${run.error.message}".into()),
            ..delivery(Some(run_event("failed")), None)
        };
        let report = format("template", &d);
        assert_eq!(
            text(&report),
            (TEXT.to_string(), "backup failed: boom".to_string()),
            "{report:#?}"
        );
    }

    #[test]
    fn a_body_over_the_limit_is_refused() {
        let limits = Limits {
            max_output_bytes: 64,
            ..Limits::default()
        };
        let d = configured(
            event("big", json!({"long": "x".repeat(100)})),
            json!({}),
            Some("${event.data.long}"),
        );
        let report = run_formatter("template", Grants::default(), memory(), limits, &d);
        assert_eq!(
            report.result,
            Err(RunError::OutputTooLarge(
                "body is 100 bytes, over the 64-byte limit".into()
            )),
            "{report:#?}"
        );
    }
}

/// slack formatter
mod slack_formatter {
    use crate::*;

    fn slack(title: &str, text: &str, facts: &[(&str, &str)], context: &str) -> Value {
        let fields: Vec<Value> = facts
            .iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
            .collect();
        json!({
            "text": format!("{title}: {text}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "section", "fields": fields},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        })
    }

    const CONTEXT: &str = "/sync · 2026-11-27T10:00:00Z · delivery D1";
    const FACTS: &[(&str, &str)] = &[
        ("Type", "sync.failed"),
        ("Subject", "vm-7"),
        ("Source", "/sync"),
        ("Time", "2026-11-27T10:00:00Z"),
    ];

    #[test]
    fn an_event_delivery_with_the_default_config() {
        let report = format("slack", &delivery(Some(sync_event()), None));
        assert_eq!(
            json_body(&report),
            slack(
                "sync.failed",
                r#"vm-7: {"errors":2,"host":"node-3"}"#,
                FACTS,
                CONTEXT
            ),
            "{report:#?}"
        );
    }

    #[test]
    fn config_title_and_text_win_over_the_template() {
        let template = Some("from the template ${event.type}");
        let config = json!({"title": "Sync failed on ${event.subject}",
                            "text": "${event.data.errors} errors on ${event.data.host}"});
        let report = format("slack", &configured(sync_event(), config, template));
        assert_eq!(
            json_body(&report),
            slack("Sync failed on vm-7", "2 errors on node-3", FACTS, CONTEXT),
            "{report:#?}"
        );
        let report = format("slack", &configured(sync_event(), json!({}), template));
        assert_eq!(
            json_body(&report),
            slack("sync.failed", "from the template sync.failed", FACTS, CONTEXT),
            "{report:#?}"
        );
    }

    #[test]
    fn config_values_must_be_strings() {
        for (config, expected) in [
            (json!({"title": 5}), "config.title: expected a string"),
            (json!({"text": ["x"]}), "config.text: expected a string"),
        ] {
            let report = format("slack", &configured(sync_event(), config.clone(), None));
            assert_eq!(
                report.result,
                Err(RunError::Failed(expected.into())),
                "{config}: {report:#?}"
            );
        }
    }

    #[test]
    fn a_webhook_test_delivery() {
        let report = format("slack", &delivery(Some(test_event()), None));
        assert_eq!(
            json_body(&report),
            slack(
                "Test delivery to webhook alerts",
                "a test delivery from Sundial (webhook alerts, attempt 2, sent by admin).",
                &[("Webhook", "alerts"), ("Sent by", "admin"), ("Delivery", "D1")],
                "sundial · 2026-11-27T10:00:00Z · delivery D1"
            ),
            "{report:#?}"
        );
    }

    #[test]
    fn a_failed_run_is_marked_and_escaped() {
        let mut run = failed_run();
        run["error"]["message"] = json!("<b> & co");
        let report = format("slack", &delivery(None, Some(run)));
        assert_eq!(
            json_body(&report),
            slack(
                ":x: Task backup failed",
                "Run 01RUNID of task backup failed after 1 attempt: failed: &lt;b&gt; &amp; co",
                &[
                    ("Task", "backup"),
                    ("Status", "failed"),
                    ("Run", "01RUNID"),
                    ("Started by", "sundial, by hand"),
                    ("Finished", "2026-11-27T10:00:00Z"),
                    ("Error", "failed: &lt;b&gt; &amp; co"),
                ],
                "sundial · 2026-11-27T10:00:00Z · delivery D1"
            )
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                // The fallback text has the title without the mark.
                o.insert(
                    "text".into(),
                    json!("Task backup failed: Run 01RUNID of task backup failed after 1 attempt: failed: &lt;b&gt; &amp; co"),
                );
                Value::Object(o)
            })
            .unwrap(),
            "{report:#?}"
        );
    }
}

/// teams formatter
mod teams_formatter {
    use crate::*;

    fn teams(title: &str, color: &str, text: &str, facts: &[(&str, &str)]) -> Value {
        let facts: Vec<Value> = facts
            .iter()
            .map(|(k, v)| json!({"title": k, "value": v}))
            .collect();
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "color": color, "text": title, "wrap": true},
                        {"type": "TextBlock", "text": text, "wrap": true},
                        {"type": "FactSet", "facts": facts},
                    ],
                },
            }],
        })
    }

    const FACTS: &[(&str, &str)] = &[
        ("Type", "sync.failed"),
        ("Subject", "vm-7"),
        ("Source", "/sync"),
        ("Time", "2026-11-27T10:00:00Z"),
    ];

    #[test]
    fn an_event_delivery_with_the_default_config() {
        let report = format("teams", &delivery(Some(sync_event()), None));
        assert_eq!(
            json_body(&report),
            teams(
                "sync.failed",
                "Default",
                r#"vm-7: {"errors":2,"host":"node-3"}"#,
                FACTS
            ),
            "{report:#?}"
        );
    }

    #[test]
    fn config_title_and_text_win_over_the_template() {
        let template = Some("from the template ${event.type}");
        let config = json!({"title": "Sync failed on ${event.subject}",
                            "text": "${event.data.errors} errors on ${event.data.host}"});
        let report = format("teams", &configured(sync_event(), config, template));
        assert_eq!(
            json_body(&report),
            teams("Sync failed on vm-7", "Default", "2 errors on node-3", FACTS),
            "{report:#?}"
        );
        let report = format("teams", &configured(sync_event(), json!({}), template));
        assert_eq!(
            json_body(&report),
            teams("sync.failed", "Default", "from the template sync.failed", FACTS),
            "{report:#?}"
        );
    }

    #[test]
    fn config_values_must_be_strings() {
        for (config, expected) in [
            (json!({"title": false}), "config.title: expected a string"),
            (json!({"text": {"a": 1}}), "config.text: expected a string"),
        ] {
            let report = format("teams", &configured(sync_event(), config.clone(), None));
            assert_eq!(
                report.result,
                Err(RunError::Failed(expected.into())),
                "{config}: {report:#?}"
            );
        }
    }

    #[test]
    fn a_webhook_test_delivery() {
        let report = format("teams", &delivery(Some(test_event()), None));
        assert_eq!(
            json_body(&report),
            teams(
                "Test delivery to webhook alerts",
                "Default",
                "a test delivery from Sundial (webhook alerts, attempt 2, sent by admin).",
                &[("Webhook", "alerts"), ("Sent by", "admin"), ("Delivery", "D1")],
            ),
            "{report:#?}"
        );
    }

    #[test]
    fn runs_are_coloured_by_outcome() {
        let report = format("teams", &delivery(None, Some(succeeded_run())));
        assert_eq!(
            json_body(&report),
            teams(
                "Task backup succeeded",
                "Good",
                "Run 01RUNID of task backup succeeded after 1 attempt.",
                &[
                    ("Task", "backup"),
                    ("Status", "succeeded"),
                    ("Run", "01RUNID"),
                    ("Started by", "sundial, by hand"),
                    ("Finished", "2026-11-27T10:00:00Z"),
                ],
            ),
            "{report:#?}"
        );
        let body = json_body(&format("teams", &delivery(None, Some(failed_run()))));
        assert_eq!(body["attachments"][0]["content"]["body"][0]["color"], "Attention");
    }
}

/// pagerduty formatter
mod pagerduty_formatter {
    use crate::*;

    const INLINE_KEY: &str = "inline-routing-key-0123";
    const SECRET_KEY: &str = "R0UTINGKEY0123456789abcdef012345";

    fn pd(config: Value, event: Event) -> RunReport<HttpBody> {
        format("pagerduty", &configured(event, config, None))
    }

    fn inline(extra: Value) -> Value {
        let mut config = json!({ "routing_key": INLINE_KEY });
        for (k, v) in extra.as_object().expect("an object") {
            config[k] = v.clone();
        }
        config
    }

    #[test]
    fn an_event_delivery_with_the_default_config() {
        let report = pd(inline(json!({})), sync_event());
        assert_eq!(
            json_body(&report),
            json!({"routing_key": INLINE_KEY, "event_action": "trigger", "dedup_key": "/sync/vm-7",
                   "payload": {"summary": "sync.failed: vm-7: {\"errors\":2,\"host\":\"node-3\"}", "source": "/sync",
                               "severity": "error", "timestamp": "2026-11-27T10:00:00Z", "custom_details": event_details()},
                   "client": "Sundial"}),
            "{report:#?}"
        );
    }

    #[test]
    fn the_routing_key_comes_from_a_granted_secret_or_the_config() {
        let granted = Grants {
            secrets: vec!["pd-key".into()],
            ..Grants::default()
        };
        // The secret wins over an inline key; the body carries it (not redacted).
        for config in [
            json!({"routing_key_secret": "pd-key"}),
            json!({"routing_key_secret": "pd-key", "routing_key": INLINE_KEY}),
        ] {
            let report = run_formatter(
                "pagerduty",
                granted.clone(),
                with_secret("pd-key", SECRET_KEY),
                Limits::default(),
                &configured(sync_event(), config.clone(), None),
            );
            assert_eq!(
                json_body(&report)["routing_key"],
                SECRET_KEY,
                "{config}: {report:#?}"
            );
        }

        let missing = "config.routing_key_secret: secret \"pd-key\" is missing or not granted to this plugin";
        let report = run_formatter(
            "pagerduty",
            Grants::default(),
            with_secret("pd-key", SECRET_KEY),
            Limits::default(),
            &configured(sync_event(), json!({"routing_key_secret": "pd-key"}), None),
        );
        assert_refused(
            &report,
            RunError::Failed(missing.into()),
            Level::Warn,
            "secret \"pd-key\" is not granted to plugin \"pagerduty\"",
        );
        let report = run_formatter(
            "pagerduty",
            granted,
            memory(),
            Limits::default(),
            &configured(sync_event(), json!({"routing_key_secret": "pd-key"}), None),
        );
        assert_eq!(
            report.result,
            Err(RunError::Failed(missing.into())),
            "granted, unset: {report:#?}"
        );

        for (config, expected) in [
            (json!({}), "config: give routing_key_secret (or routing_key)"),
            (
                json!({"routing_key": null, "routing_key_secret": null}),
                "config: give routing_key_secret (or routing_key)",
            ),
            (json!({"routing_key": 5}), "config.routing_key: expected a string"),
            (
                json!({"routing_key_secret": ["pd-key"]}),
                "config.routing_key_secret: expected a string",
            ),
        ] {
            let report = pd(config.clone(), sync_event());
            assert_eq!(
                report.result,
                Err(RunError::Failed(expected.into())),
                "{config}: {report:#?}"
            );
        }
    }

    #[test]
    fn the_action_is_resolve_for_succeeded_and_resolved_unless_set() {
        for (kind, action, expected) in [
            ("sync.failed", None, "trigger"),
            ("sync.started", None, "trigger"),
            ("sync.succeeded", None, "resolve"),
            ("incident.resolved", None, "resolve"),
            ("sync.succeeded", Some("auto"), "resolve"),
            ("sync.failed", Some("auto"), "trigger"),
            ("sync.succeeded", Some("trigger"), "trigger"),
            ("sync.failed", Some("resolve"), "resolve"),
        ] {
            let config = match action {
                Some(a) => inline(json!({ "action": a })),
                None => inline(json!({})),
            };
            let report = pd(config, event(kind, json!({})));
            let body = json_body(&report);
            assert_eq!(
                (
                    &body["event_action"],
                    &body["dedup_key"],
                    &body["payload"]["summary"]
                ),
                (
                    &json!(expected),
                    &json!("/sync/vm-7"),
                    &json!(format!("{kind}: vm-7"))
                ),
                "{kind} {action:?}: {report:#?}"
            );
        }
        for (action, expected) in [
            (
                json!("acknowledge"),
                "config.action: \"acknowledge\" is not trigger, resolve or auto",
            ),
            (json!(1), "config.action: expected a string"),
        ] {
            let report = pd(inline(json!({ "action": action })), sync_event());
            assert_eq!(
                report.result,
                Err(RunError::Failed(expected.into())),
                "{action}: {report:#?}"
            );
        }
    }

    #[test]
    fn severity_passes_through_when_known() {
        for severity in ["critical", "error", "warning", "info"] {
            let report = pd(inline(json!({ "severity": severity })), sync_event());
            assert_eq!(json_body(&report)["payload"]["severity"], severity, "{report:#?}");
        }
        for (severity, expected) in [
            (
                json!("fatal"),
                "config.severity: \"fatal\" is not critical, error, warning or info",
            ),
            (
                json!("Critical"),
                "config.severity: \"Critical\" is not critical, error, warning or info",
            ),
            (json!(3), "config.severity: expected a string"),
        ] {
            let report = pd(inline(json!({ "severity": severity })), sync_event());
            assert_eq!(
                report.result,
                Err(RunError::Failed(expected.into())),
                "{severity}: {report:#?}"
            );
        }
    }

    #[test]
    fn summary_dedup_key_component_group_and_class_are_templates() {
        let config = inline(json!({
            "summary": "${event.data.host} has ${event.data.errors} errors",
            "dedup_key": "sync-${event.subject}",
            "component": "${event.data.host}",
            "group": "prod",
            "class": "${event.type}",
        }));
        let report = pd(config, sync_event());
        assert_eq!(
            json_body(&report),
            json!({"routing_key": INLINE_KEY, "event_action": "trigger", "dedup_key": "sync-vm-7",
                   "payload": {"summary": "node-3 has 2 errors", "source": "/sync", "severity": "error",
                               "timestamp": "2026-11-27T10:00:00Z", "custom_details": event_details(),
                               "component": "node-3", "group": "prod", "class": "sync.failed"},
                   "client": "Sundial"}),
            "{report:#?}"
        );

        // The summary is cut at 1024 characters (not bytes).
        let long = "é".repeat(2000);
        let report = pd(
            inline(json!({"summary": "${event.data.long}"})),
            event("sync.failed", json!({ "long": long })),
        );
        assert_eq!(
            json_body(&report)["payload"]["summary"],
            "é".repeat(1024),
            "{report:#?}"
        );

        for key in ["summary", "dedup_key", "component", "group", "class"] {
            let report = pd(inline(json!({ key: 5 })), sync_event());
            assert_eq!(
                report.result,
                Err(RunError::Failed(format!("config.{key}: expected a string"))),
                "{key}: {report:#?}"
            );
        }
    }

    #[test]
    fn run_events_trigger_and_resolve_one_incident_per_task() {
        for (status, action, text) in [
            (
                "failed",
                "trigger",
                "Task backup failed: Run 01RUNID of task backup failed after 1 attempt: failed: boom",
            ),
            (
                "succeeded",
                "resolve",
                "Task backup succeeded: Run 01RUNID of task backup succeeded after 1 attempt.",
            ),
        ] {
            let report = pd(inline(json!({})), run_event(status));
            let body = json_body(&report);
            assert_eq!(
                (
                    &body["event_action"],
                    &body["dedup_key"],
                    &body["payload"]["summary"]
                ),
                (&json!(action), &json!("sundial/backup"), &json!(text)),
                "{status}: {report:#?}"
            );
            assert_eq!(body["payload"]["custom_details"]["data"], run_event_data(status));
            // A notification carrying the run itself reads the same, and shares the key.
            let run = if status == "failed" {
                failed_run()
            } else {
                succeeded_run()
            };
            let body = json_body(&format(
                "pagerduty",
                &Delivery {
                    config: inline(json!({})),
                    ..delivery(None, Some(run))
                },
            ));
            assert_eq!(
                (
                    &body["event_action"],
                    &body["dedup_key"],
                    &body["payload"]["summary"]
                ),
                (&json!(action), &json!("sundial/backup"), &json!(text)),
                "{status}: {body}"
            );
        }
    }

    #[test]
    fn a_webhook_test_delivery() {
        let report = pd(inline(json!({})), test_event());
        assert_eq!(
            json_body(&report),
            json!({"routing_key": INLINE_KEY, "event_action": "trigger", "dedup_key": "sundial/webhook-test/alerts",
                   "payload": {"summary": "Test delivery to webhook alerts: a test delivery from Sundial (webhook alerts, attempt 2, sent by admin).",
                               "source": "sundial", "severity": "error", "timestamp": "2026-11-27T10:00:00Z",
                               "custom_details": {"Webhook": "alerts", "Sent by": "admin", "Delivery": "D1",
                                                  "data": {"message": "a test delivery from Sundial", "by": "admin"}}},
                   "client": "Sundial"}),
            "{report:#?}"
        );
    }

    /// `custom_details` of `sync_event`: the message's facts and the event's data.
    fn event_details() -> Value {
        json!({"Type": "sync.failed", "Subject": "vm-7", "Source": "/sync", "Time": "2026-11-27T10:00:00Z",
               "data": {"host": "node-3", "errors": 2}})
    }
}

/// Every bundled formatter against every cause of a delivery: an event, a run
/// notification (failed and succeeded), a `sundial.run.*` event, a task whose action is
/// the webhook (scheduled or by hand, and started by an event) and `webhook test`.
/// The human part of each body must say what happened: never empty, and naming the
/// things an operator needs.
mod every_cause {
    use crate::*;

    /// (cause, delivery, words the human text must contain)
    fn causes() -> Vec<(&'static str, Delivery, Vec<&'static str>)> {
        vec![
            (
                "event",
                delivery(Some(sync_event()), None),
                vec!["sync.failed", "vm-7", "node-3"],
            ),
            (
                "failed run",
                delivery(None, Some(failed_run())),
                vec!["backup", "failed", "boom", "01RUNID"],
            ),
            (
                "succeeded run",
                delivery(None, Some(succeeded_run())),
                vec!["backup", "succeeded", "01RUNID"],
            ),
            (
                "run event",
                delivery(Some(run_event("failed")), None),
                vec!["backup", "failed", "boom"],
            ),
            (
                "task action",
                delivery(None, Some(task_action_run())),
                vec!["page-oncall", "01RUN2", "level"],
            ),
            (
                "task action on an event",
                delivery(Some(sync_event()), Some(task_action_run())),
                vec!["page-oncall", "sync.failed", "vm-7"],
            ),
            (
                "webhook test",
                delivery(Some(test_event()), None),
                vec!["alerts", "test delivery"],
            ),
        ]
    }

    /// The parts of a body people read, per formatter.
    fn human(formatter: &str, report: &RunReport<HttpBody>) -> Vec<String> {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match formatter {
            "template" => vec![formatted(report).1],
            "json" => {
                let b = json_body(report);
                vec![s(&b["message"]["title"]), s(&b["message"]["text"])]
            }
            "slack" => {
                let b = json_body(report);
                vec![
                    s(&b["text"]),
                    s(&b["blocks"][0]["text"]["text"]),
                    s(&b["blocks"][1]["text"]["text"]),
                ]
            }
            "teams" => {
                let b = json_body(report);
                let card = &b["attachments"][0]["content"]["body"];
                vec![s(&card[0]["text"]), s(&card[1]["text"])]
            }
            "pagerduty" => vec![s(&json_body(report)["payload"]["summary"])],
            other => panic!("unknown formatter {other}"),
        }
    }

    #[test]
    fn every_formatter_says_what_happened_for_every_cause() {
        for formatter in ["json", "template", "slack", "teams", "pagerduty"] {
            for (cause, mut d, words) in causes() {
                if formatter == "pagerduty" {
                    d.config = json!({"routing_key": "k"});
                }
                let report = format(formatter, &d);
                let parts = human(formatter, &report);
                for part in &parts {
                    assert!(
                        part.trim().len() > 3
                            && !part.contains("**")
                            && !part.starts_with(": ")
                            && !part.trim_end().ends_with(':'),
                        "{formatter} × {cause}: an empty or hollow part {part:?} in {parts:?}"
                    );
                }
                let all = parts.join("\n").to_lowercase();
                for w in words {
                    assert!(
                        all.contains(&w.to_lowercase()),
                        "{formatter} × {cause}: {w:?} missing from {parts:?}"
                    );
                }
            }
        }
    }
}
