//! Initial passwords: generated from a CSPRNG to Active Directory's complexity rules, handed
//! straight to the directory API, never logged, stored or sent in a message.

use rand::seq::{IndexedRandom, SliceRandom};

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#%^*-_=+.";

/// A password that cannot be printed by accident.
pub struct Password(String);

impl Password {
    /// 24 characters with every class present (AD needs three of four).
    pub fn generate() -> Password {
        // ThreadRng is a CSPRNG (ChaCha) seeded from the operating system.
        let mut rng = rand::rng();
        let all: Vec<u8> = [UPPER, LOWER, DIGITS, SYMBOLS].concat();
        let mut chars: Vec<u8> =
            [UPPER, LOWER, DIGITS, SYMBOLS].iter().filter_map(|class| class.choose(&mut rng).copied()).collect();
        while chars.len() < 24 {
            if let Some(c) = all.choose(&mut rng) {
                chars.push(*c);
            }
        }
        chars.shuffle(&mut rng);
        Password(chars.into_iter().map(char::from).collect())
    }

    /// The secret itself, for the one API call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meets_complexity_and_never_prints() {
        let a = Password::generate();
        let b = Password::generate();
        assert_ne!(a.expose(), b.expose());
        let p = a.expose();
        assert_eq!(p.len(), 24);
        assert!(p.bytes().any(|c| UPPER.contains(&c)));
        assert!(p.bytes().any(|c| LOWER.contains(&c)));
        assert!(p.bytes().any(|c| DIGITS.contains(&c)));
        assert!(p.bytes().any(|c| SYMBOLS.contains(&c)));
        assert_eq!(format!("{a:?}"), "Password(***)");
    }
}
