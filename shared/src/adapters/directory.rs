//! The directory-users port, three ways: WorkDocs CreateUser (the original design), Directory
//! Service Data CreateUser with a password set through ResetUserPassword, and users that already
//! exist (AD Connector).

use super::describe_sdk_error;
use super::password::Password;
use crate::domain::names::UserNameRules;
use crate::ports::{DirectoryError, DirectoryUsers, NewUser, UserOutcome};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

fn failure<E, R>(err: &SdkError<E, R>) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    let (code, message, retryable) = describe_sdk_error(err);
    if retryable || code == "DirectoryUnavailableException" || code == "FailedDependencyException" {
        DirectoryError::Unavailable { code, message }
    } else {
        DirectoryError::Rejected { code, message }
    }
}

/// The same person: e-mail addresses match (not case-sensitive), or, without one, both names.
fn same_person(user: &NewUser, email: Option<&str>, given: Option<&str>, surname: Option<&str>) -> bool {
    match email {
        Some(e) if !e.is_empty() => e.eq_ignore_ascii_case(&user.email),
        _ => given == Some(user.given_name.as_str()) && surname == Some(user.surname.as_str()),
    }
}

/// Which backend creates directory users, chosen by configuration.
pub enum Directory {
    WorkDocs(WorkDocsUsers),
    DsData(DsDataUsers),
    Existing,
}

impl DirectoryUsers for Directory {
    async fn ensure_user(&self, user: &NewUser) -> Result<UserOutcome, DirectoryError> {
        match self {
            Directory::WorkDocs(w) => w.ensure_user(user).await,
            Directory::DsData(d) => d.ensure_user(user).await,
            Directory::Existing => Ok(UserOutcome::ManagedElsewhere),
        }
    }

    async fn disable_user(&self, directory_id: &str, user_name: &str) -> Result<UserOutcome, DirectoryError> {
        match self {
            Directory::DsData(d) => {
                let result = d.data.disable_user().directory_id(directory_id).sam_account_name(user_name).send().await;
                match result {
                    Ok(_) => Ok(UserOutcome::Disabled),
                    // Gone already: nothing left to disable.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                        Ok(UserOutcome::Disabled)
                    }
                    Err(e) => Err(failure(&e)),
                }
            }
            Directory::WorkDocs(_) | Directory::Existing => Ok(UserOutcome::ManagedElsewhere),
        }
    }

    async fn enable_user(&self, directory_id: &str, user_name: &str) -> Result<UserOutcome, DirectoryError> {
        match self {
            Directory::DsData(d) => {
                let password = Password::generate();
                let reset =
                    d.ds.reset_user_password()
                        .directory_id(directory_id)
                        .user_name(user_name)
                        .new_password(password.expose())
                        .send()
                        .await;
                drop(password);
                reset.map_err(|e| failure(&e))?;
                Ok(UserOutcome::Enabled)
            }
            Directory::WorkDocs(_) | Directory::Existing => Ok(UserOutcome::ManagedElsewhere),
        }
    }

    fn can_disable(&self) -> bool {
        matches!(self, Directory::DsData(_))
    }

    fn user_name_rules(&self) -> UserNameRules {
        match self {
            Directory::DsData(_) => UserNameRules::DS_DATA,
            Directory::WorkDocs(_) | Directory::Existing => UserNameRules::WORKSPACES,
        }
    }
}

pub struct WorkDocsUsers {
    pub client: aws_sdk_workdocs::Client,
}

impl WorkDocsUsers {
    async fn ensure_user(&self, user: &NewUser) -> Result<UserOutcome, DirectoryError> {
        let password = Password::generate();
        let created = self
            .client
            .create_user()
            .organization_id(&user.directory_id)
            .username(&user.user_name)
            .given_name(&user.given_name)
            .surname(&user.surname)
            .email_address(&user.email)
            .password(password.expose())
            .send()
            .await;
        drop(password);
        match created {
            Ok(_) => Ok(UserOutcome::Created),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_already_exists_exception()) => {
                let found = self
                    .client
                    .describe_users()
                    .organization_id(&user.directory_id)
                    .query(&user.user_name)
                    .send()
                    .await
                    .map_err(|e| failure(&e))?;
                let existing = found
                    .users()
                    .iter()
                    .find(|u| u.username().is_some_and(|n| n.eq_ignore_ascii_case(&user.user_name)));
                match existing {
                    Some(u) if same_person(user, u.email_address(), u.given_name(), u.surname()) => {
                        Ok(UserOutcome::AlreadyExisted)
                    }
                    Some(u) => Err(DirectoryError::NameTaken {
                        user_name: user.user_name.clone(),
                        detail: format!("WorkDocs user {} has another e-mail", u.id().unwrap_or("?")),
                    }),
                    None => Err(DirectoryError::Unavailable {
                        code: "EntityAlreadyExistsException".into(),
                        message: "the user exists but is not listed yet".into(),
                    }),
                }
            }
            Err(e) => Err(failure(&e)),
        }
    }
}

pub struct DsDataUsers {
    pub data: aws_sdk_directoryservicedata::Client,
    pub ds: aws_sdk_directory::Client,
}

impl DsDataUsers {
    async fn ensure_user(&self, user: &NewUser) -> Result<UserOutcome, DirectoryError> {
        let created = self
            .data
            .create_user()
            .directory_id(&user.directory_id)
            .sam_account_name(&user.user_name)
            .given_name(&user.given_name)
            .surname(&user.surname)
            .email_address(&user.email)
            .client_token(&user.client_token)
            .send()
            .await;
        match created {
            // Also the answer to a repeat within the ClientToken window: the user is ours.
            Ok(_) => {
                let password = Password::generate();
                let reset = self
                    .ds
                    .reset_user_password()
                    .directory_id(&user.directory_id)
                    .user_name(&user.user_name)
                    .new_password(password.expose())
                    .send()
                    .await;
                drop(password);
                reset.map_err(|e| failure(&e))?;
                Ok(UserOutcome::Created)
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conflict_exception()) => {
                let existing = self
                    .data
                    .describe_user()
                    .directory_id(&user.directory_id)
                    .sam_account_name(&user.user_name)
                    .send()
                    .await
                    .map_err(|e| failure(&e))?;
                // An existing account's password is never touched.
                if same_person(user, existing.email_address(), existing.given_name(), existing.surname()) {
                    Ok(UserOutcome::AlreadyExisted)
                } else {
                    Err(DirectoryError::NameTaken {
                        user_name: user.user_name.clone(),
                        detail: format!("directory account {} has another e-mail", existing.sid().unwrap_or("?")),
                    })
                }
            }
            Err(e) => Err(failure(&e)),
        }
    }
}
