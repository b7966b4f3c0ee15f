//! The local stack's runner: creates the queues, the table (with its stream) and the event bus,
//! runs each function's real binary behind the Lambda Runtime API, plays the SQS and DynamoDB
//! stream event source mappings and the schedules, and serves the Lambda Invoke API for
//! `cargo lambda invoke`.

pub mod chaos;
pub mod esm;
pub mod invoke_api;
pub mod passthrough;
pub mod process;
pub mod provision;
pub mod recorder;
pub mod runtime;
pub mod schedule;
pub mod stack;
pub mod streams;

use crate::invoke_api::Functions;
use crate::provision::Resources;
use crate::runtime::{FunctionPool, FunctionSpec};
use crate::stack::StackDefinition;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Options {
    /// Prepended to every queue and table name, so several stacks can share one emulator.
    pub prefix: String,
    /// Where the function binaries are.
    pub bin_dir: PathBuf,
    pub region: String,
    /// Fire schedules this often instead of their deployed rate (local acceleration).
    pub schedule_every: Option<Duration>,
    /// Cap the queues' visibility timeouts (local acceleration of retries).
    pub max_visibility_timeout_s: Option<u32>,
    /// Address for the Invoke API; port 0 picks one.
    pub invoke_addr: String,
    /// Variables given to every function on top of its own (endpoints, credentials), beside
    /// those the runner's process environment passes on.
    pub extra_env: BTreeMap<String, String>,
    /// Deliver every SQS batch twice (at-least-once delivery, exaggerated for tests).
    pub duplicate_deliveries: bool,
    /// Functions whose SQS event source mappings start disabled (`Enabled: false`), until
    /// [`LocalStack::set_mapping_enabled`] turns them on.
    pub disabled_mappings: BTreeSet<String>,
    /// Record the AWS operations each function calls into this JSON file ([`recorder`]).
    pub record_calls: Option<PathBuf>,
    /// Extra deliveries and killed processes, at random ([`chaos`]).
    pub chaos: Option<chaos::ChaosOptions>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid stack definition: {0}")]
    Definition(String),
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("function {function}: binary {path} not found (build it first)")]
    MissingBinary { function: String, path: String },
    #[error("function {function}: environment {variable} refers to unknown {reference}")]
    UnknownReference { function: String, variable: String, reference: String },
    #[error("starting {what}: {source}")]
    Io { what: String, source: std::io::Error },
}

/// A running local stack; dropping it stops every function and poller.
pub struct LocalStack {
    pub resources: Resources,
    pub functions: Functions,
    pub invoke_url: String,
    mappings: BTreeMap<String, watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
    /// Kept for as long as the stack runs: its pass-throughs stop with it.
    _recorder: Option<recorder::Recorder>,
    /// What the runner's own faults injected, when it has any.
    pub chaos: Option<Arc<chaos::Chaos>>,
}

impl LocalStack {
    /// UpdateEventSourceMapping's `Enabled` for every SQS mapping of `function`: false stops
    /// polling (batches in flight finish), true resumes it. False when `function` has no SQS
    /// mapping.
    pub fn set_mapping_enabled(&self, function: &str, enabled: bool) -> bool {
        self.mappings.get(function).map(|switch| switch.send_replace(enabled)).is_some()
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for pool in self.functions.values() {
            pool.stop();
        }
    }
}

