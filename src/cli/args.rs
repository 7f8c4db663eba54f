//! A small command-line parser: positionals, `--flag VALUE`,
//! `--flag=VALUE`, boolean `--switch`, and `--` to end the flags.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// (name without dashes, takes a value)
pub type FlagSpec = (&'static str, bool);

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    values: BTreeMap<&'static str, Vec<String>>,
    switches: BTreeSet<&'static str>,
}

impl Args {
    pub fn parse(argv: &[String], spec: &[FlagSpec]) -> Result<Args, String> {
        Self::parse_inner(argv, spec, false)
    }

    /// Flags up to the first positional; that one and everything after it
    /// are positionals (`berth run --rm IMAGE sh -c …`).
    pub fn parse_leading(argv: &[String], spec: &[FlagSpec]) -> Result<Args, String> {
        Self::parse_inner(argv, spec, true)
    }

    fn parse_inner(
        argv: &[String],
        spec: &[FlagSpec],
        stop_at_positional: bool,
    ) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                out.positional.extend(it.by_ref().cloned());
                break;
            }
            let Some(flag) = arg.strip_prefix("--") else {
                out.positional.push(arg.clone());
                if stop_at_positional {
                    out.positional.extend(it.by_ref().cloned());
                    break;
                }
                continue;
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            let &(known, takes_value) = spec
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| format!("unknown option --{name}"))?;
            if takes_value {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("option --{name} needs a value"))?,
                };
                out.values.entry(known).or_default().push(value);
            } else if inline.is_some() {
                return Err(format!("option --{name} takes no value"));
            } else {
                out.switches.insert(known);
            }
        }
        Ok(out)
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a repeatable option, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// The last value of `name` as a number in `range` (None when absent):
    /// a number the daemon would refuse, or that would overflow a deadline
    /// here, is a usage error naming the flag.
    pub fn number<T>(&self, name: &str, range: RangeInclusive<T>) -> Result<Option<T>, String>
    where
        T: FromStr + PartialOrd + Display,
    {
        let Some(text) = self.value(name) else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "--{name} wants a number from {} to {}, not {text:?}",
                range.start(),
                range.end()
            )),
        }
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(name)
    }

    /// Exactly `n` positionals, named in `usage` for the error.
    pub fn expect_positional(&self, n: usize, usage: &str) -> Result<&[String], String> {
        if self.positional.len() == n {
            Ok(&self.positional)
        } else {
            Err(format!("usage: {usage}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_values_and_positionals() {
        let spec = [("root", true), ("json", false)];
        let a = Args::parse(
            &argv(&["x", "--root", "/r", "--json", "y", "--", "--z"]),
            &spec,
        )
        .unwrap();
        assert_eq!(a.positional, ["x", "y", "--z"]);
        assert_eq!(a.value("root"), Some("/r"));
        assert!(a.switch("json"));
        let a = Args::parse(&argv(&["--root=/q"]), &spec).unwrap();
        assert_eq!(a.value("root"), Some("/q"));
    }

    #[test]
    fn leading_flags_stop_at_the_first_positional() {
        let spec = [("rm", false), ("env", true)];
        let a = Args::parse_leading(
            &argv(&["--rm", "--env", "A=1", "--env=B=2", "img", "sh", "--rm"]),
            &spec,
        )
        .unwrap();
        assert!(a.switch("rm"));
        assert_eq!(a.values("env"), ["A=1", "B=2"]);
        assert_eq!(a.positional, ["img", "sh", "--rm"]);
    }

    #[test]
    fn numbers_are_bounded() {
        let spec = [("tail", true)];
        let a = Args::parse(&argv(&["--tail", "5"]), &spec).unwrap();
        assert_eq!(a.number("tail", 0..=10u64), Ok(Some(5)));
        assert_eq!(a.number("nope", 0..=10u64), Ok(None));
        let a = Args::parse(&argv(&["--tail", "18446744073709551615"]), &spec).unwrap();
        assert_eq!(
            a.number("tail", 0..=10u64).unwrap_err(),
            "--tail wants a number from 0 to 10, not \"18446744073709551615\""
        );
        let a = Args::parse(&argv(&["--tail", "-1"]), &spec).unwrap();
        assert!(a.number("tail", 0..=10u64).is_err());
    }

    #[test]
    fn mistakes_are_reported() {
        let spec = [("root", true), ("json", false)];
        assert_eq!(
            Args::parse(&argv(&["--nope"]), &spec).unwrap_err(),
            "unknown option --nope"
        );
        assert_eq!(
            Args::parse(&argv(&["--root"]), &spec).unwrap_err(),
            "option --root needs a value"
        );
        assert_eq!(
            Args::parse(&argv(&["--json=1"]), &spec).unwrap_err(),
            "option --json takes no value"
        );
    }
}
