//! Creates the stack's table (with its stream), queues (with DLQs and redrive policies), event
//! bus and rules on the local endpoints.

use crate::stack::{EventBusDef, QueueDef, StackDefinition, TableDef};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("creating table {table}: {source}")]
    Table { table: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("creating queue {queue}: {source}")]
    Queue { queue: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("creating event bus {bus}: {source}")]
    EventBus { bus: String, source: Box<dyn std::error::Error + Send + Sync> },
}

#[derive(Debug, Clone)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
    pub fifo: bool,
    pub visibility_timeout_s: u32,
    pub dlq_url: Option<String>,
}

/// The created resources, by the names the stack definition uses.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table_name: String,
    /// The table's stream, when it has one.
    pub stream_arn: Option<String>,
    pub queues: BTreeMap<String, QueueInfo>,
    /// The event bus's name, when the stack has one.
    pub event_bus: Option<String>,
}

/// The clients provisioning uses.
pub struct Clients<'a> {
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
    pub sqs: &'a aws_sdk_sqs::Client,
    pub events: &'a aws_sdk_eventbridge::Client,
}

pub async fn provision(def: &StackDefinition, prefix: &str, clients: Clients<'_>) -> Result<Resources, ProvisionError> {
    let table_name = format!("{prefix}{}", def.table.name);
    let stream_arn = create_table(clients.dynamodb, &def.table, &table_name)
        .await
        .map_err(|source| ProvisionError::Table { table: table_name.clone(), source })?;
    let mut queues = BTreeMap::new();
    for q in &def.queues {
        let info = create_queue(clients.sqs, q, prefix)
            .await
            .map_err(|source| ProvisionError::Queue { queue: q.name.clone(), source })?;
        queues.insert(q.name.clone(), info);
    }
    let mut event_bus = None;
    if let Some(bus) = &def.event_bus {
        let name = format!("{prefix}{}", bus.name);
        create_bus(clients.events, bus, &name, prefix, &queues)
            .await
            .map_err(|source| ProvisionError::EventBus { bus: name.clone(), source })?;
        event_bus = Some(name);
    }
    Ok(Resources { table_name, stream_arn, queues, event_bus })
}

/// The bus, and each rule with its queue as the target.
async fn create_bus(
    client: &aws_sdk_eventbridge::Client,
    def: &EventBusDef,
    name: &str,
    prefix: &str,
    queues: &BTreeMap<String, QueueInfo>,
) -> Result<(), BoxError> {
    match client.create_event_bus().name(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) => {}
        Err(e) => return Err(e.into()),
    }
    for rule in &def.rules {
        let rule_name = format!("{prefix}{}", rule.name);
        client.put_rule().name(&rule_name).event_bus_name(name).event_pattern(rule.pattern.to_string()).send().await?;
        let queue = queues.get(&rule.queue).ok_or_else(|| format!("rule {}: no queue {}", rule.name, rule.queue))?;
        client
            .put_targets()
            .rule(&rule_name)
            .event_bus_name(name)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(&queue.arn).build()?)
            .send()
            .await?;
    }
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, BoxError> {
    Ok(KeySchemaElement::builder().attribute_name(name).key_type(key_type).build()?)
}

fn schema(partition: &str, sort: Option<&String>) -> Result<Vec<KeySchemaElement>, BoxError> {
    let mut keys = vec![key(partition, KeyType::Hash)?];
    if let Some(sort) = sort {
        keys.push(key(sort, KeyType::Range)?);
    }
    Ok(keys)
}

/// Creates the table (with its stream, if it has one) and answers the stream's ARN.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    def: &TableDef,
    name: &str,
) -> Result<Option<String>, BoxError> {
    let mut attributes: Vec<&String> = vec![&def.partition_key];
    attributes.extend(def.sort_key.iter());
    for index in &def.indexes {
        attributes.push(&index.partition_key);
        attributes.extend(index.sort_key.iter());
    }
    attributes.sort();
    attributes.dedup();
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(schema(&def.partition_key, def.sort_key.as_ref())?));
    for attribute in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder().attribute_name(attribute).attribute_type(ScalarAttributeType::S).build()?,
        );
    }
    for index in &def.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(schema(&index.partition_key, index.sort_key.as_ref())?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()?,
        );
    }
    if let Some(view) = &def.stream_view_type {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(ttl) = &def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build()?)
            .send()
            .await?;
    }
    if def.stream_view_type.is_none() {
        return Ok(None);
    }
    let table = client.describe_table().table_name(name).send().await?;
    let arn = table.table().and_then(|t| t.latest_stream_arn()).ok_or("the table has no stream")?;
    Ok(Some(arn.to_owned()))
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String, BoxError> {
    let out = client.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| format!("queue {url} has no QueueArn").into())
}

async fn create_queue(client: &aws_sdk_sqs::Client, def: &QueueDef, prefix: &str) -> Result<QueueInfo, BoxError> {
    let fifo_attributes = |mut request: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
        if def.fifo {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
            if def.content_based_deduplication {
                request = request.attributes(QueueAttributeName::ContentBasedDeduplication, "true");
            }
        }
        request
    };
    let mut dlq_url = None;
    let mut redrive = None;
    if let Some(dlq) = &def.dlq {
        let out = fifo_attributes(client.create_queue().queue_name(format!("{prefix}{}", dlq.name)))
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await?;
        let url = out.queue_url().ok_or("CreateQueue returned no URL")?.to_owned();
        let arn = queue_arn(client, &url).await?;
        redrive = Some(
            serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": dlq.max_receive_count }).to_string(),
        );
        dlq_url = Some(url);
    }
    let mut request = fifo_attributes(client.create_queue().queue_name(format!("{prefix}{}", def.name)))
        .attributes(QueueAttributeName::VisibilityTimeout, def.visibility_timeout_s.to_string())
        .attributes(QueueAttributeName::MessageRetentionPeriod, def.message_retention_s.to_string());
    if let Some(policy) = redrive {
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = request.send().await?;
    let url = out.queue_url().ok_or("CreateQueue returned no URL")?.to_owned();
    let arn = queue_arn(client, &url).await?;
    Ok(QueueInfo {
        name: def.name.clone(),
        url,
        arn,
        fifo: def.fifo,
        visibility_timeout_s: def.visibility_timeout_s,
        dlq_url,
    })
}
