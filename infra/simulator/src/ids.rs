//! Identifier patterns of the services, and generation of new ids.

use rand::Rng;

fn has_prefix_then(s: &str, prefix: &str, min: usize, max: usize, ok: fn(char) -> bool) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| (min..=max).contains(&rest.len()) && rest.chars().all(ok))
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_lowercase()
}

/// `^d-[0-9a-f]{8,63}$`
pub fn is_directory_id(s: &str) -> bool {
    has_prefix_then(s, "d-", 8, 63, |c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// `^wsb-[0-9a-z]{8,63}$`
pub fn is_bundle_id(s: &str) -> bool {
    has_prefix_then(s, "wsb-", 8, 63, lower_alnum)
}

/// `^ws-[0-9a-z]{8,63}$`
pub fn is_workspace_id(s: &str) -> bool {
    has_prefix_then(s, "ws-", 8, 63, lower_alnum)
}

fn random_lower_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

pub fn workspace_id() -> String {
    format!("ws-{}", random_lower_alnum(9))
}

pub fn user_id() -> String {
    format!("S-1-5-21-{}", rand::rng().random_range(1_000_000_000u64..9_999_999_999))
}

pub fn computer_name() -> String {
    format!("WSAMZN-{}", random_lower_alnum(8).to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(is_directory_id("d-906734e6b2"));
        assert!(!is_directory_id("d-906734E6B2"));
        assert!(!is_directory_id("d-1234567"));
        assert!(is_bundle_id("wsb-clj85qzj1"));
        assert!(!is_bundle_id("wsb-CLJ85QZJ1"));
        assert!(is_workspace_id(&workspace_id()));
        assert!(!is_workspace_id("ws-abc"));
    }
}
