//! Compose's variable interpolation, applied to every string value of the
//! file (never to keys) before anything is mapped: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`,
//! `${VAR:?message}`, `${VAR?message}`, `$$` for a literal `$`. Defaults
//! may nest (`${A:-${B}}`). Bounded: nesting depth, each result's length
//! and the whole file's expansion.

use std::collections::BTreeMap;

use serde_json::Value;

/// Nested `${…}` inside a default, at most.
const MAX_NESTING: usize = 8;
/// One interpolated string, at most (berth's longest argument is 128 KiB).
pub const MAX_RESULT_BYTES: usize = 128 << 10;
/// Everything interpolation may produce across the file.
pub const MAX_TOTAL_BYTES: usize = 4 << 20;

/// The variables: the environment, then the `.env` file for names the
/// environment lacks (compose's order).
#[derive(Debug, Default, Clone)]
pub struct Vars(pub BTreeMap<String, String>);

impl Vars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Interpolates every string in `value`; the error names the path.
pub fn interpolate_tree(value: &mut Value, vars: &Vars, path: &str) -> Result<(), String> {
    let mut budget = MAX_TOTAL_BYTES;
    walk(value, vars, path, &mut budget)
}

fn walk(value: &mut Value, vars: &Vars, path: &str, budget: &mut usize) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains('$') => {
            let out = interpolate(s, vars, budget).map_err(|e| format!("{path}: {e}"))?;
            *s = out;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, vars, &format!("{path}.{i}"), budget)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, vars, &p, budget)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One string; `budget` is what the file may still produce.
pub fn interpolate(text: &str, vars: &Vars, budget: &mut usize) -> Result<String, String> {
    let mut out = String::new();
    expand(text, vars, 0, budget, &mut out)?;
    Ok(out)
}

fn expand(
    text: &str,
    vars: &Vars,
    depth: usize,
    budget: &mut usize,
    out: &mut String,
) -> Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!("variables nested more than {MAX_NESTING} deep"));
    }
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        push(out, &rest[..at], budget)?;
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            push(out, "$", budget)?;
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).ok_or("a ${ without its }")?;
            braced(&inner[..end], vars, depth, budget, out)?;
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                let shown: String = rest[at..].chars().take(16).collect();
                return Err(format!(
                    "invalid interpolation at {shown:?} (write $$ for a literal $)"
                ));
            }
            push(out, vars.get(&after[..len]).unwrap_or(""), budget)?;
            rest = &after[len..];
        }
    }
    push(out, rest, budget)
}

/// The `}` that closes a `${`, skipping nested ones.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + 1;
    }
    len
}

fn braced(
    body: &str,
    vars: &Vars,
    depth: usize,
    budget: &mut usize,
    out: &mut String,
) -> Result<(), String> {
    let len = name_len(body);
    let (name, op) = body.split_at(len);
    if name.is_empty() {
        return Err(format!("${{{body}}}: not a variable name"));
    }
    let value = vars.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let (word, use_word) = match op {
        "" => return push(out, value.unwrap_or(""), budget),
        _ if op.starts_with(":-") => (&op[2..], !set_nonempty),
        _ if op.starts_with('-') => (&op[1..], value.is_none()),
        _ if op.starts_with(":+") => (&op[2..], set_nonempty),
        _ if op.starts_with('+') => (&op[1..], value.is_some()),
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let unset = if op.starts_with(':') {
                !set_nonempty
            } else {
                value.is_none()
            };
            if unset {
                let message = op.trim_start_matches(':').trim_start_matches('?');
                let mut shown = String::new();
                let mut spare = 4096;
                expand(message, vars, depth + 1, &mut spare, &mut shown)?;
                return Err(format!(
                    "required variable {name} is missing a value: {shown}"
                ));
            }
            return push(out, value.unwrap_or(""), budget);
        }
        _ => return Err(format!("${{{body}}}: unknown operator after {name}")),
    };
    let plus = op.trim_start_matches(':').starts_with('+');
    match (use_word, plus) {
        (true, _) => expand(word, vars, depth + 1, budget, out),
        (false, true) => Ok(()),
        (false, false) => push(out, value.unwrap_or(""), budget),
    }
}

fn push(out: &mut String, s: &str, budget: &mut usize) -> Result<(), String> {
    if out.len() + s.len() > MAX_RESULT_BYTES {
        return Err(format!(
            "interpolated value longer than {MAX_RESULT_BYTES} bytes"
        ));
    }
    *budget = budget.checked_sub(s.len()).ok_or_else(|| {
        format!("interpolation produces more than {MAX_TOTAL_BYTES} bytes in all")
    })?;
    out.push_str(s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut m = BTreeMap::new();
        m.insert("A".to_string(), "aa".to_string());
        m.insert("EMPTY".to_string(), String::new());
        m.insert("B_2".to_string(), "b".to_string());
        Vars(m)
    }

    fn i(text: &str) -> Result<String, String> {
        interpolate(text, &vars(), &mut MAX_TOTAL_BYTES.clone())
    }

    #[test]
    fn the_forms_compose_knows() {
        assert_eq!(i("x$A-${A}.$B_2").unwrap(), "xaa-aa.b");
        assert_eq!(
            i("${NOPE:-d}|${EMPTY:-d}|${EMPTY-d}|${NOPE-d}").unwrap(),
            "d|d||d"
        );
        assert_eq!(
            i("${A:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${NOPE+alt}").unwrap(),
            "alt||alt|"
        );
        assert_eq!(i("${NOPE:-${A}x}").unwrap(), "aax");
        assert_eq!(i("$$A costs $$5").unwrap(), "$A costs $5");
        assert_eq!(i("${NOPE}").unwrap(), "");
        assert!(
            i("${NOPE:?set it}")
                .unwrap_err()
                .contains("NOPE is missing a value: set it")
        );
        assert!(i("${EMPTY?x}").is_ok());
        for bad in ["${A", "$-", "${}", "${A!x}", "cost $5"] {
            assert!(i(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expansion_is_bounded() {
        let deep = format!("{}x{}", "${N:-".repeat(20), "}".repeat(20));
        assert!(i(&deep).unwrap_err().contains("nested"));
        let mut m = BTreeMap::new();
        m.insert("BIG".to_string(), "x".repeat(100_000));
        let big = Vars(m);
        let mut budget = MAX_TOTAL_BYTES;
        assert!(interpolate("$BIG$BIG", &big, &mut budget).is_err());
        let mut tree = Value::Array(vec![Value::String("$BIG".into()); 100]);
        assert!(
            interpolate_tree(&mut tree, &big, "x")
                .unwrap_err()
                .contains("in all")
        );
    }
}
