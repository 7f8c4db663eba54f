//! Docker's device cgroup rules (`--device-cgroup-rule "c 188:* rwm"`) and
//! device permissions (`rwm`), parsed into the kernel's rules. Every
//! number is bounded (a device's major has 12 bits, its minor 20); an
//! error names the part that is wrong without echoing the whole input.

use crate::kernel::cgroup::{DeviceAccess, DeviceKind, DeviceRule};
use crate::supervisor::spec::bounds::{Bound, DEVICE_MAJOR, DEVICE_MINOR};

pub const RULE_FORM: &str = "expected \"TYPE MAJOR:MINOR ACCESS\" like \"c 188:* rwm\" (TYPE a, b or c; MAJOR and MINOR a number or *; ACCESS of r, w, m)";

/// `rwm`, `r`, `rw`, …: each of r, w and m at most once, at least one.
pub fn parse_permissions(text: &str) -> Option<DeviceAccess> {
    let mut access = DeviceAccess::default();
    for c in text.chars() {
        let flag = match c {
            'r' => &mut access.read,
            'w' => &mut access.write,
            'm' => &mut access.mknod,
            _ => return None,
        };
        if *flag {
            return None;
        }
        *flag = true;
    }
    (!access.is_empty()).then_some(access)
}

/// "c 188:* rwm", "b 7:* rw", "a *:* rwm" (type `a` covers every device,
/// so its numbers must be `*`).
pub fn parse_device_rule(text: &str) -> Result<DeviceRule, String> {
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let [kind, numbers, access] = parts.as_slice() else {
        return Err(format!("{RULE_FORM}: got {} parts", parts.len()));
    };
    let kind = match *kind {
        "a" => DeviceKind::All,
        "c" => DeviceKind::Char,
        "b" => DeviceKind::Block,
        other => return Err(format!("type {}: expected a, b or c", shown(other))),
    };
    let Some((major, minor)) = numbers.split_once(':') else {
        return Err(format!(
            "{}: expected MAJOR:MINOR like 188:*",
            shown(numbers)
        ));
    };
    let major = device_number("major", major, &DEVICE_MAJOR)?;
    let minor = device_number("minor", minor, &DEVICE_MINOR)?;
    if kind == DeviceKind::All && (major.is_some() || minor.is_some()) {
        return Err("type a covers every device: write \"a *:* ACCESS\"".into());
    }
    let access = parse_permissions(access).ok_or_else(|| {
        format!(
            "access {}: expected one or more of r, w and m, each once",
            shown(access)
        )
    })?;
    Ok(DeviceRule {
        kind,
        major,
        minor,
        access,
    })
}

/// `*` (None) or a decimal number within `bound`.
fn device_number(what: &str, text: &str, bound: &Bound<u64>) -> Result<Option<u32>, String> {
    if text == "*" {
        return Ok(None);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {}: expected a number or *", shown(text)));
    }
    let Ok(n) = text.parse::<u64>() else {
        return Err(format!(
            "{what}: expected {} to {}, got a {}-digit number",
            bound.min,
            bound.max,
            text.len()
        ));
    };
    bound.check(n).map_err(|e| format!("{what}: {e}"))?;
    u32::try_from(n)
        .map(Some)
        .map_err(|_| format!("{what}: {n} is too large"))
}

/// A part of the input as it is quoted in errors: at most 16 characters.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(16).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_rules_parse_and_print_back() {
        for text in ["c 188:* rwm", "b 7:* rw", "a *:* rwm", "c 1:3 r", "b *:* m"] {
            let rule = parse_device_rule(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.to_string(), text);
        }
        let rule = parse_device_rule("c 4095:1048575 wr").unwrap();
        assert_eq!(rule.to_string(), "c 4095:1048575 rw");
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let cases = [
            ("", "got 0 parts"),
            ("c 1:2", "got 2 parts"),
            ("c 1:2 r extra", "got 4 parts"),
            ("x 1:2 r", "type \"x\": expected a, b or c"),
            ("c 12 r", "\"12\": expected MAJOR:MINOR"),
            ("c -1:2 r", "major \"-1\": expected a number or *"),
            ("c 1:+2 r", "minor \"+2\": expected a number or *"),
            ("c :2 r", "major \"\": expected a number"),
            ("c 4096:0 r", "major: expected 0 to 4095, got 4096"),
            ("c 0:1048576 r", "minor: expected 0 to 1048575, got 1048576"),
            ("c 99999999999999999999999:0 r", "got a 23-digit number"),
            ("a 1:2 rw", "type a covers every device"),
            (
                "c 1:2 rwx",
                "access \"rwx\": expected one or more of r, w and m",
            ),
            ("c 1:2 rr", "access \"rr\""),
            ("c 1:2 R", "access \"R\""),
            ("c 1:2:3 r", "minor \"2:3\""),
        ];
        for (text, want) in cases {
            let e = parse_device_rule(text).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let long = format!("c 1:2 {}", "r".repeat(100_000));
        let e = parse_device_rule(&long).unwrap_err();
        assert!(e.len() < 200, "the input is not echoed whole: {}", e.len());
    }

    #[test]
    fn permissions_take_each_letter_once() {
        assert_eq!(parse_permissions("rwm"), Some(DeviceAccess::ALL));
        let r = parse_permissions("r").unwrap();
        assert!(r.read && !r.write && !r.mknod);
        for bad in ["", "rwx", "rr", "RW", " r"] {
            assert_eq!(parse_permissions(bad), None, "{bad:?}");
        }
    }
}
