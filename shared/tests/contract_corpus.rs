#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HR event contract, checked one way: every case of `events/hr/cases.json` is parsed by
//! `HrEvent::parse`, which must report exactly the (field, rule) pairs the case expects, no more,
//! no fewer. `infra/local/check_events.py` holds the JSON Schema to the same manifest, so parser
//! and schema agree case by case.

use serde_json::Value;
use shared::domain::event::{EventRules, HrEvent};
use shared::domain::names::UserNameRules;
use shared::domain::time::Timestamp;
use shared::domain::validation::Rule;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every rule, in the order of the enum. The match below fails to compile when a rule is added,
/// so the corpus is reminded to cover it.
const ALL_RULES: [Rule; 22] = [
    Rule::BodySize,
    Rule::Json,
    Rule::DuplicateKey,
    Rule::UnknownField,
    Rule::Required,
    Rule::Type,
    Rule::Enum,
    Rule::Pattern,
    Rule::Length,
    Rule::Charset,
    Rule::Invisible,
    Rule::TrailingPeriod,
    Rule::EmailFormat,
    Rule::EmailDomain,
    Rule::Timestamp,
    Rule::Future,
    Rule::Horizon,
    Rule::Range,
    Rule::MultipleOf,
    Rule::UnknownProfile,
    Rule::MoveTarget,
    Rule::NotAllowed,
];

/// Whether a body can break the rule. `unknown-profile` is about the deployment's profiles, not
/// the event: the parser never reports it.
fn from_a_body(rule: Rule) -> bool {
    match rule {
        Rule::UnknownProfile => false,
        Rule::BodySize
        | Rule::Json
        | Rule::DuplicateKey
        | Rule::UnknownField
        | Rule::Required
        | Rule::Type
        | Rule::Enum
        | Rule::Pattern
        | Rule::Length
        | Rule::Charset
        | Rule::Invisible
        | Rule::TrailingPeriod
        | Rule::EmailFormat
        | Rule::EmailDomain
        | Rule::Timestamp
        | Rule::Future
        | Rule::Horizon
        | Rule::Range
        | Rule::MultipleOf
        | Rule::MoveTarget
        | Rule::NotAllowed => true,
    }
}

type Pair = (String, String);

struct Case {
    file: String,
    backend: String,
    expect: BTreeSet<Pair>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/hr")
}

fn rule_named(name: &str) -> Rule {
    serde_json::from_value(Value::String(name.to_owned())).unwrap_or_else(|_| panic!("{name:?} is not a rule"))
}

/// The manifest, checked for shape: `{"now": ..., "cases": [{"file", "backend", "expect"}]}`.
fn manifest() -> (Timestamp, Vec<Case>) {
    let path = corpus_dir().join("cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let now = manifest["now"].as_str().expect("cases.json: now is a string");
    let now = Timestamp::parse(now).expect("cases.json: now is a timestamp");
    let cases = manifest["cases"].as_array().expect("cases.json: cases is an array");
    let cases = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let object = case.as_object().unwrap_or_else(|| panic!("case {i} is not an object"));
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["backend", "expect", "file"], "case {i}: exactly file, backend and expect");
            let file = object["file"].as_str().unwrap_or_else(|| panic!("case {i}: file is a string")).to_owned();
            let backend =
                object["backend"].as_str().unwrap_or_else(|| panic!("{file}: backend is a string")).to_owned();
            assert!(["any", "ds-data"].contains(&backend.as_str()), "{file}: backend {backend:?} is any or ds-data");
            let pairs = object["expect"].as_array().unwrap_or_else(|| panic!("{file}: expect is an array"));
            let mut expect = BTreeSet::new();
            for pair in pairs {
                let pair: Vec<&str> =
                    pair.as_array().map(|p| p.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                let [field, rule] = pair[..] else { panic!("{file}: {pair:?} is not a [field, rule] pair of strings") };
                assert_eq!(rule_named(rule).as_str(), rule, "{file}: rule names are kebab-case");
                assert!(
                    expect.insert((field.to_owned(), rule.to_owned())),
                    "{file}: [{field:?}, {rule:?}] listed twice"
                );
            }
            Case { file, backend, expect }
        })
        .collect();
    (now, cases)
}

