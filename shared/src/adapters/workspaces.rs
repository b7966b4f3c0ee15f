//! The WorkSpaces port on the WorkSpaces API.

use super::{describe_sdk_error, is_throttling};
use crate::domain::workspace::{MAX_PER_CALL, PropertyChange, WorkspaceProperties as Properties, WorkspaceState};
use crate::ports::{
    CreateItem, CreateResponse, FailedCreate, FailedTerminate, WorkspaceInfo, WorkspacePage, WorkspacesApi,
    WorkspacesError,
};
use aws_sdk_workspaces::types::{
    Compute, Protocol, RunningMode, Tag, TargetWorkspaceState, TerminateRequest, Workspace, WorkspaceProperties,
    WorkspaceRequest as SdkRequest,
};
use std::collections::BTreeMap;

pub struct AwsWorkspaces {
    client: aws_sdk_workspaces::Client,
}

impl AwsWorkspaces {
    pub fn new(client: aws_sdk_workspaces::Client) -> Self {
        Self { client }
    }
}

/// A failed call as the WorkSpaces port says it (the Tagging API's calls too): throttling apart.
pub(super) fn error<E, R>(
    operation: &'static str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> WorkspacesError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    let (code, message, retryable) = describe_sdk_error(err);
    if is_throttling(&code) {
        WorkspacesError::Throttled(format!("{operation}: {message}"))
    } else {
        WorkspacesError::Service { operation, code, message, retryable }
    }
}

fn info(ws: &Workspace) -> WorkspaceInfo {
    WorkspaceInfo {
        workspace_id: ws.workspace_id().unwrap_or_default().to_owned(),
        directory_id: ws.directory_id().unwrap_or_default().to_owned(),
        user_name: ws.user_name().unwrap_or_default().to_owned(),
        workspace_name: ws.workspace_name().map(str::to_owned),
        state: WorkspaceState::parse(ws.state().map(|s| s.as_str()).unwrap_or_default()),
        error_code: ws.error_code().map(str::to_owned),
        error_message: ws.error_message().map(str::to_owned),
        bundle_id: ws.bundle_id().map(str::to_owned),
        properties: ws.workspace_properties().map(|p| Properties {
            running_mode: p.running_mode().map(|m| m.as_str().to_owned()),
            auto_stop_minutes: p.running_mode_auto_stop_timeout_in_minutes(),
            root_volume_gib: p.root_volume_size_gib(),
            user_volume_gib: p.user_volume_size_gib(),
            compute_type: p.compute_type_name().map(|c| c.as_str().to_owned()),
        }),
    }
}

/// The `WorkspaceProperties` of one change: only the members of its group are sent.
fn change_properties(change: &PropertyChange) -> WorkspaceProperties {
    let b = WorkspaceProperties::builder();
    match change {
        PropertyChange::RunningMode { mode, auto_stop_minutes } => b
            .running_mode(RunningMode::from(mode.as_str()))
            .set_running_mode_auto_stop_timeout_in_minutes(*auto_stop_minutes),
        PropertyChange::ComputeType(compute) => b.compute_type_name(Compute::from(compute.as_str())),
        PropertyChange::RootVolume(gib) => b.root_volume_size_gib(*gib),
        PropertyChange::UserVolume(gib) => b.user_volume_size_gib(*gib),
    }
    .build()
}

fn sdk_tags(operation: &'static str, tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, WorkspacesError> {
    tags.iter().map(|(key, value)| Tag::builder().key(key).value(value).build()).collect::<Result<Vec<_>, _>>().map_err(
        |e| WorkspacesError::Service {
            operation,
            code: "InvalidRequest".into(),
            message: e.to_string(),
            retryable: false,
        },
    )
}

fn request(item: &CreateItem) -> Result<SdkRequest, WorkspacesError> {
    let p = &item.profile;
    let properties = WorkspaceProperties::builder()
        .running_mode(RunningMode::from(p.running_mode.as_str()))
        .set_running_mode_auto_stop_timeout_in_minutes(p.auto_stop_minutes)
        .set_root_volume_size_gib(p.root_volume_gib)
        .set_user_volume_size_gib(p.user_volume_gib)
        .set_compute_type_name(p.compute_type.as_deref().map(Compute::from))
        .set_protocols(
            (!p.protocols.is_empty()).then(|| p.protocols.iter().map(|x| Protocol::from(x.as_str())).collect()),
        )
        .build();
    let mut tags = Vec::new();
    for (key, value) in &p.tags {
        tags.push(Tag::builder().key(key).value(value).build().map_err(|e| invalid(e.to_string()))?);
    }
    SdkRequest::builder()
        .directory_id(&item.directory_id)
        .user_name(&item.user_name)
        .bundle_id(&p.bundle_id)
        .set_workspace_name(item.workspace_name.clone())
        .workspace_properties(properties)
        .set_volume_encryption_key(p.kms_key.clone().filter(|_| p.root_volume_encrypted || p.user_volume_encrypted))
        .root_volume_encryption_enabled(p.root_volume_encrypted)
        .user_volume_encryption_enabled(p.user_volume_encrypted)
        .set_tags((!tags.is_empty()).then_some(tags))
        .build()
        .map_err(|e| invalid(e.to_string()))
}

fn invalid(message: String) -> WorkspacesError {
    WorkspacesError::Service { operation: "CreateWorkspaces", code: "InvalidRequest".into(), message, retryable: false }
}

