//! The [`WorkspaceTags`] port on the Resource Groups Tagging API: GetResources by ARN, up to 100
//! WorkSpaces' tags per call.

use crate::ports::{MAX_TAGGED_PER_READ, WorkspaceTags, WorkspacesError};
use std::collections::BTreeMap;

const GET_RESOURCES: &str = "GetResources";

pub struct AwsWorkspaceTags {
    client: aws_sdk_resourcegroupstagging::Client,
    /// `arn:<partition>:workspaces:<region>:<account>:workspace/`: a WorkSpace's ARN is this
    /// and its id (the Service Authorization Reference's `workspaceid` resource type).
    arn_prefix: String,
}

impl AwsWorkspaceTags {
    pub fn new(client: aws_sdk_resourcegroupstagging::Client, arn_prefix: String) -> Self {
        Self { client, arn_prefix }
    }
}

/// Whether `prefix` is the start of a WorkSpace ARN, `arn:<partition>:workspaces:<region>:<12-digit
/// account>:workspace/`: the problem, if not.
pub fn workspace_arn_prefix_problem(prefix: &str) -> Option<String> {
    let parts: Vec<&str> = prefix.split(':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "workspaces", region, account, "workspace/"] => {
            partition.starts_with("aws")
                && !region.is_empty()
                && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    (!ok).then(|| format!("must be arn:<partition>:workspaces:<region>:<12-digit account>:workspace/, got {prefix:?}"))
}

impl WorkspaceTags for AwsWorkspaceTags {
    async fn tags_of(
        &self,
        workspace_ids: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, WorkspacesError> {
        if !(1..=MAX_TAGGED_PER_READ).contains(&workspace_ids.len()) {
            return Err(WorkspacesError::Service {
                operation: GET_RESOURCES,
                code: "InvalidParameterException".into(),
                message: format!("ResourceARNList takes 1 to {MAX_TAGGED_PER_READ} ARNs, not {}", workspace_ids.len()),
                retryable: false,
            });
        }
        let arns: Vec<String> = workspace_ids.iter().map(|id| format!("{}{id}", self.arn_prefix)).collect();
        let out = self
            .client
            .get_resources()
            .set_resource_arn_list(Some(arns))
            .send()
            .await
            .map_err(|e| super::workspaces::error(GET_RESOURCES, &e))?;
        let mut found = BTreeMap::new();
        for mapping in out.resource_tag_mapping_list() {
            let Some(id) = mapping.resource_arn().and_then(|arn| arn.strip_prefix(self.arn_prefix.as_str())) else {
                continue;
            };
            let tags = mapping.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
            found.insert(id.to_owned(), tags);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_arn_prefix_names_partition_region_and_account() {
        assert_eq!(workspace_arn_prefix_problem("arn:aws:workspaces:eu-west-1:123456789012:workspace/"), None);
        assert_eq!(
            workspace_arn_prefix_problem("arn:aws-us-gov:workspaces:us-gov-west-1:123456789012:workspace/"),
            None
        );
        for bad in [
            "arn:aws:workspaces:eu-west-1:123456789012:workspace",
            "arn:aws:workspaces:eu-west-1:12345:workspace/",
            "arn:aws:ec2:eu-west-1:123456789012:workspace/",
            "arn:aws:workspaces::123456789012:workspace/",
            "",
        ] {
            assert!(workspace_arn_prefix_problem(bad).is_some(), "{bad}");
        }
    }
}
