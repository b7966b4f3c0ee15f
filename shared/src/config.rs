//! Reading typed configuration from environment variables, reporting every missing or bad
//! variable at once rather than the first one.

use std::fmt;
use std::str::FromStr;

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarProblem {
    pub name: String,
    pub problem: String,
}

/// All the problems found while reading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<VarProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{} {}", p.name, p.problem)?;
        }
        Ok(())
    }
}

/// Collects values and problems; `finish` turns any problem into a [`ConfigError`].
pub struct EnvReader<F> {
    lookup: F,
    problems: Vec<VarProblem>,
}

impl EnvReader<fn(&str) -> Option<String>> {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::new(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> EnvReader<F> {
    /// Reads from any lookup (a map in tests).
    pub fn new(lookup: F) -> Self {
        Self { lookup, problems: Vec::new() }
    }

    fn problem(&mut self, name: &str, problem: String) {
        self.problems.push(VarProblem { name: name.to_owned(), problem });
    }

    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required variable, parsed. Missing or unparsable: recorded, and `T::default()` returned
    /// so reading can go on and report everything.
    pub fn required<T: FromStr + Default>(&mut self, name: &str) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => {
                self.problem(name, "is not set".into());
                T::default()
            }
            Some(v) => self.parse(name, &v).unwrap_or_default(),
        }
    }

    /// An optional variable with a default.
    pub fn optional<T: FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => default,
            Some(v) => self.parse(name, &v).unwrap_or(default),
        }
    }

    fn parse<T: FromStr>(&mut self, name: &str, value: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        match value.trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(name, format!("is invalid ({value:?}): {e}"));
                None
            }
        }
    }

    /// A required variable read with its own parser; `None` (and a recorded problem) if missing
    /// or invalid.
    pub fn required_with<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let Some(raw) = self.raw(name) else {
            self.problem(name, "is not set".into());
            return None;
        };
        match parse(raw.trim()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(name, format!("is invalid: {e}"));
                None
            }
        }
    }

    /// The mass-termination guard's setting, as everything that terminates reads it
    /// (`TERMINATION_GUARD_LIMIT`, 0: off; `TERMINATION_GUARD_WINDOW_MINUTES`).
    pub fn termination_guard(&mut self) -> Option<crate::ports::GuardConfig> {
        let limit: u32 = self.optional("TERMINATION_GUARD_LIMIT", 50);
        self.check(
            "TERMINATION_GUARD_LIMIT",
            limit <= crate::ports::MAX_TERMINATIONS_PER_WINDOW,
            "must be 0 (off) to 1000 terminations per window",
        );
        let window_minutes: i64 = self.optional("TERMINATION_GUARD_WINDOW_MINUTES", 60);
        self.check("TERMINATION_GUARD_WINDOW_MINUTES", (1..=10_080).contains(&window_minutes), "must be 1-10080");
        (limit > 0).then_some(crate::ports::GuardConfig { limit, window_ms: window_minutes * 60_000 })
    }

    /// Records a rule that holds between variables.
    pub fn check(&mut self, name: &str, ok: bool, problem: &str) {
        if !ok {
            self.problem(name, problem.to_owned());
        }
    }

    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() { Ok(value) } else { Err(ConfigError { problems: self.problems }) }
    }

    /// Like [`finish`](Self::finish) for values that exist only when their variables were good.
    pub fn finish_with<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ConfigError> {
        if !self.problems.is_empty() {
            return Err(ConfigError { problems: self.problems });
        }
        build().ok_or_else(|| ConfigError {
            problems: vec![VarProblem { name: "(configuration)".into(), problem: "incomplete".into() }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reports_every_problem_with_its_variable() {
        let env: HashMap<&str, &str> = [("PORT", "eighty"), ("NAME", "x")].into();
        let mut r = EnvReader::new(|k| env.get(k).map(|v| v.to_string()));
        let _port: u16 = r.required("PORT");
        let _table: String = r.required("TABLE");
        let name: String = r.required("NAME");
        let retries: u32 = r.optional("RETRIES", 3);
        assert_eq!((name.as_str(), retries), ("x", 3));
        let err = r.finish(()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("PORT is invalid (\"eighty\")"), "{text}");
        assert!(text.contains("TABLE is not set"), "{text}");
        assert_eq!(err.problems.len(), 2);
    }
}
