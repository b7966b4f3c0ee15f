//! The [`DirectoryUsers`] contract for a backend that creates users (DS Data): what the intake
//! relies on when it makes sure a joiner's user exists.

use super::ok;
use crate::ports::{DirectoryError, DirectoryUsers, NewUser, PortError, UserOutcome};

fn user(directory_id: &str, name: &str, email: &str, token: &str) -> NewUser {
    NewUser {
        directory_id: directory_id.into(),
        user_name: name.into(),
        given_name: "Casey".into(),
        surname: "Dir".into(),
        email: email.into(),
        client_token: token.into(),
    }
}

/// A new user is created; the same request again (same ClientToken) is answered the same way;
/// the same person under another case or token already exists; someone else with the name finds
/// it taken; a name the directory refuses and a token reused for another user are refused for
/// good; disabling works on users that exist and on users that do not. Uses user names starting
/// with `cdir` in `directory_id` (a directory where users can be created).
pub async fn directory_users<D: DirectoryUsers>(dir: &D, directory_id: &str) {
    let first = user(directory_id, "cdir1", "casey.dir@example.com", "ctok-1");
    assert_eq!(ok("create", dir.ensure_user(&first).await), UserOutcome::Created);
    assert_eq!(ok("the same request again", dir.ensure_user(&first).await), UserOutcome::Created);
    let same_person = user(directory_id, "CDir1", "Casey.Dir@example.com", "ctok-2");
    assert_eq!(ok("the same person", dir.ensure_user(&same_person).await), UserOutcome::AlreadyExisted);
    match dir.ensure_user(&user(directory_id, "cdir1", "someone.else@example.com", "ctok-3")).await {
        Err(DirectoryError::NameTaken { user_name, .. }) => assert_eq!(user_name, "cdir1"),
        other => panic!("someone else: expected NameTaken, got {other:?}"),
    }
    match dir.ensure_user(&user(directory_id, "cdir 2", "c2@example.com", "ctok-4")).await {
        Err(e @ DirectoryError::Rejected { .. }) => assert!(!e.is_retryable()),
        other => panic!("an invalid name: expected Rejected, got {other:?}"),
    }
    match dir.ensure_user(&user(directory_id, "cdir3", "c3@example.com", "ctok-1")).await {
        Err(e) => assert!(!e.is_retryable(), "a token reused for another user: {e:?}"),
        Ok(outcome) => panic!("a token reused for another user: {outcome:?}"),
    }
    if dir.can_disable() {
        assert_eq!(ok("disable", dir.disable_user(directory_id, "CDIR1").await), UserOutcome::Disabled);
        assert_eq!(ok("disable a missing user", dir.disable_user(directory_id, "cdir9").await), UserOutcome::Disabled);
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::FakeDirectory;

    #[tokio::test]
    async fn the_fake_keeps_the_directory_contract() {
        super::directory_users(&FakeDirectory::default().with_can_disable(true), "d-9067a1b2c3").await;
    }
}