/// What the parser reports for a body: the set of (field, rule) pairs, and the messages to show.
fn parse(body: &str, rules: EventRules) -> (BTreeSet<Pair>, Vec<String>) {
    match HrEvent::parse(body, rules) {
        Ok(_) => (BTreeSet::new(), Vec::new()),
        Err(invalid) => {
            let pairs =
                invalid.rules().into_iter().map(|(field, rule)| (field.to_owned(), rule.as_str().to_owned())).collect();
            (pairs, invalid.errors.iter().map(ToString::to_string).collect())
        }
    }
}

fn show(pairs: &BTreeSet<Pair>) -> String {
    let items: Vec<String> = pairs.iter().map(|(field, rule)| format!("[{field:?}, {rule:?}]")).collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn the_parser_reports_exactly_what_each_case_expects() {
    let (now, cases) = manifest();
    let mut failures = Vec::new();
    for case in &cases {
        let path = corpus_dir().join(&case.file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let body = String::from_utf8(bytes).unwrap_or_else(|_| panic!("{} is not UTF-8", case.file));
        let backend = if case.backend == "ds-data" { UserNameRules::DS_DATA } else { UserNameRules::WORKSPACES };
        let (got, messages) = parse(&body, EventRules::at(now, backend));
        if got != case.expect {
            let missing: BTreeSet<Pair> = case.expect.difference(&got).cloned().collect();
            let unexpected: BTreeSet<Pair> = got.difference(&case.expect).cloned().collect();
            let mut text = format!("{} [{}]:", case.file, case.backend);
            if !missing.is_empty() {
                text.push_str(&format!("\n    expected but not reported: {}", show(&missing)));
            }
            if !unexpected.is_empty() {
                text.push_str(&format!("\n    reported but not expected: {}", show(&unexpected)));
            }
            text.push_str(&format!("\n    the parser says: {}", show(&got)));
            for message in messages {
                text.push_str(&format!("\n      {message}"));
            }
            failures.push(text);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with the parser:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

#[test]
fn the_manifest_covers_every_file_and_every_rule() {
    let (_, cases) = manifest();
    assert!(cases.len() >= 60, "at least 60 cases (got {})", cases.len());

    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") && name != "cases.json" {
            on_disk.insert(name);
        }
    }
    let mut by_file: BTreeMap<&str, Vec<&Case>> = BTreeMap::new();
    for case in &cases {
        by_file.entry(case.file.as_str()).or_default().push(case);
    }
    let listed: BTreeSet<String> = by_file.keys().map(|f| (*f).to_owned()).collect();
    let unlisted: Vec<&String> = on_disk.difference(&listed).collect();
    let missing: Vec<&String> = listed.difference(&on_disk).collect();
    assert!(unlisted.is_empty(), "files in events/hr/ that cases.json does not list: {unlisted:?}");
    assert!(missing.is_empty(), "files cases.json lists that are not in events/hr/: {missing:?}");

    for (file, cases) in &by_file {
        let backends: BTreeSet<&str> = cases.iter().map(|c| c.backend.as_str()).collect();
        assert_eq!(backends.len(), cases.len(), "{file}: one case per backend");
        if file.starts_with("valid-") {
            assert!(
                cases.iter().all(|c| c.expect.is_empty()),
                "{file}: a valid-* file expects nothing, whatever the backend"
            );
        } else {
            assert!(file.starts_with("invalid-"), "{file}: named valid-* or invalid-*");
            assert!(
                cases.iter().any(|c| !c.expect.is_empty()),
                "{file}: an invalid-* file breaks a rule with some backend"
            );
        }
    }

    let covered: BTreeSet<&str> = cases.iter().flat_map(|c| c.expect.iter().map(|(_, rule)| rule.as_str())).collect();
    for rule in ALL_RULES {
        if from_a_body(rule) {
            assert!(covered.contains(rule.as_str()), "no case breaks the rule {:?}", rule.as_str());
        } else {
            assert!(!covered.contains(rule.as_str()), "a body cannot break {:?}", rule.as_str());
        }
    }
}
