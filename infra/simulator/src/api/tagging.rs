//! The Resource Groups Tagging API (`ResourceGroupsTaggingAPI_20170126`, awsJson1_1): only
//! `GetResources` by `ResourceARNList`, the form that reads up to 100 named resources' tags in one
//! call. As the service model says: the list cannot be combined with filters or pagination, a
//! resource that does not exist is left out without an error, and so is one without tags.
//! What is not simulated: how late a tag change shows here (AWS does not say; README).

use super::Fields;
use crate::config::Service;
use crate::error::{ApiError, Protocol};
use crate::{Inner, OpResult, Simulator};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

const SVC: Service = Service::ResourceGroupsTagging;
/// `ResourceARNListForGet`: 1 to 100 ARNs.
const MAX_ARNS: usize = 100;
/// Members the service refuses beside `ResourceARNList`.
const NOT_WITH_ARN_LIST: [&str; 5] =
    ["TagFilters", "ResourceTypeFilters", "ResourcesPerPage", "TagsPerPage", "PaginationToken"];

pub async fn dispatch(sim: &Simulator, op: &str, body: Value) -> Response {
    let run: fn(&mut Inner, f64, &Value) -> OpResult = match op {
        "GetResources" => get_resources,
        _ => {
            return ApiError::bad_request(
                "UnknownOperationException",
                format!("the Resource Groups Tagging API has no simulated {op}"),
            )
            .render(Protocol::AwsJson);
        }
    };
    sim.call(Protocol::AwsJson, SVC, op, |inner, now| run(inner, now, &body)).await
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidParameterException", message)
}

/// The WorkSpace id an ARN names (`arn:<partition>:workspaces:<region>:<account>:workspace/<id>`).
fn workspace_id(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "workspaces", _, _, resource] => resource.strip_prefix("workspace/"),
        _ => None,
    }
}

fn get_resources(inner: &mut Inner, _now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let Some(arns) = f.opt_list("ResourceARNList", 1, MAX_ARNS)? else {
        return Err(invalid("the simulator answers GetResources by ResourceARNList only"));
    };
    if let Some(other) = NOT_WITH_ARN_LIST.iter().find(|m| body.get(**m).is_some_and(|v| !v.is_null())) {
        return Err(invalid(format!("ResourceARNList cannot be specified with {other}")));
    }
    let mut mappings = Vec::new();
    for (i, arn) in arns.iter().enumerate() {
        let arn = arn.as_str().ok_or_else(|| {
            ApiError::bad_request("SerializationException", format!("resourceARNList.{} must be a string", i + 1))
        })?;
        f.check_len("ResourceARNList", arn, 1, 1011)?;
        let Some(ws) = workspace_id(arn).and_then(|id| inner.world.workspace_by_id(id)) else { continue };
        if ws.tags.is_empty() {
            continue;
        }
        let tags: Vec<Value> = ws.tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect();
        mappings.push(json!({ "ResourceARN": arn, "Tags": tags }));
    }
    inner.record_items(SVC, "GetResources", arns.len());
    Ok((StatusCode::OK, json!({ "PaginationToken": "", "ResourceTagMappingList": mappings })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_arn_names_its_id_and_nothing_else_does() {
        assert_eq!(
            workspace_id("arn:aws:workspaces:eu-west-1:123456789012:workspace/ws-abc123def"),
            Some("ws-abc123def")
        );
        assert_eq!(workspace_id("arn:aws-cn:workspaces:cn-north-1:123456789012:workspace/ws-1"), Some("ws-1"));
        assert_eq!(workspace_id("arn:aws:workspaces:eu-west-1:123456789012:directoryid/d-123"), None);
        assert_eq!(workspace_id("arn:aws:ec2:eu-west-1:123456789012:workspace/ws-1"), None);
        assert_eq!(workspace_id("ws-abc123def"), None);
    }
}
