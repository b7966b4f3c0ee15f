//! Directory users in memory, with the DS Data adapter's behaviour (`adapters::directory`):
//! user names compared without case, the same person (same e-mail, or without one the same
//! names) is `AlreadyExisted`, someone else is `NameTaken`, a repeated ClientToken within its
//! window is `Created` again.

use super::{Faults, lock};
use crate::domain::names::UserNameRules;
use crate::ports::{Clock, DirectoryError, DirectoryUsers, NewUser, SystemClock, UserOutcome};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// DS Data's ClientToken idempotency window.
const TOKEN_WINDOW_MS: i64 = 8 * 3600 * 1000;

/// A directory user as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub directory_id: String,
    pub user_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
}

/// The users of every directory, shared by clones: a [`FakeDirectory`] writes it and a
/// [`FakeWorkspaces`](super::FakeWorkspaces) can require its users (`requiring_users`).
#[derive(Debug, Clone, Default)]
pub struct DirectoryBook(Arc<Mutex<BTreeMap<(String, String), DirectoryUser>>>);

impl DirectoryBook {
    /// Adds (or replaces) a user that already exists, e.g. in an AD Connector's directory.
    pub fn add(&self, user: DirectoryUser) {
        lock(&self.0).insert((user.directory_id.clone(), user.user_name.to_lowercase()), user);
    }

    /// Adds a user with only a name and an e-mail.
    pub fn add_user(&self, directory_id: &str, user_name: &str, email: &str) {
        self.add(DirectoryUser {
            directory_id: directory_id.into(),
            user_name: user_name.into(),
            given_name: None,
            surname: None,
            email: Some(email.into()),
            enabled: true,
        });
    }

    pub fn contains(&self, directory_id: &str, user_name: &str) -> bool {
        lock(&self.0).contains_key(&(directory_id.to_owned(), user_name.to_lowercase()))
    }

    pub fn get(&self, directory_id: &str, user_name: &str) -> Option<DirectoryUser> {
        lock(&self.0).get(&(directory_id.to_owned(), user_name.to_lowercase())).cloned()
    }

    pub fn users(&self) -> Vec<DirectoryUser> {
        lock(&self.0).values().cloned().collect()
    }
}

/// The same person: e-mail addresses match (not case-sensitive), or, without one, both names.
fn same_person(user: &NewUser, existing: &DirectoryUser) -> bool {
    match existing.email.as_deref() {
        Some(e) if !e.is_empty() => e.eq_ignore_ascii_case(&user.email),
        _ => {
            existing.given_name.as_deref() == Some(user.given_name.as_str())
                && existing.surname.as_deref() == Some(user.surname.as_str())
        }
    }
}

