//! CDI device names in a spec's `devices`: `vendor.com/class=name` (the
//! Container Device Interface's qualified names), recognised and checked
//! at load. The CDI spec files they point at are host data, read at each
//! start (plugins/cdi/); nothing here touches the host.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::validate::{Problem, problem};
use crate::supervisor::spec::validate_mounts::clean_absolute;

/// At most this many spec directories.
const MAX_SPEC_DIRS: usize = 16;

/// berth.json's `cdi`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdiSettings {
    /// CDI spec directories, the later winning for a device two define;
    /// default `["/etc/cdi", "/var/run/cdi"]`.
    #[serde(default)]
    pub spec_dirs: Option<Vec<PathBuf>>,
}

/// Absolute, clean, and few.
pub fn check_cdi_settings(s: &CdiSettings) -> Vec<Problem> {
    let Some(dirs) = &s.spec_dirs else {
        return Vec::new();
    };
    if dirs.len() > MAX_SPEC_DIRS {
        let why = format!("at most {MAX_SPEC_DIRS} directories");
        return vec![problem(&["cdi", "spec_dirs"], why)];
    }
    let bad = |d: &PathBuf| {
        !d.to_str()
            .is_some_and(|t| clean_absolute(t) && t.len() < 4096)
    };
    dirs.iter()
        .enumerate()
        .filter(|(_, d)| bad(d))
        .map(|(i, _)| {
            let why = "must be an absolute path without \"..\"";
            problem(&["cdi", "spec_dirs", &i.to_string()], why)
        })
        .collect()
}

/// Longest vendor (a DNS name's limit) and class or device name.
const MAX_VENDOR_BYTES: usize = 253;
const MAX_CLASS_BYTES: usize = 63;
const MAX_NAME_BYTES: usize = 253;

/// The name every device of a kind answers to, unless a spec defines a
/// device of that name itself (nvidia-ctk writes one).
pub const ALL_DEVICES: &str = "all";

/// A qualified CDI device name, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdiName<'a> {
    pub vendor: &'a str,
    pub class: &'a str,
    pub name: &'a str,
}

impl CdiName<'_> {
    /// `vendor/class`, what a spec file's `kind` says.
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }
}

/// Whether a `devices` entry means a CDI device: no host path starts
/// without `/`, and only a CDI name has an `=` there (Docker's and
/// Podman's test too). It is then checked as one.
pub fn looks_like_cdi_name(text: &str) -> bool {
    !text.starts_with('/') && text.contains('=')
}

/// `vendor.com/class=name`, each part checked as the CDI spec says.
pub fn parse_cdi_name(text: &str) -> Result<CdiName<'_>, String> {
    let Some((kind, name)) = text.split_once('=') else {
        return Err(format!(
            "{text:?} is not a CDI name (vendor.com/class=name)"
        ));
    };
    let (vendor, class) = parse_kind(kind)?;
    check_device_name(name)?;
    Ok(CdiName {
        vendor,
        class,
        name,
    })
}

/// A CDI kind, `vendor.com/class`: returns (vendor, class).
pub fn parse_kind(kind: &str) -> Result<(&str, &str), String> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Err(format!("kind {kind:?} is not vendor.com/class"));
    };
    check_part("vendor", vendor, MAX_VENDOR_BYTES, b"-_.")?;
    check_part("class", class, MAX_CLASS_BYTES, b"-_.")?;
    Ok((vendor, class))
}

/// A device name: letters, digits, `-`, `_`, `.` and `:`, starting and
/// ending with a letter or digit.
pub fn check_device_name(name: &str) -> Result<(), String> {
    let what = "device name";
    check_chars(what, name, MAX_NAME_BYTES, b"-_.:")?;
    match name.as_bytes().first() {
        Some(c) if c.is_ascii_alphanumeric() => Ok(()),
        _ => Err(format!("{what} {name:?} must start with a letter or digit")),
    }
}

/// Vendor and class: a letter first, a letter or digit last.
fn check_part(what: &str, text: &str, max: usize, extra: &[u8]) -> Result<(), String> {
    check_chars(what, text, max, extra)?;
    match text.as_bytes().first() {
        Some(c) if c.is_ascii_alphabetic() => Ok(()),
        _ => Err(format!("{what} {text:?} must start with a letter")),
    }
}

fn check_chars(what: &str, text: &str, max: usize, extra: &[u8]) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.len() > max {
        return Err(format!("{what} is longer than {max} bytes"));
    }
    let ok = |c: &u8| c.is_ascii_alphanumeric() || extra.contains(c);
    if let Some(c) = text.bytes().find(|c| !ok(c)) {
        let allowed: String = extra.iter().map(|c| char::from(*c)).collect();
        return Err(format!(
            "{what} {text:?} has {:?}: letters, digits and {allowed} only",
            char::from(c)
        ));
    }
    match text.as_bytes().last() {
        Some(c) if c.is_ascii_alphanumeric() => Ok(()),
        _ => Err(format!("{what} {text:?} must end with a letter or digit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_split() {
        let n = parse_cdi_name("nvidia.com/gpu=0").unwrap();
        assert_eq!((n.vendor, n.class, n.name), ("nvidia.com", "gpu", "0"));
        assert_eq!(n.kind(), "nvidia.com/gpu");
        assert!(parse_cdi_name("vendor.com/dev=all").is_ok());
        assert!(parse_cdi_name("a.b/c-d_e=GPU-1:2.3").is_ok());
    }

    #[test]
    fn bad_names_are_refused_with_the_part() {
        for (bad, part) in [
            ("vendor.com=a", "kind"),
            ("/dev=a", "vendor"),
            ("1vendor/c=a", "vendor"),
            ("vendor.com/=a", "class"),
            ("vendor.com/c/d=a", "class"),
            ("vendor.com/c=", "device name"),
            ("vendor.com/c=-a", "device name"),
            ("vendor.com/c=a/b", "device name"),
            ("vendor.com/c=a=b", "device name"),
            ("vendor.com/c=a\0", "device name"),
        ] {
            let e = parse_cdi_name(bad).unwrap_err();
            assert!(e.contains(part), "{bad}: {e}");
        }
        let long = format!("v/c={}", "a".repeat(300));
        assert!(parse_cdi_name(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn a_cdi_entry_in_a_spec_is_checked_at_load_with_its_position() {
        use crate::supervisor::spec::devices::DeviceSpec;
        use crate::supervisor::spec::validate::parse_spec;
        let d = DeviceSpec::parse_short("vendor.com/dev=a").unwrap();
        assert!(d.cdi && d.path == "vendor.com/dev=a");
        let text = r#"{"image": "x", "devices": ["/dev/null", "vendor.com/dev=a", "v/=b"]}"#;
        let errors = parse_spec(std::path::Path::new("s.json"), text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let shown = errors[0].to_string();
        assert!(
            shown.starts_with("s.json:1:61: devices.2: CDI device \"v/=b\""),
            "{shown}"
        );
        let ok = r#"{"image": "x", "devices": ["vendor.com/dev=a", "vendor.com/dev=all"]}"#;
        assert!(parse_spec(std::path::Path::new("s.json"), ok).is_ok());
    }

    #[test]
    fn only_entries_with_an_equals_sign_and_no_leading_slash_are_cdi() {
        assert!(looks_like_cdi_name("vendor.com/dev=a"));
        assert!(looks_like_cdi_name("garbage=x"));
        assert!(!looks_like_cdi_name("/dev/x=y"));
        assert!(!looks_like_cdi_name("/dev/ttyUSB0:/dev/modem"));
    }
}