impl WorkspacesApi for AwsWorkspaces {
    async fn create_workspaces(&self, items: &[CreateItem]) -> Result<CreateResponse, WorkspacesError> {
        let requests = items.iter().map(request).collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .create_workspaces()
            .set_workspaces(Some(requests))
            .send()
            .await
            .map_err(|e| error("CreateWorkspaces", &e))?;
        Ok(CreateResponse {
            pending: out.pending_requests().iter().map(info).collect(),
            failed: out
                .failed_requests()
                .iter()
                .map(|f| {
                    let r = f.workspace_request();
                    FailedCreate {
                        directory_id: r.map(|r| r.directory_id().to_owned()).unwrap_or_default(),
                        user_name: r.map(|r| r.user_name().to_owned()).unwrap_or_default(),
                        workspace_name: r.and_then(|r| r.workspace_name().map(str::to_owned)),
                        code: f.error_code().unwrap_or("Unknown").to_owned(),
                        message: f.error_message().unwrap_or_default().to_owned(),
                    }
                })
                .collect(),
        })
    }

    async fn describe_workspaces(&self, ids: &[String]) -> Result<Vec<WorkspaceInfo>, WorkspacesError> {
        let out = self
            .client
            .describe_workspaces()
            .set_workspace_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| error("DescribeWorkspaces", &e))?;
        Ok(out.workspaces().iter().map(info).collect())
    }

    async fn terminate_workspaces(&self, ids: &[String]) -> Result<Vec<FailedTerminate>, WorkspacesError> {
        let requests = ids
            .iter()
            .map(|id| TerminateRequest::builder().workspace_id(id).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        let out = self
            .client
            .terminate_workspaces()
            .set_terminate_workspace_requests(Some(requests))
            .send()
            .await
            .map_err(|e| error("TerminateWorkspaces", &e))?;
        Ok(out
            .failed_requests()
            .iter()
            .map(|f| FailedTerminate {
                workspace_id: f.workspace_id().unwrap_or_default().to_owned(),
                code: f.error_code().unwrap_or("Unknown").to_owned(),
                message: f.error_message().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn list_workspaces(
        &self,
        directory_id: &str,
        next_token: Option<&str>,
    ) -> Result<WorkspacePage, WorkspacesError> {
        let out = self
            .client
            .describe_workspaces()
            .directory_id(directory_id)
            .limit(MAX_PER_CALL as i32)
            .set_next_token(next_token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| error("DescribeWorkspaces", &e))?;
        Ok(WorkspacePage {
            workspaces: out.workspaces().iter().map(info).collect(),
            // An empty token ends the listing as an absent one does.
            next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }

    async fn find_user_workspace(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> Result<Option<WorkspaceInfo>, WorkspacesError> {
        let out = self
            .client
            .describe_workspaces()
            .directory_id(directory_id)
            .user_name(user_name)
            .send()
            .await
            .map_err(|e| error("DescribeWorkspaces", &e))?;
        Ok(out.workspaces().first().map(info))
    }

    async fn modify_properties(&self, workspace_id: &str, change: &PropertyChange) -> Result<(), WorkspacesError> {
        self.client
            .modify_workspace_properties()
            .workspace_id(workspace_id)
            .workspace_properties(change_properties(change))
            .send()
            .await
            .map_err(|e| error("ModifyWorkspaceProperties", &e))?;
        Ok(())
    }

    async fn migrate(&self, workspace_id: &str, bundle_id: &str) -> Result<String, WorkspacesError> {
        let out = self
            .client
            .migrate_workspace()
            .source_workspace_id(workspace_id)
            .bundle_id(bundle_id)
            .send()
            .await
            .map_err(|e| error("MigrateWorkspace", &e))?;
        out.target_workspace_id().map(str::to_owned).ok_or_else(|| WorkspacesError::Service {
            operation: "MigrateWorkspace",
            code: "MissingTargetWorkspaceId".into(),
            message: format!("MigrateWorkspace of {workspace_id} answered without a TargetWorkspaceId"),
            retryable: true,
        })
    }

    async fn set_admin_maintenance(&self, workspace_id: &str, on: bool) -> Result<(), WorkspacesError> {
        let state = if on { TargetWorkspaceState::AdminMaintenance } else { TargetWorkspaceState::Available };
        self.client
            .modify_workspace_state()
            .workspace_id(workspace_id)
            .workspace_state(state)
            .send()
            .await
            .map_err(|e| error("ModifyWorkspaceState", &e))?;
        Ok(())
    }

    async fn tags(&self, workspace_id: &str) -> Result<BTreeMap<String, String>, WorkspacesError> {
        let out = self
            .client
            .describe_tags()
            .resource_id(workspace_id)
            .send()
            .await
            .map_err(|e| error("DescribeTags", &e))?;
        Ok(out.tag_list().iter().map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned())).collect())
    }

    async fn create_tags(&self, workspace_id: &str, tags: &BTreeMap<String, String>) -> Result<(), WorkspacesError> {
        self.client
            .create_tags()
            .resource_id(workspace_id)
            .set_tags(Some(sdk_tags("CreateTags", tags)?))
            .send()
            .await
            .map_err(|e| error("CreateTags", &e))?;
        Ok(())
    }

    async fn delete_tags(&self, workspace_id: &str, keys: &[String]) -> Result<(), WorkspacesError> {
        self.client
            .delete_tags()
            .resource_id(workspace_id)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| error("DeleteTags", &e))?;
        Ok(())
    }
}