/// `^[\w\-.]+$`, 1–20 characters: the SAMAccountName rule DS Data (and the simulator) enforces.
fn valid_sam(name: &str) -> bool {
    (1..=20).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[derive(Debug, Clone)]
struct Refusal {
    code: String,
    message: String,
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
struct Inner {
    refusals: BTreeMap<String, Refusal>,
    /// (directory, token) → (lower-case user name, request fingerprint, when).
    tokens: BTreeMap<(String, String), (String, String, i64)>,
    disabled: Vec<(String, String)>,
}

/// Creates users the way the DS Data backend does (or, [`existing`](Self::existing), creates
/// nothing: AD Connector). Unavailability comes from [`Faults`] (`directory.<method>`).
pub struct FakeDirectory {
    /// User names created, in order (a ClientToken repeat creates nothing).
    pub created: Mutex<Vec<String>>,
    pub faults: Faults,
    pub book: DirectoryBook,
    rules: UserNameRules,
    can_disable: bool,
    managed_elsewhere: bool,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl Default for FakeDirectory {
    /// DS Data's user names; `disable_user` off (as with a backend that cannot disable).
    fn default() -> Self {
        Self {
            created: Mutex::default(),
            faults: Faults::default(),
            book: DirectoryBook::default(),
            rules: UserNameRules::DS_DATA,
            can_disable: false,
            managed_elsewhere: false,
            clock: Arc::new(SystemClock),
            inner: Mutex::default(),
        }
    }
}

const PORT: &str = "directory";

impl FakeDirectory {
    /// Users come from the organisation's directory: nothing is created (`ManagedElsewhere`),
    /// WorkSpaces' user-name rules, nothing can be disabled.
    pub fn existing() -> Self {
        Self { rules: UserNameRules::WORKSPACES, managed_elsewhere: true, ..Self::default() }
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Shares the users with a [`FakeWorkspaces`](super::FakeWorkspaces) built `requiring_users`.
    pub fn with_book(mut self, book: DirectoryBook) -> Self {
        self.book = book;
        self
    }

    pub fn with_rules(mut self, rules: UserNameRules) -> Self {
        self.rules = rules;
        self
    }

    /// Whether `disable_user` disables (DS Data) or answers `ManagedElsewhere`.
    pub fn with_can_disable(mut self, can: bool) -> Self {
        self.can_disable = can;
        self
    }

    /// The clock of the ClientToken window.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// `ensure_user` for `user_name` (any case) answers `Rejected { code, message }`, `times`
    /// times (`None`: always).
    pub fn refuse(&self, user_name: &str, code: &str, message: &str, times: Option<u32>) {
        let refusal = Refusal { code: code.into(), message: message.into(), remaining: times };
        lock(&self.inner).refusals.insert(user_name.to_lowercase(), refusal);
    }

    /// (directory, user name) of every `disable_user` that disabled someone, in order.
    pub fn disabled(&self) -> Vec<(String, String)> {
        lock(&self.inner).disabled.clone()
    }

    fn unavailable() -> DirectoryError {
        DirectoryError::Unavailable { code: "ServiceUnavailable".into(), message: "injected: unavailable".into() }
    }

    fn take_refusal(&self, user_lower: &str) -> Option<DirectoryError> {
        let mut inner = lock(&self.inner);
        let refusal = inner.refusals.get_mut(user_lower)?;
        let error = DirectoryError::Rejected { code: refusal.code.clone(), message: refusal.message.clone() };
        match &mut refusal.remaining {
            None => {}
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                inner.refusals.remove(user_lower);
            }
        }
        Some(error)
    }

    fn ensure(&self, user: &NewUser) -> Result<UserOutcome, DirectoryError> {
        if self.managed_elsewhere {
            return Ok(UserOutcome::ManagedElsewhere);
        }
        let user_lower = user.user_name.to_lowercase();
        if let Some(refused) = self.take_refusal(&user_lower) {
            return Err(refused);
        }
        if !valid_sam(&user.user_name) {
            return Err(DirectoryError::Rejected {
                code: "ValidationException".into(),
                message: format!("SAMAccountName {:?} must be 1-20 characters matching ^[\\w\\-.]+$", user.user_name),
            });
        }
        let now = self.clock.now_ms();
        let fingerprint = format!("{user_lower}\u{0}{}\u{0}{}\u{0}{}", user.given_name, user.surname, user.email);
        let token_key = (user.directory_id.clone(), user.client_token.clone());
        let mut inner = lock(&self.inner);
        // A repeat within the ClientToken window answers as the first call did; with other
        // parameters it is a ConflictException, which the adapter reads like an existing user.
        let replay = inner.tokens.get(&token_key).filter(|(_, _, at)| now - at < TOKEN_WINDOW_MS);
        if let Some((_, earlier, _)) = replay
            && *earlier == fingerprint
        {
            return Ok(UserOutcome::Created);
        }
        if let Some(existing) = self.book.get(&user.directory_id, &user.user_name) {
            return if same_person(user, &existing) {
                Ok(UserOutcome::AlreadyExisted)
            } else {
                Err(DirectoryError::NameTaken {
                    user_name: user.user_name.clone(),
                    detail: format!("directory account {} has another e-mail", existing.user_name),
                })
            };
        }
        if replay.is_some() {
            // The token was used for someone else who is gone now: still a conflict, then no user.
            return Err(DirectoryError::Rejected {
                code: "ResourceNotFoundException".into(),
                message: format!("User {} was not found.", user.user_name),
            });
        }
        self.book.add(DirectoryUser {
            directory_id: user.directory_id.clone(),
            user_name: user.user_name.clone(),
            given_name: Some(user.given_name.clone()),
            surname: Some(user.surname.clone()),
            email: Some(user.email.clone()),
            enabled: true,
        });
        inner.tokens.insert(token_key, (user_lower, fingerprint, now));
        lock(&self.created).push(user.user_name.clone());
        Ok(UserOutcome::Created)
    }

    fn disable(&self, directory_id: &str, user_name: &str) -> Result<UserOutcome, DirectoryError> {
        if !self.can_disable {
            return Ok(UserOutcome::ManagedElsewhere);
        }
        if let Some(mut user) = self.book.get(directory_id, user_name) {
            user.enabled = false;
            self.book.add(user);
        }
        // A user gone already has nothing left to disable: the adapter answers Disabled too.
        lock(&self.inner).disabled.push((directory_id.to_owned(), user_name.to_owned()));
        Ok(UserOutcome::Disabled)
    }

    fn enable(&self, directory_id: &str, user_name: &str) -> Result<UserOutcome, DirectoryError> {
        if !self.can_disable {
            return Ok(UserOutcome::ManagedElsewhere);
        }
        // As ResetUserPassword: a user that does not exist is an error.
        let Some(mut user) = self.book.get(directory_id, user_name) else {
            return Err(DirectoryError::Rejected {
                code: "UserDoesNotExistException".into(),
                message: format!("User {user_name} does not exist."),
            });
        };
        user.enabled = true;
        self.book.add(user);
        Ok(UserOutcome::Enabled)
    }

    /// Whether the user exists and is enabled.
    pub fn is_enabled(&self, directory_id: &str, user_name: &str) -> Option<bool> {
        self.book.get(directory_id, user_name).map(|u| u.enabled)
    }
}

impl DirectoryUsers for FakeDirectory {
    async fn ensure_user(&self, user: &NewUser) -> Result<UserOutcome, DirectoryError> {
        self.faults.guard(PORT, "ensure_user", Self::unavailable, || self.ensure(user))
    }

    fn user_name_rules(&self) -> UserNameRules {
        self.rules
    }

    async fn disable_user(&self, directory_id: &str, user_name: &str) -> Result<UserOutcome, DirectoryError> {
        self.faults.guard(PORT, "disable_user", Self::unavailable, || self.disable(directory_id, user_name))
    }

    async fn enable_user(&self, directory_id: &str, user_name: &str) -> Result<UserOutcome, DirectoryError> {
        self.faults.guard(PORT, "enable_user", Self::unavailable, || self.enable(directory_id, user_name))
    }

    fn can_disable(&self) -> bool {
        self.can_disable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ManualClock;

    const DIR: &str = "d-9067a1b2c3";

    fn user(name: &str, email: &str, token: &str) -> NewUser {
        NewUser {
            directory_id: DIR.into(),
            user_name: name.into(),
            given_name: "Ann".into(),
            surname: "Lee".into(),
            email: email.into(),
            client_token: token.into(),
        }
    }

    #[tokio::test]
    async fn the_same_person_already_exists_and_anyone_else_finds_the_name_taken() {
        let clock = ManualClock::new(0);
        let dir = FakeDirectory::default().with_clock(clock.clone());
        assert_eq!(dir.ensure_user(&user("alee", "ann@example.com", "t1")).await.unwrap(), UserOutcome::Created);
        // The same token and request within the window: the first answer again.
        assert_eq!(dir.ensure_user(&user("alee", "ann@example.com", "t1")).await.unwrap(), UserOutcome::Created);
        assert_eq!(
            dir.ensure_user(&user("ALee", "ANN@example.com", "t2")).await.unwrap(),
            UserOutcome::AlreadyExisted,
            "names and e-mails compare without case"
        );
        clock.advance(TOKEN_WINDOW_MS);
        assert_eq!(dir.ensure_user(&user("alee", "ann@example.com", "t1")).await.unwrap(), UserOutcome::AlreadyExisted);
        let taken = dir.ensure_user(&user("alee", "other@example.com", "t3")).await;
        assert!(matches!(taken, Err(DirectoryError::NameTaken { .. })), "{taken:?}");
        assert_eq!(*dir.created.lock().unwrap(), ["alee"]);
        // Without an e-mail on the existing user, both names decide.
        dir.book.add(DirectoryUser {
            directory_id: DIR.into(),
            user_name: "old".into(),
            given_name: Some("Ann".into()),
            surname: Some("Lee".into()),
            email: None,
            enabled: true,
        });
        assert_eq!(dir.ensure_user(&user("old", "x@example.com", "t4")).await.unwrap(), UserOutcome::AlreadyExisted);
    }

    #[tokio::test]
    async fn refusals_and_unavailability_are_injected() {
        let faults = Faults::new();
        let dir = FakeDirectory::default().with_faults(faults.clone()).with_can_disable(true);
        dir.refuse("bob", "AccessDeniedException", "no", Some(1));
        let refused = dir.ensure_user(&user("bob", "bob@example.com", "t1")).await;
        assert!(matches!(refused, Err(DirectoryError::Rejected { ref code, .. }) if code == "AccessDeniedException"));
        faults.fail_next("directory", 1);
        let down = dir.ensure_user(&user("bob", "bob@example.com", "t1")).await;
        assert!(matches!(down, Err(DirectoryError::Unavailable { .. })), "{down:?}");
        assert_eq!(dir.ensure_user(&user("bob", "bob@example.com", "t1")).await.unwrap(), UserOutcome::Created);
        let invalid = dir.ensure_user(&user("a name with spaces", "c@example.com", "t2")).await;
        assert!(matches!(invalid, Err(DirectoryError::Rejected { ref code, .. }) if code == "ValidationException"));
        assert_eq!(dir.disable_user(DIR, "BOB").await.unwrap(), UserOutcome::Disabled);
        assert!(!dir.book.get(DIR, "bob").unwrap().enabled);
        assert_eq!(dir.disabled(), [(DIR.to_owned(), "BOB".to_owned())]);
        assert_eq!(faults.calls("directory"), 5);
    }

    #[tokio::test]
    async fn backends_that_cannot_disable_or_create_say_so() {
        let dir = FakeDirectory::default();
        assert!(!dir.can_disable());
        assert_eq!(dir.user_name_rules(), UserNameRules::DS_DATA);
        assert_eq!(dir.disable_user(DIR, "bob").await.unwrap(), UserOutcome::ManagedElsewhere);
        let existing = FakeDirectory::existing();
        assert_eq!(
            existing.ensure_user(&user("bob", "b@example.com", "t")).await.unwrap(),
            UserOutcome::ManagedElsewhere
        );
        assert_eq!(existing.user_name_rules(), UserNameRules::WORKSPACES);
        assert!(existing.created.lock().unwrap().is_empty());
    }
}
