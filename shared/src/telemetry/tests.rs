#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use super::*;
use serde_json::{Value, json};

/// The units a MetricDefinition may name (EMF specification; CloudWatch's MetricDatum units).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// What the embedded metric format specification requires of one document, as problems: the
/// `_aws` metadata (a Timestamp in milliseconds, one or more MetricDirectives), each directive's
/// Namespace (1-1024 characters), DimensionSets (at most 30 names, each a string member of the
/// root) and MetricDefinitions (at most 100; a Name of 1-1024 characters, a known Unit, a
/// StorageResolution of 1 or 60), each metric a root member holding a number or at most 100.
fn problems(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut problem = |text: String| found.push(text);
    let Some(root) = document.as_object() else { return vec!["the document is not an object".into()] };
    let aws = &root["_aws"];
    if aws["Timestamp"].as_i64().is_none_or(|t| t <= 0) {
        problem("_aws.Timestamp is not a positive integer of milliseconds".into());
    }
    let Some(directives) = aws["CloudWatchMetrics"].as_array().filter(|d| !d.is_empty()) else {
        return vec!["_aws.CloudWatchMetrics is not a non-empty array".into()];
    };
    for directive in directives {
        let Some(members) = directive.as_object() else {
            problem("a MetricDirective is not an object".into());
            continue;
        };
        for key in members.keys() {
            if !["Namespace", "Dimensions", "Metrics"].contains(&key.as_str()) {
                problem(format!("a MetricDirective has the member {key}"));
            }
        }
        if !directive["Namespace"].as_str().is_some_and(|n| (1..=1024).contains(&n.chars().count())) {
            problem("Namespace is not a string of 1-1024 characters".into());
        }
        for set in directive["Dimensions"].as_array().cloned().unwrap_or_default() {
            let names = set.as_array().cloned().unwrap_or_default();
            if names.len() > 30 {
                problem(format!("a DimensionSet of {} dimensions", names.len()));
            }
            for name in names {
                let name = name.as_str().unwrap_or_default();
                if !root.get(name).is_some_and(Value::is_string) {
                    problem(format!("dimension {name} is not a string member of the root"));
                }
            }
        }
        let metrics = directive["Metrics"].as_array().cloned().unwrap_or_default();
        if metrics.is_empty() || metrics.len() > 100 {
            problem(format!("{} MetricDefinitions", metrics.len()));
        }
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap_or_default();
            if !(1..=1024).contains(&name.chars().count()) {
                problem(format!("metric name {name:?} is not 1-1024 characters"));
            }
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                problem(format!("metric {name}: unit {unit} is not one CloudWatch knows"));
            }
            if let Some(resolution) = metric.get("StorageResolution")
                && !(resolution == 1 || resolution == 60)
            {
                problem(format!("metric {name}: StorageResolution {resolution}"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => problem(format!("metric {name}: the root holds {other:?}, not a number")),
            }
        }
    }
    found
}

fn document(counts: &[(&str, usize)]) -> Value {
    let text = emf_document(counts).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one document, one line: {text}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn counts_are_written_as_one_document_the_specification_accepts_zeros_included() {
    // GIVEN counts of the audit's kinds, one of them 0
    let first = document(&[("TelemetryTestFound", 3), ("TelemetryTestNone", 0)]);
    // THEN the document is valid EMF in the pipeline's namespace, each count with its unit
    assert_eq!(problems(&first), Vec::<String>::new(), "{first}");
    let directive = &first["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], METRICS_NAMESPACE);
    assert_eq!((&first["TelemetryTestFound"], &first["TelemetryTestNone"]), (&json!(3), &json!(0)));
    let defined: Vec<&Value> = directive["Metrics"].as_array().unwrap().iter().collect();
    assert!(defined.contains(&&json!({ "Name": "TelemetryTestFound", "Unit": "Count" })), "{defined:?}");
    // AND a later document counts afresh: what was counted before is 0 now, not 3 again
    let second = document(&[("TelemetryTestNone", 2)]);
    assert_eq!(problems(&second), Vec::<String>::new(), "{second}");
    assert_eq!((&second["TelemetryTestFound"], &second["TelemetryTestNone"]), (&json!(0), &json!(2)));
}

#[test]
fn the_check_refuses_what_the_specification_refuses() {
    let valid = json!({
        "_aws": { "Timestamp": 1_800_000_000_000_i64, "CloudWatchMetrics": [
            { "Namespace": "HrWorkspaces", "Dimensions": [["Function"]], "Metrics": [{ "Name": "X", "Unit": "Count" }] }
        ] },
        "Function": "intake", "X": 1
    });
    assert_eq!(problems(&valid), Vec::<String>::new());
    let broken = |edit: fn(&mut Value)| {
        let mut doc = valid.clone();
        edit(&mut doc);
        problems(&doc)
    };
    assert!(!broken(|d| d["X"] = json!("1")).is_empty(), "a metric that is not a number");
    assert!(!broken(|d| d["Function"] = json!(7)).is_empty(), "a dimension that is not a string");
    assert!(!broken(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Widgets")).is_empty());
    assert!(!broken(|d| d["_aws"]["Timestamp"] = json!("now")).is_empty());
    assert!(!broken(|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")).is_empty());
    assert!(!broken(|d| d["_aws"]["CloudWatchMetrics"][0]["Extra"] = json!(1)).is_empty());
}

#[test]
fn every_metric_the_services_emit_makes_a_valid_document() {
    let audit = crate::services::audit::AuditReport::default();
    let mut names: Vec<(&str, usize)> = audit.metrics();
    names.extend([("EventsRejected", 1), ("StuckPending", 0), ("StuckTerminating", 0), ("TerminationsHeld", 2)]);
    let doc = document(&names);
    assert_eq!(problems(&doc), Vec::<String>::new(), "{doc}");
    for (name, _) in names {
        assert!(doc[name].is_number(), "{name} missing from {doc}");
    }
}
