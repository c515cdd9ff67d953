//! The bundled `echo` action: what a plugin sees of its invocation, every cause, limits.

use super::*;

fn invocation(cause: Cause, attempt: u32, event: Option<Event>, params: Value) -> Invocation {
    Invocation {
        run_id: "01ECHORUN".into(),
        task: "greet".into(),
        attempt,
        cause,
        params,
        event,
    }
}

fn echo(inv: &Invocation, limits: Limits) -> RunReport<Value> {
    run_action("echo", Grants::default(), memory(), limits, inv)
}

#[test]
fn output_has_the_same_shape_for_every_cause() {
    let params = json!({"name": "Ada", "n": [1, 2]});
    let login = Event {
        id: "l-1".into(),
        kind: "user.login".into(),
        source: "/vergeos/prod".into(),
        subject: Some("jthompson".into()),
        time: "2026-11-27T09:00:00Z".into(),
        data: json!({"user": "jthompson", "ip": "10.0.0.5"}),
    };
    let cases = [
        (
            invocation(Cause::Manual, 1, None, params.clone()),
            json!("manual"),
            Value::Null,
        ),
        (
            invocation(Cause::Schedule("nightly".into()), 1, None, params.clone()),
            json!({"schedule": "nightly"}),
            Value::Null,
        ),
        (
            invocation(Cause::Event, 1, Some(login), params.clone()),
            json!("event"),
            json!({"id": "l-1", "type": "user.login", "source": "/vergeos/prod", "subject": "jthompson",
                   "time": "2026-11-27T09:00:00Z", "data": {"user": "jthompson", "ip": "10.0.0.5"}}),
        ),
        (
            invocation(Cause::Retry(2), 3, None, params.clone()),
            json!({"retry": 2}),
            Value::Null,
        ),
    ];
    for (inv, cause, event) in cases {
        let report = echo(&inv, Limits::default());
        let expected = json!({"params": params, "run_id": "01ECHORUN", "task": "greet",
                              "attempt": inv.attempt, "cause": cause, "event": event});
        assert_eq!(report.result, Ok(expected), "{:?}: {report:#?}", inv.cause);
        assert!(report.log.lines.is_empty(), "echo logs nothing: {report:#?}");
        assert!(report.resources.hosts_contacted.is_empty(), "{report:#?}");
    }
}

#[test]
fn an_event_without_subject_or_data_gives_nulls() {
    let bare = Event {
        id: "b-1".into(),
        kind: "ping".into(),
        source: "/monitor".into(),
        subject: None,
        time: "2026-11-27T09:00:00Z".into(),
        data: Value::Null,
    };
    let report = echo(
        &invocation(Cause::Event, 1, Some(bare), json!({})),
        Limits::default(),
    );
    assert_eq!(
        report.result,
        Ok(
            json!({"params": {}, "run_id": "01ECHORUN", "task": "greet", "attempt": 1, "cause": "event",
                  "event": {"id": "b-1", "type": "ping", "source": "/monitor", "subject": null,
                            "time": "2026-11-27T09:00:00Z", "data": null}})
        ),
        "{report:#?}"
    );
}

#[test]
fn params_that_are_not_an_object_come_back_unchanged() {
    for params in [
        json!([1, "two", null, {"three": 3}]),
        json!("just a string"),
        json!(42),
        json!(-1.5),
        json!(true),
        Value::Null,
    ] {
        let report = echo(
            &invocation(Cause::Manual, 1, None, params.clone()),
            Limits::default(),
        );
        assert_eq!(
            report.result,
            Ok(
                json!({"params": params, "run_id": "01ECHORUN", "task": "greet", "attempt": 1,
                      "cause": "manual", "event": null})
            ),
            "{params}: {report:#?}"
        );
    }
}

#[test]
fn output_over_the_limit_is_refused_and_logged() {
    let params = json!("x".repeat(200));
    let limits = Limits {
        max_output_bytes: 100,
        ..Limits::default()
    };
    let report = echo(&invocation(Cause::Manual, 1, None, params.clone()), limits);
    // What echo returns, serialized as the SDK does (serde_json, compact).
    let text = serde_json::to_string(&json!({"params": params, "run_id": "01ECHORUN", "task": "greet",
                                             "attempt": 1, "cause": "manual", "event": null}))
    .unwrap();
    let expected = format!(
        "output is {} bytes, over the 100-byte limit (starts {:?})",
        text.len(),
        &text[..120]
    );
    assert_refused(
        &report,
        RunError::OutputTooLarge(expected.clone()),
        Level::Error,
        &format!("output too large: {expected}"),
    );
}

#[test]
fn an_action_cannot_run_as_a_formatter_nor_a_formatter_as_an_action() {
    let report = format("echo", &delivery(Some(sync_event()), None));
    match error_of(&report) {
        RunError::Instantiate(m) => assert!(m.contains("formatter") && m.contains("action"), "{m}"),
        other => panic!("expected an instantiate error, got {other:?}\n{report:#?}"),
    }
    let inv = invocation(Cause::Manual, 1, None, json!({}));
    let report = run_action("json", Grants::default(), memory(), Limits::default(), &inv);
    let m = error_message(&report, "instantiate");
    assert!(m.contains("formatter") && m.contains("action"), "{m}");
}
