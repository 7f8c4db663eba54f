//! Finds where a field sits in a spec file, so that a semantic error (found
//! after parsing) still points at file:line:col like a syntax error does.

/// Line and column (1-based) of the key at `path` (e.g. ["restart",
/// "max_retries"]) in the JSON `text`, or of the array element when a path
/// step is a number. `None` when the text does not contain it.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut found_at = None;
    for step in path {
        skip_ws(bytes, &mut pos);
        match bytes.get(pos)? {
            b'{' => {
                pos = find_key(bytes, pos, step)?;
                found_at = Some(pos);
                pos = after_colon(bytes, pos)?;
            }
            b'[' => {
                let index: usize = step.parse().ok()?;
                pos = find_element(bytes, pos, index)?;
                found_at = Some(pos);
            }
            _ => return None,
        }
    }
    found_at.map(|p| line_col(text, p))
}

fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

fn skip_ws(b: &[u8], pos: &mut usize) {
    while *pos < b.len() && b[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
}

/// Skips one JSON value starting at `pos`; returns the index after it.
fn skip_value(b: &[u8], mut pos: usize) -> Option<usize> {
    skip_ws(b, &mut pos);
    match *b.get(pos)? {
        b'"' => skip_string(b, pos),
        open @ (b'{' | b'[') => {
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            while pos < b.len() {
                match b[pos] {
                    b'"' => {
                        pos = skip_string(b, pos)?;
                        continue;
                    }
                    c if c == open => depth += 1,
                    c if c == close => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(pos + 1);
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            None
        }
        _ => {
            while pos < b.len()
                && !matches!(b[pos], b',' | b'}' | b']')
                && !b[pos].is_ascii_whitespace()
            {
                pos += 1;
            }
            Some(pos)
        }
    }
}

fn skip_string(b: &[u8], mut pos: usize) -> Option<usize> {
    pos += 1;
    while pos < b.len() {
        match b[pos] {
            b'\\' => pos += 2,
            b'"' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
    None
}

fn after_colon(b: &[u8], key_pos: usize) -> Option<usize> {
    let mut pos = skip_string(b, key_pos)?;
    skip_ws(b, &mut pos);
    (b.get(pos) == Some(&b':')).then_some(pos + 1)
}

/// Position of the key `name` among the members of the object at `pos`.
fn find_key(b: &[u8], mut pos: usize, name: &str) -> Option<usize> {
    pos += 1;
    loop {
        skip_ws(b, &mut pos);
        if *b.get(pos)? != b'"' {
            return None;
        }
        let key_start = pos;
        let key_end = skip_string(b, pos)?;
        if &b[key_start + 1..key_end - 1] == name.as_bytes() {
            return Some(key_start);
        }
        pos = skip_value(b, after_colon(b, key_start)?)?;
        skip_ws(b, &mut pos);
        if *b.get(pos)? != b',' {
            return None;
        }
        pos += 1;
    }
}

fn find_element(b: &[u8], mut pos: usize, index: usize) -> Option<usize> {
    pos += 1;
    for _ in 0..index {
        pos = skip_value(b, pos)?;
        skip_ws(b, &mut pos);
        if *b.get(pos)? != b',' {
            return None;
        }
        pos += 1;
    }
    skip_ws(b, &mut pos);
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "{\n  \"image\": \"x\",\n  \"env\": {\"A\": \"{,}\"},\n  \"restart\": {\"policy\": \"no\",\n    \"max_retries\": 2},\n  \"command\": [\"a\", \"b\"]\n}";

    #[test]
    fn finds_nested_keys_and_elements() {
        assert_eq!(locate(SPEC, &["image"]), Some((2, 3)));
        assert_eq!(locate(SPEC, &["restart", "max_retries"]), Some((5, 5)));
        assert_eq!(locate(SPEC, &["command", "1"]), Some((6, 20)));
        assert_eq!(locate(SPEC, &["env", "A"]), Some((3, 11)));
    }

    #[test]
    fn missing_or_malformed_gives_none() {
        assert_eq!(locate(SPEC, &["nope"]), None);
        assert_eq!(locate(SPEC, &["command", "9"]), None);
        assert_eq!(locate("{\"a\": ", &["a", "b"]), None);
        assert_eq!(locate("", &["a"]), None);
    }
}