/// What a function needs to reach the local emulators through the SDK's own variables: test
/// credentials, SQS, DynamoDB and EventBridge at `sqs_dynamodb` (moto, or something in front of it), and the
/// simulated services at `simulator`.
pub fn emulator_env(sqs_dynamodb: &str, simulator: &str) -> BTreeMap<String, String> {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL_SQS", sqs_dynamodb),
        ("AWS_ENDPOINT_URL_DYNAMODB", sqs_dynamodb),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", sqs_dynamodb),
        ("AWS_ENDPOINT_URL_WORKSPACES", simulator),
        ("AWS_ENDPOINT_URL_WORKDOCS", simulator),
        ("AWS_ENDPOINT_URL_DIRECTORY_SERVICE_DATA", simulator),
        ("AWS_ENDPOINT_URL_DIRECTORY_SERVICE", simulator),
        ("AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API", simulator),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Replaces `${table}`, `${event_bus}`, `${queue_url:NAME}` and `${queue_arn:NAME}`.
pub fn resolve(value: &str, resources: &Resources) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| after.to_owned())?;
        let reference = &after[..end];
        let resolved = match reference.split_once(':') {
            None if reference == "table" => Some(resources.table_name.clone()),
            None if reference == "event_bus" => resources.event_bus.clone(),
            Some(("queue_url", q)) => resources.queues.get(q).map(|q| q.url.clone()),
            Some(("queue_arn", q)) => resources.queues.get(q).map(|q| q.arn.clone()),
            _ => None,
        };
        out.push_str(&resolved.ok_or_else(|| reference.to_owned())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub async fn start(
    def: &StackDefinition,
    options: &Options,
    sdk: &aws_config::SdkConfig,
) -> Result<LocalStack, StartError> {
    def.validate().map_err(StartError::Definition)?;
    if let Some(name) = options
        .disabled_mappings
        .iter()
        .find(|name| !def.functions.iter().any(|f| &f.name == *name && !f.sqs.is_empty()))
    {
        return Err(StartError::Definition(format!(
            "disabled mapping: function {name} has no SQS event source mapping"
        )));
    }
    let mut def = def.clone();
    if let Some(cap) = options.max_visibility_timeout_s {
        for q in &mut def.queues {
            // Never below what a batch needs in flight (window + timeout), or messages would come
            // back while they are still being handled.
            let floor = def
                .functions
                .iter()
                .flat_map(|f| f.sqs.iter().filter(|m| m.queue == q.name).map(|m| m.batching_window_s + f.timeout_s + 1))
                .max()
                .unwrap_or(0);
            q.visibility_timeout_s = q.visibility_timeout_s.min(cap).max(u32::try_from(floor).unwrap_or(u32::MAX));
        }
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let resources = provision::provision(
        &def,
        &options.prefix,
        provision::Clients { dynamodb: &dynamodb, sqs: &sqs, events: &events },
    )
    .await?;

    let recorder = options.record_calls.clone().map(recorder::Recorder::new);
    let chaos = options.chaos.clone().map(|o| Arc::new(chaos::Chaos::new(o)));
    let mut pools = BTreeMap::new();
    for f in &def.functions {
        let binary = options.bin_dir.join(&f.binary);
        if !binary.is_file() {
            return Err(StartError::MissingBinary { function: f.name.clone(), path: binary.display().to_string() });
        }
        let mut environment = options.extra_env.clone();
        for (variable, value) in &f.environment {
            let resolved = resolve(value, &resources).map_err(|reference| StartError::UnknownReference {
                function: f.name.clone(),
                variable: variable.clone(),
                reference,
            })?;
            environment.insert(variable.clone(), resolved);
        }
        if let Some(recorder) = &recorder {
            recorder
                .front(&f.name, &mut environment)
                .await
                .map_err(|source| StartError::Io { what: format!("call recorder for {}", f.name), source })?;
        }
        // Chaos duplicates run beside the batch they copy, as Lambda would run them: on instances
        // of their own.
        let per_batch = chaos.as_ref().map_or(1, |c| c.deliveries_at_once());
        let instances = f.sqs.iter().map(|m| m.max_concurrency * per_batch).sum::<usize>()
            + usize::from(f.schedule.is_some())
            + usize::from(f.dynamodb_stream.is_some());
        let spec = FunctionSpec {
            name: f.name.clone(),
            binary,
            timeout: Duration::from_secs(f.timeout_s),
            memory_mb: f.memory_mb,
            instances: instances.max(1),
            environment,
            region: options.region.clone(),
            chaos: chaos.clone(),
        };
        let pool = FunctionPool::start(spec)
            .await
            .map_err(|source| StartError::Io { what: format!("function {}", f.name), source })?;
        pools.insert(f.name.clone(), pool);
    }
    let functions: Functions = Arc::new(pools);

    let mut tasks = Vec::new();
    let mut mappings = BTreeMap::new();
    for f in &def.functions {
        let Some(pool) = functions.get(&f.name) else {
            continue;
        };
        let (switch, enabled) = watch::channel(!options.disabled_mappings.contains(&f.name));
        if !f.sqs.is_empty() {
            mappings.insert(f.name.clone(), switch);
        }
        for mapping in &f.sqs {
            let Some(queue) = resources.queues.get(&mapping.queue) else {
                continue;
            };
            tasks.push(tokio::spawn(esm::run(
                sqs.clone(),
                queue.clone(),
                mapping.clone(),
                pool.clone(),
                options.region.clone(),
                esm::ExtraDeliveries { duplicate: options.duplicate_deliveries, chaos: chaos.clone() },
                enabled.clone(),
            )));
        }
        if let (Some(mapping), Some(stream_arn)) = (&f.dynamodb_stream, &resources.stream_arn) {
            let Some(failures) = resources.queues.get(&mapping.on_failure_queue) else {
                continue;
            };
            tasks.push(tokio::spawn(streams::run(streams::StreamSource {
                streams: aws_sdk_dynamodbstreams::Client::new(sdk),
                sqs: sqs.clone(),
                stream_arn: stream_arn.clone(),
                mapping: mapping.clone(),
                failures: failures.clone(),
                pool: pool.clone(),
                region: options.region.clone(),
            })));
        }
        if let Some(schedule) = &f.schedule {
            let rate = Duration::from_secs(schedule.rate_s);
            let every = options.schedule_every.filter(|_| !schedule.fixed).unwrap_or(rate);
            // A fixed schedule first runs one period after the start, as EventBridge's rate does.
            let first = if schedule.fixed { every } else { Duration::ZERO };
            tasks.push(tokio::spawn(schedule::run(pool.clone(), every, first, options.region.clone())));
        }
    }

    let listener = tokio::net::TcpListener::bind(&options.invoke_addr)
        .await
        .map_err(|source| StartError::Io { what: format!("invoke API on {}", options.invoke_addr), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Io { what: "invoke API".into(), source })?;
    let app = invoke_api::router(functions.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "invoke API stopped");
        }
    }));
    Ok(LocalStack {
        resources,
        functions,
        invoke_url: format!("http://{addr}"),
        mappings,
        tasks,
        _recorder: recorder,
        chaos,
    })
}

/// `hr-events.fifo` → `HR_EVENTS`: the stem of the variables naming a queue.
pub fn env_stem(queue_name: &str) -> String {
    queue_name.trim_end_matches(".fifo").replace(['-', '.'], "_").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::QueueInfo;

    #[test]
    fn resolves_references() {
        let mut queues = BTreeMap::new();
        queues.insert(
            "q.fifo".to_owned(),
            QueueInfo {
                name: "q.fifo".into(),
                url: "http://x/q".into(),
                arn: "arn:q".into(),
                fifo: true,
                visibility_timeout_s: 1,
                dlq_url: None,
            },
        );
        let resources = Resources { table_name: "t".into(), stream_arn: None, queues, event_bus: Some("b".into()) };
        assert_eq!(
            resolve("${table}/${queue_url:q.fifo}|${queue_arn:q.fifo}|${event_bus}", &resources).unwrap(),
            "t/http://x/q|arn:q|b"
        );
        assert_eq!(resolve("${queue_url:nope}", &resources).unwrap_err(), "queue_url:nope");
        assert_eq!(env_stem("hr-events-dlq.fifo"), "HR_EVENTS_DLQ");
    }
}
