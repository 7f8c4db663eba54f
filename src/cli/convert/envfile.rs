//! `.env` and `env_file` files: `KEY=VALUE` lines as compose reads them
//! (`export ` prefix, `#` comments, single quotes literal, double quotes
//! with `\n`, `\t`, `\"`, `\\` escapes). Bounded in size and entries.

use std::io::Read;
use std::path::Path;

/// An env file larger than this is refused unread.
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;
/// As berth's own `env` allows.
pub const MAX_ENV_ENTRIES: usize = 4096;

/// One line's variable: None as value for a bare `KEY` (compose then takes
/// it from the environment).
pub type EnvEntry = (String, Option<String>);

pub fn read_env_file(path: &Path) -> Result<Vec<EnvEntry>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_ENV_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_ENV_FILE_BYTES {
        return Err(format!(
            "{}: larger than {MAX_ENV_FILE_BYTES} bytes",
            path.display()
        ));
    }
    parse_env_text(&text).map_err(|e| format!("{}:{e}", path.display()))
}

/// Errors are `LINE: message`.
pub fn parse_env_text(text: &str) -> Result<Vec<EnvEntry>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if out.len() >= MAX_ENV_ENTRIES {
            return Err(format!("{}: more than {MAX_ENV_ENTRIES} entries", i + 1));
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (
                k.trim(),
                Some(unquote(v.trim_start()).map_err(|e| format!("{}: {e}", i + 1))?),
            ),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("{}: {key:?} is not a variable name", i + 1));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn unquote(v: &str) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("unterminated ' quote")?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        loop {
            match chars.next() {
                Some('"') => return Ok(out),
                Some('\\') => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\\')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err("unterminated \" quote".into()),
                },
                Some(c) => out.push(c),
                None => return Err("unterminated \" quote".into()),
            }
        }
    }
    // Unquoted: a ` #` starts a comment, as in compose.
    let value = v.split(" #").next().unwrap_or(v);
    Ok(value.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_as_compose_reads_them() {
        let text = "# c\n\nA=1\nexport B = two words # note\nC='x # y'\nD=\"l1\\nl2\"\nE\nF=\n";
        let got = parse_env_text(text).unwrap();
        let want: Vec<EnvEntry> = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two words".into())),
            ("C".into(), Some("x # y".into())),
            ("D".into(), Some("l1\nl2".into())),
            ("E".into(), None),
            ("F".into(), Some(String::new())),
        ];
        assert_eq!(got, want);
        assert!(parse_env_text("A='open").unwrap_err().starts_with("1:"));
        assert!(
            parse_env_text("x\nbad key=1")
                .unwrap_err()
                .starts_with("2:")
        );
    }
}
