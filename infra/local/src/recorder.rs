//! Records the AWS operations each function actually calls: the runner puts a pass-through in
//! front of every emulator a function reaches, and writes what went through to a JSON file as
//! soon as a function calls something new. `infra/check_template.py --calls` compares those
//! files with the template's grants, both ways (IAM proven from the calls made).
//!
//! Each call is written as `service:Operation` followed by what its request says about the
//! permissions it needs: the index a query reads (`index=work-index`, authorised on the index's
//! ARN), the item actions of a transaction or batch write (`items=ConditionCheck,Put`, each
//! authorised as its own action), whether CreateWorkspaces tags (`tags`) or encrypts with a
//! customer-managed key (`kms`).

use crate::passthrough::{Observer, Operation, Passthrough};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Default, Serialize)]
pub struct FunctionCalls {
    /// The function's settings (its environment without the `AWS_*` variables): the check
    /// derives the template parameters, and so the conditions, the run was made under.
    pub environment: BTreeMap<String, String>,
    pub calls: BTreeSet<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Recording {
    pub functions: BTreeMap<String, FunctionCalls>,
}

/// One run's recording, written to `path`.
pub struct Recorder {
    path: PathBuf,
    recording: Arc<Mutex<Recording>>,
    fronts: Mutex<Vec<Passthrough>>,
}

impl Recorder {
    pub fn new(path: PathBuf) -> Recorder {
        Recorder { path, recording: Arc::default(), fronts: Mutex::default() }
    }

    /// Puts a recording pass-through in front of every endpoint in `environment`
    /// (`AWS_ENDPOINT_URL_*`), one per distinct emulator, and points the variables at them.
    pub async fn front(&self, function: &str, environment: &mut BTreeMap<String, String>) -> std::io::Result<()> {
        let settings = environment.iter().filter(|(k, _)| !k.starts_with("AWS_")).map(|(k, v)| (k.clone(), v.clone()));
        self.lock().functions.entry(function.to_owned()).or_default().environment.extend(settings);
        let mut fronted: BTreeMap<String, String> = BTreeMap::new();
        for (variable, value) in environment.iter_mut().filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL_")) {
            if let Some(url) = fronted.get(value.as_str()) {
                *value = url.clone();
                continue;
            }
            let front = Passthrough::to(value, self.observer(function)).await?;
            tracing::debug!(function, variable = %variable, upstream = %value, via = %front.url, "recording calls");
            fronted.insert(value.clone(), front.url.clone());
            *value = front.url.clone();
            self.fronts.lock().unwrap_or_else(PoisonError::into_inner).push(front);
        }
        Ok(())
    }

    fn observer(&self, function: &str) -> Observer {
        let (function, recording, path) = (function.to_owned(), self.recording.clone(), self.path.clone());
        Arc::new(move |op, body, _, _| {
            let label = label(op, body);
            let mut recording = recording.lock().unwrap_or_else(PoisonError::into_inner);
            if recording.functions.entry(function.clone()).or_default().calls.insert(label)
                && let Err(e) = write(&path, &recording)
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the recorded calls");
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.recording.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Written whole to a temporary file, then renamed: a reader never sees half a recording.
fn write(path: &std::path::Path, recording: &Recording) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(recording)?)?;
    std::fs::rename(temporary, path)
}

/// `service:Operation`, then what the request says about the permissions it needs.
pub fn label(op: &Operation, body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut qualifiers = Vec::new();
    match (op.service.as_str(), op.name.as_str()) {
        ("dynamodb", "Query" | "Scan") => {
            if let Some(index) = body["IndexName"].as_str() {
                qualifiers.push(format!("index={index}"));
            }
        }
        ("dynamodb", "TransactWriteItems") => {
            let kinds: BTreeSet<&str> = body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item.as_object().and_then(|o| o.keys().next()).map(String::as_str))
                .collect();
            qualifiers.push(format!("items={}", kinds.into_iter().collect::<Vec<_>>().join(",")));
        }
        ("dynamodb", "BatchWriteItem") => {
            let kinds: BTreeSet<&str> = body["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|tables| tables.values())
                .filter_map(Value::as_array)
                .flatten()
                .filter_map(|write| write.as_object().and_then(|o| o.keys().next()).map(String::as_str))
                .map(|kind| kind.trim_end_matches("Request"))
                .collect();
            qualifiers.push(format!("items={}", kinds.into_iter().collect::<Vec<_>>().join(",")));
        }
        ("workspaces", "CreateWorkspaces") => {
            let requests = body["Workspaces"].as_array().cloned().unwrap_or_default();
            if requests.iter().any(|w| w["Tags"].as_array().is_some_and(|t| !t.is_empty())) {
                qualifiers.push("tags".to_owned());
            }
            if requests.iter().any(|w| w["VolumeEncryptionKey"].as_str().is_some_and(|k| !k.is_empty())) {
                qualifiers.push("kms".to_owned());
            }
        }
        _ => {}
    }
    std::iter::once(op.to_string()).chain(qualifiers).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(service: &str, name: &str) -> Operation {
        Operation { service: service.into(), name: name.into() }
    }

    #[test]
    fn a_call_is_labelled_with_what_its_request_needs_granted() {
        let query = br#"{"TableName":"t","IndexName":"work-index","KeyConditionExpression":"x"}"#;
        assert_eq!(label(&op("dynamodb", "Query"), query), "dynamodb:Query index=work-index");
        assert_eq!(label(&op("dynamodb", "Query"), br#"{"TableName":"t"}"#), "dynamodb:Query");
        let transaction = br#"{"TransactItems":[{"Put":{}},{"ConditionCheck":{}},{"Put":{}}]}"#;
        assert_eq!(
            label(&op("dynamodb", "TransactWriteItems"), transaction),
            "dynamodb:TransactWriteItems items=ConditionCheck,Put"
        );
        let batch = br#"{"RequestItems":{"t":[{"PutRequest":{}},{"DeleteRequest":{}}]}}"#;
        assert_eq!(label(&op("dynamodb", "BatchWriteItem"), batch), "dynamodb:BatchWriteItem items=Delete,Put");
        let create = br#"{"Workspaces":[{"Tags":[{"Key":"a"}]},{"VolumeEncryptionKey":"arn:aws:kms:k"}]}"#;
        assert_eq!(label(&op("workspaces", "CreateWorkspaces"), create), "workspaces:CreateWorkspaces tags kms");
        assert_eq!(label(&op("sqs", "SendMessageBatch"), b"not json"), "sqs:SendMessageBatch");
    }
}
