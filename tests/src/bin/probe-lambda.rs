//! A Lambda used to test the local runner itself: it does to each SQS record what the record's
//! body asks (`ok`, `fail`, `sleep`, `crash_first`), and counts deliveries in DynamoDB so tests
//! can see exactly what the event source mapping delivered.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("TABLE_NAME")?;
    let config = aws_config::load_from_env().await;
    let db = aws_sdk_dynamodb::Client::new(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(&db, &table, event.payload))).await
}

/// Adds one delivery of `id` and returns the count so far.
async fn count(db: &aws_sdk_dynamodb::Client, table: &str, id: &str, group: Option<&str>) -> Result<i64, Error> {
    let mut update = db
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("probe#{id}")))
        .key("sk", AttributeValue::S("probe".into()))
        .update_expression("ADD deliveries :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew);
    if let Some(group) = group {
        // The order records of a FIFO group were handled in.
        update = db
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("probe-group#{group}")))
            .key("sk", AttributeValue::S("probe".into()))
            .update_expression("SET seen = list_append(if_not_exists(seen, :empty), :id) ADD deliveries :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":id", AttributeValue::L(vec![AttributeValue::S(id.into())]))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew);
        update.send().await?;
        return Ok(0);
    }
    let out = update.send().await?;
    let n = out
        .attributes()
        .and_then(|a| a.get("deliveries"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(n)
}

async fn handle(db: &aws_sdk_dynamodb::Client, table: &str, event: Value) -> Result<Value, Error> {
    if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        count(db, table, "schedule", None).await?;
        return Ok(Value::Null);
    }
    let event: SqsEvent = serde_json::from_value(event)?;
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let body: Value = serde_json::from_str(record.body.as_deref().unwrap_or("{}"))?;
        let id = body["id"].as_str().unwrap_or(&message_id).to_owned();
        let group = record.attributes.get("MessageGroupId").cloned();
        let deliveries = count(db, table, &id, group.as_deref()).await?;
        match body["action"].as_str().unwrap_or("ok") {
            "fail" => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
            "sleep" => tokio::time::sleep(std::time::Duration::from_millis(body["ms"].as_u64().unwrap_or(0))).await,
            "crash_first" if deliveries == 1 => std::process::exit(3),
            "bad_identifier" => {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = String::new();
                response.batch_item_failures.push(failure);
            }
            _ => {}
        }
    }
    Ok(serde_json::to_value(response)?)
}
