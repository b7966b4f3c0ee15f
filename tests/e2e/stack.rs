//! The project's stack definition becomes real queues and a real table on the emulator.

use crate::helpers::TestStack;
use aws_sdk_sqs::types::QueueAttributeName as A;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_stack_creates_queues_with_redrive_and_the_table_with_index_and_ttl() {
    let def: Value = serde_json::from_str(include_str!("../../infra/local/stack.json")).unwrap();
    let t = TestStack::start(def.clone()).await;
    for queue in def["queues"].as_array().unwrap() {
        let name = queue["name"].as_str().unwrap();
        let out =
            t.sqs.get_queue_attributes().queue_url(t.queue_url(name)).attribute_names(A::All).send().await.unwrap();
        let attrs = out.attributes().unwrap();
        assert_eq!(attrs[&A::VisibilityTimeout], queue["visibility_timeout_s"].to_string());
        let fifo = queue["fifo"].as_bool().unwrap_or(false);
        assert_eq!(attrs.get(&A::FifoQueue).map(String::as_str), fifo.then_some("true"), "{name}");
        assert_eq!(
            attrs[&A::MessageRetentionPeriod],
            queue["message_retention_s"].as_u64().unwrap_or(345_600).to_string()
        );
        if queue["dlq"].is_null() {
            assert!(!attrs.contains_key(&A::RedrivePolicy), "{name} has no DLQ");
            continue;
        }
        let redrive: Value = serde_json::from_str(&attrs[&A::RedrivePolicy]).unwrap();
        assert_eq!(redrive["maxReceiveCount"].to_string(), queue["dlq"]["max_receive_count"].to_string());
        assert!(redrive["deadLetterTargetArn"].as_str().unwrap().ends_with(queue["dlq"]["name"].as_str().unwrap()));
    }
    let table =
        t.dynamodb.describe_table().table_name(&t.stack.resources.table_name).send().await.unwrap().table.unwrap();
    let index = &table.global_secondary_indexes()[0];
    assert_eq!(index.index_name(), def["table"]["indexes"][0]["name"].as_str());
    let ttl = t.dynamodb.describe_time_to_live().table_name(&t.stack.resources.table_name).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), def["table"]["ttl_attribute"].as_str());
    // The stream the publisher reads, with both images.
    let stream = table.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type().map(|v| v.as_str()), def["table"]["stream_view_type"].as_str());
    assert_eq!(table.latest_stream_arn(), t.stack.resources.stream_arn.as_deref());
    // The event bus, each rule with its pattern and its queue as the target.
    let events = aws_sdk_eventbridge::Client::new(&crate::helpers::sdk_config(t.moto_url).await);
    let bus = t.stack.resources.event_bus.clone().unwrap();
    let rules = events.list_rules().event_bus_name(&bus).send().await.unwrap();
    let local_rules = def["event_bus"]["rules"].as_array().unwrap();
    assert_eq!(rules.rules().len(), local_rules.len());
    for rule in local_rules {
        let name = rules.rules().iter().find(|r| r.name().unwrap().ends_with(rule["name"].as_str().unwrap())).unwrap();
        let pattern: Value = serde_json::from_str(name.event_pattern().unwrap()).unwrap();
        assert_eq!(pattern, rule["pattern"]);
        let targets =
            events.list_targets_by_rule().rule(name.name().unwrap()).event_bus_name(&bus).send().await.unwrap();
        let queue = &t.stack.resources.queues[rule["queue"].as_str().unwrap()];
        assert_eq!(targets.targets().iter().map(|t| t.arn()).collect::<Vec<_>>(), [queue.arn.as_str()]);
    }
}
