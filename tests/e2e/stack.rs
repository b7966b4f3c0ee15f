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
}
