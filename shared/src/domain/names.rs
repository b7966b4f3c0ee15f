//! Identifiers and names of the HR contract, each parsed once with its rules. A parse reports
//! every rule the value breaks (the JSON Schema checks the same rules independently, so the two
//! name the same set), each message echoing the value only in bounded form.

use super::validation::{Rule, echo};
use std::fmt;

/// The rules a value breaks, each with its message.
pub type Violations = Vec<(Rule, String)>;

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
string_newtype!(ProfileName);

fn finish<T>(value: T, violations: Violations) -> Result<T, Violations> {
    if violations.is_empty() { Ok(value) } else { Err(violations) }
}

/// `^[A-Za-z0-9._:-]{1,max}$`: ids that become parts of DynamoDB keys, so bounded and plain.
fn id_chars(s: &str, max: usize, what: &str) -> Result<String, Violations> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(vec![(
            Rule::Pattern,
            format!("must be 1-{max} characters of A-Z a-z 0-9 - _ . : ({what}; got {})", echo(s)),
        )])
    }
}

impl EventId {
    pub const MAX: usize = 128;

    /// The HR system's unique id of the event: the idempotency key.
    pub fn parse(s: &str) -> Result<Self, Violations> {
        id_chars(s, Self::MAX, "the HR system's unique event id").map(Self)
    }
}

impl EmployeeId {
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, Violations> {
        id_chars(s, Self::MAX, "the HR system's employee id").map(Self)
    }
}

impl ProfileName {
    pub fn parse(s: &str) -> Result<Self, Violations> {
        id_chars(s, 64, "the name of a configured profile").map(Self)
    }
}

/// Characters that are invisible or reorder text: C0 and C1 controls, soft hyphen, zero-width
/// and joiner characters, bidirectional controls, line and paragraph separators, word joiners,
/// the byte-order mark, interlinear annotations and tag characters. Refused in every name: they
/// make two different values look the same.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}'
        | '\u{17b4}' | '\u{17b5}' | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

fn invisible(s: &str, violations: &mut Violations) {
    if let Some(c) = s.chars().find(|c| is_invisible(*c)) {
        violations.push((
            Rule::Invisible,
            format!("must not contain control, zero-width or other invisible characters (found U+{:04X})", c as u32),
        ));
    }
}

/// Characters Active Directory refuses in a sAMAccountName.
const FORBIDDEN: &[char] = &['"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@'];

/// Which characters a user name may have: the directory backend decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNameCharset {
    /// Printable ASCII without spaces and without `" / \ [ ] : ; | = , + * ? < > @` (AD Connector,
    /// WorkDocs). Non-ASCII letters are refused: a Cyrillic `О` must not pass for a Latin `O`.
    PrintableAscii,
    /// DS Data's own rule for SAMAccountName, `^[\w\-.]+$`, restricted to ASCII: `A-Z a-z 0-9 _ - .`.
    SamAccountName,
}

impl UserNameCharset {
    fn allows(self, c: char) -> bool {
        match self {
            UserNameCharset::PrintableAscii => c.is_ascii_graphic() && !FORBIDDEN.contains(&c),
            UserNameCharset::SamAccountName => c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            UserNameCharset::PrintableAscii => {
                "printable ASCII without spaces or \" / \\ [ ] : ; | = , + * ? < > @ (no look-alike letters from other scripts)"
            }
            UserNameCharset::SamAccountName => "A-Z a-z 0-9 _ - . (the directory's SAMAccountName rule)",
        }
    }
}

/// What the configured directory accepts as a user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNameRules {
    pub max_len: usize,
    pub charset: UserNameCharset,
}

impl UserNameRules {
    /// WorkSpaces' limit, for AD Connector and WorkDocs.
    pub const WORKSPACES: UserNameRules =
        UserNameRules { max_len: UserName::WORKSPACES_MAX, charset: UserNameCharset::PrintableAscii };
    /// DS Data CreateUser: SAMAccountName, 1-20 of `[\w\-.]`.
    pub const DS_DATA: UserNameRules =
        UserNameRules { max_len: UserName::SAM_ACCOUNT_NAME_MAX, charset: UserNameCharset::SamAccountName };
}

impl UserName {
    /// The WorkSpaces limit; DS Data (sAMAccountName) allows 20.
    pub const WORKSPACES_MAX: usize = 63;
    pub const SAM_ACCOUNT_NAME_MAX: usize = 20;

    /// Every rule is checked on its own: length, invisible characters, the backend's character
    /// set (invisible ones aside), and the trailing period.
    pub fn parse(s: &str, rules: UserNameRules) -> Result<Self, Violations> {
        let mut violations = Vec::new();
        let len = s.chars().count();
        if len == 0 || len > rules.max_len {
            violations.push((Rule::Length, format!("must be 1-{} characters (got {len})", rules.max_len)));
        }
        invisible(s, &mut violations);
        if let Some(c) = s.chars().find(|c| !is_invisible(*c) && !rules.charset.allows(*c)) {
            violations.push((
                Rule::Charset,
                format!("must contain only {} (found {:?}, U+{:04X})", rules.charset.describe(), c, c as u32),
            ));
        }
        if s.ends_with('.') {
            violations.push((Rule::TrailingPeriod, "must not end with a period".into()));
        }
        finish(Self(s.to_owned()), violations)
    }

    /// Directory user names are not case-sensitive: the form used to compare and deduplicate.
    /// User names are ASCII, so ASCII lower case is exact.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Only white space (Unicode's White_Space: spaces, no-break and ideographic spaces, tabs, ...).
fn blank(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_whitespace)
}

