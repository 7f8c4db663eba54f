//! Compose's value syntaxes, each bounded where it is parsed: strings or
//! lists, shell words, Go durations (`1m30s`), Docker sizes (`512m`).

use std::time::Duration;

use serde_json::Value;

/// A scalar as compose reads it where a string is expected (`PORT: 80`,
/// `DEBUG: true`); None for lists, maps and null.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of scalars (or one scalar, as a list of one).
pub fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| format!("expected a string, got {}", kind(i))))
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or_else(|| format!("expected a string or a list, got {}", kind(other))),
    }
}

/// A command as compose takes it: a list as is, a string split into words
/// as a shell would (quotes, backslashes), without running a shell.
pub fn command_words(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => shell_split(s),
        Value::Array(_) => string_list(v),
        other => Err(format!("expected a string or a list, got {}", kind(other))),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Words of a command line: `'…'` literal, `"…"` with `\"`, `\\`, `\$`
/// escapes, a backslash outside quotes escapes the next character.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The longest duration accepted anywhere (berth's own bounds are smaller
/// and say so when the spec is checked).
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86400);

/// A Go duration as compose writes them (`1m30s`, `1.5s`, `500ms`, `2h`),
/// or a number of seconds.
pub fn duration(v: &Value) -> Result<Duration, String> {
    let d = match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("{n} is not a duration"))?,
        Value::String(s) => go_duration(s)?,
        other => return Err(format!("expected a duration, got {}", kind(other))),
    };
    if d > MAX_DURATION {
        return Err(format!("{} is longer than 100 years", d.as_secs()));
    }
    Ok(d)
}

fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (like \"1m30s\", \"500ms\")");
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() || t.len() > 64 {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A size as Docker reads it: bytes as a number, or `512m`, `1g`, `64k`,
/// `100b`, `1.5g`, `2gb`, `2GiB` (binary multiples, any case).
pub fn byte_size(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a size in bytes")),
        Value::String(s) => parse_size(s),
        other => Err(format!("expected a size, got {}", kind(other))),
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (like \"512m\", \"1g\")");
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() || t.len() > 32 {
        return Err(bad());
    }
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 10),
        Some(b'm') => (&t[..t.len() - 1], 20),
        Some(b'g') => (&t[..t.len() - 1], 30),
        Some(b't') => (&t[..t.len() - 1], 40),
        Some(b'p') => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let number: f64 = digits.trim().parse().map_err(|_| bad())?;
    let bytes = number * (1u64 << shift) as f64;
    // 2^63 as f64 is exact; anything at or past it would saturate.
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_in_go_form() {
        let d = |s: &str| duration(&json!(s));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(d("0"), Ok(Duration::ZERO));
        assert_eq!(duration(&json!(10)), Ok(Duration::from_secs(10)));
        for bad in ["", "10", "1x", "s", "-1s", "1e400s", "99999999999999999h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_in_docker_form() {
        let s = |t: &str| byte_size(&json!(t));
        assert_eq!(s("512m"), Ok(512 << 20));
        assert_eq!(s("1g"), Ok(1 << 30));
        assert_eq!(s("1.5G"), Ok(3 << 29));
        assert_eq!(s("64KiB"), Ok(64 << 10));
        assert_eq!(s("100b"), Ok(100));
        assert_eq!(s("2gb"), Ok(2 << 30));
        assert_eq!(byte_size(&json!(4096)), Ok(4096));
        for bad in ["", "m", "-1m", "1x", "99999999p"] {
            assert!(s(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_split_as_a_shell_would() {
        assert_eq!(
            shell_split(r#"sh -c 'echo "a b"' "x\"y" z\ w"#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x\"y", "z w"]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("''").unwrap(), [""]);
        assert!(shell_split("'open").is_err());
        assert!(shell_split("end\\").is_err());
    }
}
