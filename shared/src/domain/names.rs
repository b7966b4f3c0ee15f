//! Identifiers and names of the HR contract, each parsed once with its rules.

use std::fmt;

macro_rules! string_newtype {
    ($name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(EventId);
string_newtype!(EmployeeId);
string_newtype!(UserName);
string_newtype!(PersonName);
string_newtype!(EmailAddress);

fn id_chars(s: &str, max: usize, what: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok { Ok(s.to_owned()) } else { Err(format!("must be 1-{max} characters of A-Z a-z 0-9 - _ . : ({what})")) }
}

impl EventId {
    /// The HR system's unique id of the event: the idempotency key.
    pub fn parse(s: &str) -> Result<Self, String> {
        id_chars(s, 128, "the HR system's unique event id").map(Self)
    }
}

impl EmployeeId {
    pub fn parse(s: &str) -> Result<Self, String> {
        id_chars(s, 64, "the HR system's employee id").map(Self)
    }
}

/// Characters Active Directory refuses in a sAMAccountName.
const FORBIDDEN: &[char] = &['"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@'];

impl UserName {
    /// The WorkSpaces limit; DS Data (sAMAccountName) allows 20.
    pub const WORKSPACES_MAX: usize = 63;
    pub const SAM_ACCOUNT_NAME_MAX: usize = 20;

    pub fn parse(s: &str, max_len: usize) -> Result<Self, String> {
        let len = s.chars().count();
        if len == 0 || len > max_len {
            return Err(format!("must be 1-{max_len} characters (got {len})"));
        }
        if let Some(c) = s.chars().find(|c| FORBIDDEN.contains(c)) {
            return Err(format!("must not contain {c:?} (none of \" / \\ [ ] : ; | = , + * ? < > @)"));
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if s.trim() != s || s.contains(' ') {
            return Err("must not contain spaces".into());
        }
        if s.ends_with('.') {
            return Err("must not end with a period".into());
        }
        if s.chars().all(|c| c == '.') {
            return Err("must not be only periods".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// Directory user names are not case-sensitive: the form used to compare and deduplicate.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl PersonName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let len = t.chars().count();
        if len == 0 || len > 64 {
            return Err(format!("must be 1-64 characters (got {len})"));
        }
        if t.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(t.to_owned()))
    }
}

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let rule = || format!("must be an e-mail address like name@example.com, at most 254 characters (got {s:?})");
        let (local, domain) = t.split_once('@').ok_or_else(rule)?;
        let ok = t.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !t.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(Self(t.to_owned())) } else { Err(rule()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_directory_rules() {
        assert!(UserName::parse("jdoe", 20).is_ok());
        assert!(UserName::parse("j.doe-2_x", 20).is_ok());
        assert!(UserName::parse("a-very-long-user-name", 20).unwrap_err().contains("1-20"));
        assert!(UserName::parse("a-very-long-user-name", 63).is_ok());
        for bad in ["jo;hn", "a/b", "x*", "with space", "dot.", "tab\t", ""] {
            assert!(UserName::parse(bad, 63).is_err(), "{bad:?}");
        }
        assert_eq!(UserName::parse("JDoe", 20).unwrap().normalized(), "jdoe");
    }

    #[test]
    fn emails_and_ids() {
        assert!(EmailAddress::parse("jane.doe@example.com").is_ok());
        for bad in ["jane", "jane@", "@x.com", "a@b", "a b@x.com", "a@x..com@y"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmployeeId::parse("E-00042").is_ok());
        assert!(EmployeeId::parse("E 42").is_err());
        assert!(EventId::parse(&"x".repeat(129)).is_err());
    }
}
