//! WWW-Authenticate challenges (RFC 7235, as registries send them):
//! `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
//! Several challenges may share one header value; keys are case-insensitive.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased: "bearer", "basic".
    pub scheme: String,
    /// Lowercased keys.
    pub params: BTreeMap<String, String>,
}

/// Parses one header value into its challenges; malformed parts end the
/// parse (what came before is kept), never panic.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    loop {
        skip(b, &mut i, |c| c == b' ' || c == b',' || c == b'\t');
        let scheme = token(b, &mut i);
        if scheme.is_empty() {
            return out;
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            let save = i;
            skip(b, &mut i, |c| c == b' ' || c == b'\t');
            let key = token(b, &mut i);
            skip(b, &mut i, |c| c == b' ' || c == b'\t');
            if key.is_empty() || b.get(i) != Some(&b'=') {
                i = save; // the next challenge's scheme, or the end
                break;
            }
            i += 1;
            skip(b, &mut i, |c| c == b' ' || c == b'\t');
            let value = if b.get(i) == Some(&b'"') {
                quoted(b, &mut i)
            } else {
                Some(token(b, &mut i))
            };
            let Some(value) = value else {
                out.push(ch);
                return out;
            };
            ch.params.insert(key.to_ascii_lowercase(), value);
            skip(b, &mut i, |c| c == b' ' || c == b'\t');
            if b.get(i) == Some(&b',') {
                i += 1;
            }
        }
        out.push(ch);
        if i >= b.len() {
            return out;
        }
    }
}

fn skip(b: &[u8], i: &mut usize, f: impl Fn(u8) -> bool) {
    while *i < b.len() && f(b[*i]) {
        *i += 1;
    }
}

/// An RFC 7230 token (also accepts the token68 characters '/', '+').
fn token(b: &[u8], i: &mut usize) -> String {
    let start = *i;
    skip(b, i, |c| {
        c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c)
    });
    String::from_utf8_lossy(&b[start..*i]).into_owned()
}

fn quoted(b: &[u8], i: &mut usize) -> Option<String> {
    *i += 1;
    let mut out = Vec::new();
    while *i < b.len() {
        match b[*i] {
            b'\\' if *i + 1 < b.len() => {
                out.push(b[*i + 1]);
                *i += 2;
            }
            b'"' => {
                *i += 1;
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            c => {
                out.push(c);
                *i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_scope_containing_a_port_and_commas() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["scope"], "repository:samalba/my-app:pull,push");
    }

    #[test]
    fn several_challenges_and_odd_spacing() {
        let c =
            parse_challenges(r#"Basic realm="r" , Bearer REALM="x\"y",error=insufficient_scope"#);
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["basic", "bearer"]
        );
        assert_eq!(c[1].params["realm"], "x\"y");
        assert_eq!(c[1].params["error"], "insufficient_scope");
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "=",
            "Bearer realm=\"",
            "Bearer ,,,",
            "\u{0}",
            "Bearer a=b=c",
            "Basic",
        ] {
            let _ = parse_challenges(s);
        }
        assert_eq!(parse_challenges("Basic")[0].scheme, "basic");
    }
}
