//! The local stack's definition: the table, the queues and the functions with their event
//! sources, as the deployment template declares them.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackDefinition {
    pub table: TableDef,
    pub queues: Vec<QueueDef>,
    #[serde(default)]
    pub functions: Vec<FunctionDef>,
    /// The lifecycle events' bus, and the rules that route them to queues.
    pub event_bus: Option<EventBusDef>,
}

/// A custom EventBridge bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBusDef {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

/// A rule sending the events its pattern matches to a queue of the stack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: String,
    pub pattern: serde_json::Value,
    pub queue: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    pub name: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
    #[serde(default)]
    pub indexes: Vec<IndexDef>,
    pub ttl_attribute: Option<String>,
    /// `StreamSpecification.StreamViewType`, when the table has a stream.
    pub stream_view_type: Option<String>,
}

/// A global secondary index (string keys, all attributes projected).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexDef {
    pub name: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDef {
    pub name: String,
    #[serde(default)]
    pub fifo: bool,
    #[serde(default)]
    pub content_based_deduplication: bool,
    pub visibility_timeout_s: u32,
    #[serde(default = "default_retention")]
    pub message_retention_s: u32,
    pub dlq: Option<DlqDef>,
}

fn default_retention() -> u32 {
    345_600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqDef {
    pub name: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDef {
    pub name: String,
    /// The binary's name, looked up in the runner's binary directory.
    pub binary: String,
    pub timeout_s: u64,
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Values may use `${table}`, `${queue_url:NAME}` and `${queue_arn:NAME}`.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub sqs: Vec<SqsMapping>,
    pub schedule: Option<Schedule>,
    /// A DynamoDB event source mapping on the table's stream.
    pub dynamodb_stream: Option<StreamMapping>,
}

/// A DynamoDB stream event source mapping (one shard's records in order).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMapping {
    pub batch_size: usize,
    #[serde(default)]
    pub batching_window_s: u64,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    #[serde(default)]
    pub bisect_on_error: bool,
    /// Retries of a failing batch before its records go to the failure destination.
    pub maximum_retry_attempts: u32,
    /// Records older than this go to the failure destination instead.
    pub maximum_record_age_s: u64,
    #[serde(default = "yes")]
    pub report_batch_item_failures: bool,
    /// FilterCriteria: only records whose sort key `sk` is this and whose partition key `pk`
    /// starts with `filter_pk_prefix` reach the function.
    pub filter_sort_key: Option<String>,
    pub filter_pk_prefix: Option<String>,
    /// The queue the mapping sends a description of the records it gave up on.
    pub on_failure_queue: String,
}

fn default_memory() -> u32 {
    128
}

/// An SQS event source mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsMapping {
    pub queue: String,
    pub batch_size: usize,
    #[serde(default)]
    pub batching_window_s: u64,
    /// `ScalingConfig.MaximumConcurrency`: batches in flight at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "yes")]
    pub report_batch_item_failures: bool,
}

fn default_concurrency() -> usize {
    2
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub rate_s: u64,
    /// Kept at `rate_s` when the runner speeds schedules up (`--schedule-every-s`, the tests):
    /// a daily job stays daily, and runs when invoked (the tests and the demo invoke it).
    #[serde(default)]
    pub fixed: bool,
}

impl StackDefinition {
    /// The rules the real services would enforce at deployment.
    pub fn validate(&self) -> Result<(), String> {
        let queue = |name: &str| self.queues.iter().find(|q| q.name == name);
        for q in &self.queues {
            if q.fifo != q.name.ends_with(".fifo") {
                return Err(format!("queue {}: a FIFO queue's name ends in .fifo, and only its", q.name));
            }
            if let Some(dlq) = &q.dlq {
                if dlq.name.ends_with(".fifo") != q.fifo {
                    return Err(format!("queue {}: its DLQ {} must be of the same type", q.name, dlq.name));
                }
                if !(1..=1000).contains(&dlq.max_receive_count) {
                    return Err(format!("queue {}: maxReceiveCount must be 1-1000", q.name));
                }
            }
        }
        for f in &self.functions {
            if let Some(m) = &f.dynamodb_stream {
                if self.table.stream_view_type.is_none() {
                    return Err(format!("function {}: the table has no stream", f.name));
                }
                if !(1..=10_000).contains(&m.batch_size) || m.batching_window_s > 300 {
                    return Err(format!("function {}: stream batch_size 1-10000, window at most 300 s", f.name));
                }
                if !matches!(m.starting_position.as_str(), "TRIM_HORIZON" | "LATEST") {
                    return Err(format!("function {}: starting_position TRIM_HORIZON or LATEST", f.name));
                }
                if m.maximum_retry_attempts > 10_000 || !(60..=604_800).contains(&m.maximum_record_age_s) {
                    return Err(format!("function {}: retries at most 10000, record age 60-604800 s", f.name));
                }
                queue(&m.on_failure_queue)
                    .ok_or_else(|| format!("function {}: no queue {}", f.name, m.on_failure_queue))?;
            }
            for m in &f.sqs {
                let q = queue(&m.queue).ok_or_else(|| format!("function {}: no queue {}", f.name, m.queue))?;
                let max = if q.fifo { 10 } else { 10_000 };
                if m.batch_size == 0 || m.batch_size > max {
                    return Err(format!("function {}: batch_size must be 1-{max} for {}", f.name, q.name));
                }
                if q.fifo && m.batching_window_s > 0 {
                    return Err(format!("function {}: FIFO queues take no batching window", f.name));
                }
                if !q.fifo && m.batch_size > 10 && m.batching_window_s == 0 {
                    return Err(format!("function {}: batch_size > 10 needs a batching window", f.name));
                }
                if m.batching_window_s > 300 {
                    return Err(format!("function {}: batching window is at most 300 s", f.name));
                }
                if u64::from(q.visibility_timeout_s) < f.timeout_s + m.batching_window_s {
                    return Err(format!(
                        "queue {}: visibility timeout {} s is below function {}'s timeout + batching window",
                        q.name, q.visibility_timeout_s, f.name
                    ));
                }
                if m.max_concurrency < 2 {
                    return Err(format!("function {}: MaximumConcurrency is at least 2", f.name));
                }
            }
        }
        if let Some(bus) = &self.event_bus {
            for rule in &bus.rules {
                queue(&rule.queue).ok_or_else(|| format!("rule {}: no queue {}", rule.name, rule.queue))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_stack_is_valid() {
        let def: StackDefinition = serde_json::from_str(include_str!("../stack.json")).unwrap();
        def.validate().unwrap();
    }

    #[test]
    fn fifo_mapping_rules() {
        let mut def: StackDefinition = serde_json::from_str(include_str!("../stack.json")).unwrap();
        let fifo = def.queues.iter().find(|q| q.fifo).unwrap().name.clone();
        def.functions.push(FunctionDef {
            name: "f".into(),
            binary: "f".into(),
            timeout_s: 1,
            memory_mb: 128,
            environment: Default::default(),
            sqs: vec![SqsMapping {
                queue: fifo,
                batch_size: 25,
                batching_window_s: 0,
                max_concurrency: 2,
                report_batch_item_failures: true,
            }],
            schedule: None,
            dynamodb_stream: None,
        });
        assert!(def.validate().unwrap_err().contains("batch_size must be 1-10"));
    }
}