/// A free text of 1 to `max` characters, visible, not blank (names, departments).
pub fn plain_text(s: &str, max: usize) -> Result<String, Violations> {
    let mut violations = Vec::new();
    let len = s.chars().count();
    if len == 0 || len > max {
        violations.push((Rule::Length, format!("must be 1-{max} characters (got {len})")));
    }
    if blank(s) {
        violations.push((Rule::Required, "must not be blank".into()));
    }
    invisible(s, &mut violations);
    finish(s.to_owned(), violations)
}

impl PersonName {
    pub fn parse(s: &str) -> Result<Self, Violations> {
        plain_text(s, 64).map(Self)
    }
}

/// Characters of an e-mail address: the usual local-part set, `@`, and the domain's.
fn email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.@-".contains(c)
}

/// A domain label: 1-63 of letters, digits and `-`, not starting or ending with `-`.
fn domain_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl EmailAddress {
    pub const MAX: usize = 254;

    pub fn parse(s: &str) -> Result<Self, Violations> {
        let mut violations = Vec::new();
        let len = s.chars().count();
        if len > Self::MAX {
            violations.push((Rule::Length, format!("must be at most {} characters (got {len})", Self::MAX)));
        }
        if let Some(c) = s.chars().find(|c| !email_char(*c)) {
            violations.push((
                Rule::Charset,
                format!(
                    "must contain only ASCII letters, digits and !#$%&'*+/=?^_`{{|}}~.@- (found U+{:04X})",
                    c as u32
                ),
            ));
        }
        let format_ok = s.split_once('@').is_some_and(|(local, domain)| {
            (1..=64).contains(&local.chars().count())
                && !local.starts_with('.')
                && !local.ends_with('.')
                && !local.contains("..")
                && !domain.is_empty()
                && !domain.contains('@')
        });
        if !format_ok {
            violations.push((
                Rule::EmailFormat,
                format!(
                    "must be one address like name@example.com: a local part of 1-64 characters without leading, trailing or double periods, one @, a domain (got {})",
                    echo(s)
                ),
            ));
        }
        if let Some((_, domain)) = s.rsplit_once('@') {
            let labels: Vec<&str> = domain.split('.').collect();
            if labels.len() < 2 || !labels.iter().all(|l| domain_label(l)) {
                violations.push((
                    Rule::EmailDomain,
                    format!(
                        "domain must be two or more labels of 1-63 letters, digits or -, not starting or ending with - (got {})",
                        echo(domain)
                    ),
                ));
            }
        }
        finish(Self(s.to_owned()), violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of<T: std::fmt::Debug>(r: Result<T, Violations>) -> Vec<Rule> {
        r.err().map(|v| v.into_iter().map(|(rule, _)| rule).collect()).unwrap_or_default()
    }

    #[test]
    fn user_names_follow_directory_rules() {
        let ds = UserNameRules::DS_DATA;
        let any = UserNameRules::WORKSPACES;
        assert!(UserName::parse("jdoe", ds).is_ok());
        assert!(UserName::parse("j.doe-2_x", ds).is_ok());
        assert_eq!(rules_of(UserName::parse("a-very-long-user-name", ds)), vec![Rule::Length]);
        assert!(UserName::parse("a-very-long-user-name", any).is_ok());
        assert!(UserName::parse("o'brien", any).is_ok(), "AD allows an apostrophe");
        assert_eq!(rules_of(UserName::parse("o'brien", ds)), vec![Rule::Charset], "DS Data does not");
        for bad in ["jo;hn", "a/b", "x*", "with space"] {
            assert_eq!(rules_of(UserName::parse(bad, any)), vec![Rule::Charset], "{bad:?}");
        }
        assert_eq!(rules_of(UserName::parse("dot.", any)), vec![Rule::TrailingPeriod]);
        assert_eq!(rules_of(UserName::parse("tab\t", any)), vec![Rule::Invisible]);
        assert_eq!(rules_of(UserName::parse("j\u{200b}doe", any)), vec![Rule::Invisible]);
        assert_eq!(rules_of(UserName::parse("", any)), vec![Rule::Length]);
        // A Cyrillic О (U+041E) where a Latin O belongs.
        assert_eq!(rules_of(UserName::parse("\u{41e}lga", any)), vec![Rule::Charset]);
        assert_eq!(UserName::parse("JDoe", ds).unwrap().normalized(), "jdoe");
    }

    #[test]
    fn emails_and_ids() {
        assert!(EmailAddress::parse("jane.doe@example.com").is_ok());
        assert!(EmailAddress::parse("o'brien+hr@mail.example.co.uk").is_ok());
        assert_eq!(rules_of(EmailAddress::parse("a@x..com")), vec![Rule::EmailDomain]);
        assert_eq!(rules_of(EmailAddress::parse("a@-x.com")), vec![Rule::EmailDomain]);
        assert_eq!(rules_of(EmailAddress::parse("a@b")), vec![Rule::EmailDomain]);
        assert_eq!(rules_of(EmailAddress::parse("jane")), vec![Rule::EmailFormat]);
        assert_eq!(rules_of(EmailAddress::parse(".jane@x.com")), vec![Rule::EmailFormat]);
        assert_eq!(rules_of(EmailAddress::parse("a b@x.com")), vec![Rule::Charset]);
        assert_eq!(rules_of(EmailAddress::parse("a@x.com@y.com")), vec![Rule::EmailFormat]);
        assert!(EmployeeId::parse("E-00042").is_ok());
        assert!(EmployeeId::parse("E 42").is_err());
        assert!(EventId::parse(&"x".repeat(129)).is_err());
        assert_eq!(rules_of(PersonName::parse("  ")), vec![Rule::Required]);
        assert_eq!(rules_of(PersonName::parse("Ann\u{202e}")), vec![Rule::Invisible]);
        assert!(PersonName::parse("José Müller-Łukasz").is_ok(), "names may be any script");
    }
}
