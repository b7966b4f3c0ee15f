//! The pure logic on every event's path, per event: parsing and validating an HR event, its
//! payload hash, turning Lambda's SQS event into records, batching requests 25 per
//! CreateWorkspaces, mapping the response back, and the partial batch response.
//! `cargo bench -p shared --bench hot_path` (or `make bench-micro`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use shared::domain::event::{EventRules, HrEvent, canonical_hash};
use shared::domain::messages::WorkspaceRequest;
use shared::domain::names::UserNameRules;
use shared::domain::time::Timestamp;
use shared::domain::workspace::MAX_PER_CALL;
use shared::ports::{CreateItem, CreateResponse, FailedCreate, WorkspaceInfo};
use shared::services::BatchOutcome;
use shared::services::provisioner::{create_item, match_response};
use std::hint::black_box;

const JOIN: &str = include_str!("../../events/hr/valid-join.json");
const INVALID: &str = include_str!("../../events/hr/invalid-username-characters.json");
const REQUEST_EVENT: &str = include_str!("../../events/provisioner/request.json");

/// 100 WorkSpace requests as the provisioner receives them (a full batch), one per employee.
fn request_batch() -> SqsEvent {
    let mut event: Value = serde_json::from_str(REQUEST_EVENT).unwrap();
    let template = event["Records"][0].clone();
    let body: WorkspaceRequest = serde_json::from_str(template["body"].as_str().unwrap()).unwrap();
    event["Records"] = (0..100)
        .map(|i| {
            let mut record = template.clone();
            let request =
                WorkspaceRequest { employee_id: format!("E{i:05}"), username: format!("user{i:05}"), ..body.clone() };
            record["messageId"] = format!("m-{i}").into();
            record["body"] = serde_json::to_string(&request).unwrap().into();
            record
        })
        .collect();
    serde_json::from_value(event).unwrap()
}

fn events(c: &mut Criterion) {
    let mut group = c.benchmark_group("per event");
    group.throughput(Throughput::Elements(1));
    // The rules are made per record in the intake (they carry the time), so per iteration here.
    let rules = || EventRules::at(Timestamp::now(), UserNameRules::DS_DATA);
    group.bench_function("parse and validate a join", |b| b.iter(|| HrEvent::parse(black_box(JOIN), rules()).unwrap()));
    group.bench_function("parse and reject an invalid event", |b| {
        b.iter(|| HrEvent::parse(black_box(INVALID), rules()).unwrap_err())
    });
    let value: Value = serde_json::from_str(JOIN).unwrap();
    group.bench_function("payload hash (idempotency)", |b| b.iter(|| canonical_hash(black_box(&value))));
    group.finish();
}

fn provisioning(c: &mut Criterion) {
    let batch = request_batch();
    let records = shared::lambda::records(&batch);
    let mut group = c.benchmark_group("per request, in a batch of 100");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("SQS event to records", |b| b.iter(|| shared::lambda::records(black_box(&batch))));
    group.bench_function("parse requests and batch 25 per call", |b| {
        b.iter(|| {
            let requests: Vec<WorkspaceRequest> =
                black_box(&records).iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
            requests.chunks(MAX_PER_CALL).map(|c| c.iter().map(create_item).collect::<Vec<_>>()).collect::<Vec<_>>()
        })
    });
    let items: Vec<CreateItem> = records
        .iter()
        .take(MAX_PER_CALL)
        .map(|r| create_item(&serde_json::from_str::<WorkspaceRequest>(&r.body).unwrap()))
        .collect();
    // The service answers in its own order: pending reversed, one failure in the middle.
    let response = CreateResponse {
        pending: items
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, _)| *i != 13)
            .map(|(i, item)| WorkspaceInfo {
                workspace_id: format!("ws-{i:09}"),
                directory_id: item.directory_id.clone(),
                user_name: item.user_name.to_uppercase(),
                workspace_name: None,
                state: shared::domain::workspace::WorkspaceState::Pending,
                error_code: None,
                error_message: None,
                bundle_id: None,
                properties: None,
            })
            .collect(),
        failed: vec![FailedCreate {
            directory_id: items[13].directory_id.clone(),
            user_name: items[13].user_name.clone(),
            workspace_name: None,
            code: "ResourceNotFound.User".into(),
            message: "The user could not be found.".into(),
        }],
    };
    group.throughput(Throughput::Elements(MAX_PER_CALL as u64));
    group.bench_function("map a CreateWorkspaces response to its 25 items", |b| {
        b.iter(|| match_response(black_box(&items), black_box(&response)))
    });
    let failed: Vec<String> = records.iter().step_by(7).map(|r| r.message_id.clone()).collect();
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("partial batch response", |b| {
        b.iter(|| {
            let mut outcome = BatchOutcome::default();
            outcome.failed_message_ids = black_box(failed.clone());
            shared::lambda::batch_response(outcome)
        })
    });
    group.finish();
}

criterion_group!(benches, events, provisioning);
criterion_main!(benches);
