//! A small command-line parser: positionals, `--flag VALUE`,
//! `--flag=VALUE`, boolean `--switch`, and `--` to end the flags.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// One option of a command: what the parser accepts and what `--help`
/// says about it — one table for both, so no option goes undocumented.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Without the dashes.
    pub name: &'static str,
    /// A one-letter alias (`-f` for `--follow`), Docker's where it has one.
    pub short: Option<char>,
    /// The value's placeholder in help (`PATH`); None: a switch.
    pub value: Option<&'static str>,
    /// What it does, with its default.
    pub help: &'static str,
}

impl Opt {
    pub const fn switch(name: &'static str, help: &'static str) -> Opt {
        Opt {
            name,
            short: None,
            value: None,
            help,
        }
    }

    pub const fn value(name: &'static str, placeholder: &'static str, help: &'static str) -> Opt {
        Opt {
            name,
            short: None,
            value: Some(placeholder),
            help,
        }
    }

    pub const fn short(self, letter: char) -> Opt {
        Opt {
            short: Some(letter),
            ..self
        }
    }

    fn takes_value(&self) -> bool {
        self.value.is_some()
    }
}

/// `-f` → `--follow`, `-it` → `-i -t`, from the options' short letters;
/// anything else (values, positionals, `-1`) as it is. Stops at `--` and,
/// when `leading`, at the first positional (the container's own argv).
fn expand_short(argv: &[String], spec: &[Opt], leading: bool) -> Vec<String> {
    let by_letter = |c: char| spec.iter().find(|o| o.short == Some(c));
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.iter();
    let mut expect_value = false;
    while let Some(arg) = it.next() {
        let letters = arg
            .strip_prefix('-')
            .filter(|r| !r.is_empty() && !r.starts_with('-'));
        let opts: Option<Vec<&Opt>> = letters.and_then(|l| l.chars().map(by_letter).collect());
        match opts {
            Some(opts) if !expect_value => {
                expect_value = opts.last().is_some_and(|o| o.takes_value());
                out.extend(opts.iter().map(|o| format!("--{}", o.name)));
            }
            _ => {
                let positional = !expect_value && !arg.starts_with('-');
                expect_value = !expect_value
                    && arg.strip_prefix("--").is_some_and(|n| {
                        !n.contains('=') && spec.iter().any(|o| o.name == n && o.takes_value())
                    });
                out.push(arg.clone());
                if arg == "--" || (leading && positional) {
                    out.extend(it.by_ref().cloned());
                    break;
                }
            }
        }
    }
    out
}

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    values: BTreeMap<&'static str, Vec<String>>,
    switches: BTreeSet<&'static str>,
}

impl Args {
    pub fn parse(argv: &[String], spec: &[Opt]) -> Result<Args, String> {
        Self::parse_inner(argv, spec, false)
    }

    /// Flags up to the first positional; that one and everything after it
    /// are positionals (`berth run --rm IMAGE sh -c …`).
    pub fn parse_leading(argv: &[String], spec: &[Opt]) -> Result<Args, String> {
        Self::parse_inner(argv, spec, true)
    }

    /// Whether `--help` or `-h` comes among the options (not after `--`,
    /// nor, when `leading`, in the container's own command).
    pub fn wants_help(argv: &[String], spec: &[Opt], leading: bool) -> bool {
        let argv = expand_short(argv, spec, leading);
        let mut expect_value = false;
        for arg in &argv {
            if expect_value {
                expect_value = false;
                continue;
            }
            match arg.as_str() {
                "--help" | "-h" => return true,
                "--" => return false,
                a if !a.starts_with('-') && leading => return false,
                a => {
                    expect_value = a
                        .strip_prefix("--")
                        .is_some_and(|n| spec.iter().any(|o| o.name == n && o.takes_value()));
                }
            }
        }
        false
    }

    fn parse_inner(
        argv: &[String],
        spec: &[Opt],
        stop_at_positional: bool,
    ) -> Result<Args, String> {
        let argv = expand_short(argv, spec, stop_at_positional);
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
            let opt = spec
                .iter()
                .find(|o| o.name == name)
                .ok_or_else(|| format!("unknown option --{name}"))?;
            let known = opt.name;
            if opt.takes_value() {
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

    fn opts(spec: &[(&'static str, bool)]) -> Vec<Opt> {
        spec.iter()
            .map(|&(n, v)| {
                if v {
                    Opt::value(n, "X", "x")
                } else {
                    Opt::switch(n, "x")
                }
            })
            .collect()
    }

    #[test]
    fn short_letters_and_help_requests() {
        let spec = [
            Opt::switch("follow", "f").short('f'),
            Opt::switch("interactive", "i").short('i'),
            Opt::switch("tty", "t").short('t'),
            Opt::value("env", "K=V", "e").short('e'),
        ];
        let a = Args::parse_leading(&argv(&["-it", "-e", "-x", "img", "-f"]), &spec).unwrap();
        assert!(a.switch("interactive") && a.switch("tty"));
        assert_eq!(a.values("env"), ["-x"]);
        assert_eq!(a.positional, ["img", "-f"]);
        assert!(Args::wants_help(&argv(&["-h"]), &spec, true));
        assert!(Args::wants_help(&argv(&["-f", "--help"]), &spec, false));
        assert!(!Args::wants_help(&argv(&["img", "sh", "-h"]), &spec, true));
        assert!(!Args::wants_help(&argv(&["-e", "--help"]), &spec, true));
        assert!(!Args::wants_help(&argv(&["--", "-h"]), &spec, false));
    }

    #[test]
    fn flags_values_and_positionals() {
        let spec = opts(&[("root", true), ("json", false)]);
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
        let spec = opts(&[("rm", false), ("env", true)]);
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
        let spec = opts(&[("tail", true)]);
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
        let spec = opts(&[("root", true), ("json", false)]);
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
