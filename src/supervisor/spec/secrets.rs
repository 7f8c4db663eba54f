//! The `secrets` field: files from the config directory's `secrets/` that
//! a container sees as copies on a read-only tmpfs at /run/secrets, in
//! Docker's and Podman's shape (`"db_password"`, or `{"source", "target",
//! "uid", "gid", "mode"}`). Here the model and the checks that need no
//! file; the files are opened and judged at each start
//! (launch/secrets.rs), so a secret changed on the host takes effect at the
//! container's next start.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::supervisor::spec::Spec;
use crate::supervisor::spec::bounds::{FILE_NAME_BYTES, LIST_ENTRIES, TEXT_BYTES};
use crate::supervisor::spec::hardening::{IdMapSpec, UsernsSpec};
use crate::supervisor::spec::validate::Problem;
use crate::supervisor::spec::validate_bounds::BoundsCheck;
use crate::supervisor::spec::validate_mounts::parse_mode;

/// Where the secrets appear inside the container.
pub const SECRETS_DIR: &str = "/run/secrets";
/// Docker's and Podman's default: root's, readable by every user of the
/// container (an image whose entrypoint reads the secret as root and then
/// drops to another user keeps working). Narrow it with `mode`.
pub const DEFAULT_MODE: &str = "0444";
/// The subdirectory of the config directory the sources are read from.
pub const SOURCE_DIR: &str = "secrets";

/// One secret, defaults filled in (`inspect` shows this long form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretSpec {
    /// A file name in the config directory's secrets/.
    pub source: String,
    /// A file name in /run/secrets; defaults to `source`.
    pub target: String,
    /// Owner inside the container (mapped when there is a user namespace).
    pub uid: u32,
    pub gid: u32,
    /// Octal permissions, e.g. "0400".
    pub mode: String,
}

/// The long form as written; `target` defaults to `source`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongForm {
    source: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    #[serde(default = "default_mode")]
    mode: String,
}

fn default_mode() -> String {
    DEFAULT_MODE.into()
}

impl SecretSpec {
    fn named(source: &str) -> Self {
        SecretSpec {
            source: source.into(),
            target: source.into(),
            uid: 0,
            gid: 0,
            mode: default_mode(),
        }
    }

    /// The permissions, once validation has passed.
    pub fn mode_bits(&self) -> u32 {
        parse_mode(&self.mode).unwrap_or(0o444)
    }
}

impl<'de> Deserialize<'de> for SecretSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a secret's name, or {\"source\", \"target\", \"uid\", \"gid\", \"mode\"}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretSpec, E> {
                Ok(SecretSpec::named(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretSpec, A::Error> {
                let l = LongForm::deserialize(MapAccessDeserializer::new(map))?;
                Ok(SecretSpec {
                    target: l.target.unwrap_or_else(|| l.source.clone()),
                    source: l.source,
                    uid: l.uid,
                    gid: l.gid,
                    mode: l.mode,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret's source or target: one file name, no path, nothing hidden.
pub fn valid_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

const NAME_RULE: &str =
    "expected a file name: letters, digits, '_', '.' and '-', starting with a letter or digit";

/// The sizes: how many secrets, and each string's length.
pub fn check_secret_bounds(secrets: &[SecretSpec], c: &mut BoundsCheck<'_>) {
    if !c.count("secrets", &LIST_ENTRIES, secrets.len()) {
        return;
    }
    let mut list = c.at("secrets");
    for (i, s) in secrets.iter().enumerate() {
        let mut one = list.at(i);
        one.text("source", &FILE_NAME_BYTES, &s.source);
        one.text("target", &FILE_NAME_BYTES, &s.target);
        one.text("mode", &TEXT_BYTES, &s.mode);
    }
}

/// Names, modes, ids (mapped by explicit `userns` maps), one secret per
/// target, and no mount inside /run/secrets.
pub fn check_secrets(spec: &Spec) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut targets: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in spec.secrets.iter().enumerate() {
        let at = |field: &str| vec!["secrets".to_string(), i.to_string(), field.to_string()];
        if !valid_secret_name(&s.source) {
            out.push((at("source"), NAME_RULE.into()));
        }
        if !valid_secret_name(&s.target) {
            out.push((at("target"), NAME_RULE.into()));
        } else if let Some(first) = targets.insert(&s.target, i) {
            let why = format!(
                "{SECRETS_DIR}/{} is already secrets.{first}'s target",
                s.target
            );
            out.push((at("target"), why));
        }
        if parse_mode(&s.mode).is_none_or(|m| m > 0o777) {
            out.push((
                at("mode"),
                "expected octal permissions like \"0400\"".into(),
            ));
        }
        for (field, id, map) in [("uid", s.uid, 0), ("gid", s.gid, 1)] {
            if let Some(why) = unmapped(spec, id, map) {
                out.push((at(field), why));
            }
        }
    }
    if !spec.secrets.is_empty() {
        for (i, m) in spec.mounts.iter().enumerate() {
            if Path::new(m.target()).starts_with(SECRETS_DIR) {
                let why = format!("is inside {SECRETS_DIR}, where `secrets` are mounted");
                out.push((vec!["mounts".into(), i.to_string(), "target".into()], why));
            }
        }
    }
    out
}

/// Why `id` cannot own a file in the container: (uid_t)-1 is no id, and
/// explicit `userns` maps must map it ("auto" maps 0-65535; checked at
/// start). `map` 0 is the uid map, 1 the gid map.
fn unmapped(spec: &Spec, id: u32, map: usize) -> Option<String> {
    if id == u32::MAX {
        return Some(format!("{id} is (uid_t)-1, which names no one"));
    }
    let Some(UsernsSpec::Maps { uid_map, gid_map }) = &spec.userns else {
        return None;
    };
    let (ranges, name): (&[IdMapSpec], &str) = if map == 0 {
        (uid_map, "userns.uid_map")
    } else {
        (gid_map, "userns.gid_map")
    };
    let mapped = ranges.iter().any(|r| {
        id.checked_sub(r.container_id)
            .is_some_and(|offset| offset < r.size)
    });
    (!mapped).then(|| format!("{id} is not mapped by {name}"))
}

#[cfg(test)]
mod tests {
    use crate::supervisor::spec::validate::parse_spec;
    use std::path::Path;

    fn errors(secrets: &str, extra: &str) -> Vec<String> {
        let text = format!("{{\"image\": \"x\", \"secrets\": {secrets}{extra}}}");
        match parse_spec(Path::new("s.json"), &text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn short_and_long_forms_fill_in_docker_defaults() {
        let text = r#"{"image": "x", "secrets": ["db_password",
            {"source": "tls.key", "target": "server.key", "uid": 1000, "gid": 1000, "mode": "0400"}]}"#;
        let spec = parse_spec(Path::new("s.json"), text).unwrap();
        let s = &spec.secrets;
        assert_eq!(
            (s[0].target.as_str(), s[0].uid, s[0].mode.as_str()),
            ("db_password", 0, "0444")
        );
        assert_eq!(
            (s[1].target.as_str(), s[1].gid, s[1].mode_bits()),
            ("server.key", 1000, 0o400)
        );
        // What inspect shows parses back to the same thing.
        let again: super::SecretSpec =
            serde_json::from_value(serde_json::to_value(&s[1]).unwrap()).unwrap();
        assert_eq!(again, s[1]);
    }

    #[test]
    fn traversal_and_hidden_names_are_refused_at_their_field() {
        for bad in [
            "\"../etc/shadow\"",
            "\"..\"",
            "\".\"",
            "\"a/b\"",
            "\"\"",
            "\".hidden\"",
            "\"a\\u0000b\"",
        ] {
            let e = errors(&format!("[{bad}]"), "");
            assert!(
                e.iter()
                    .any(|e| e.contains("secrets.0.source: expected a file name")),
                "{bad}: {e:?}"
            );
        }
        let e = errors(r#"[{"source": "ok", "target": "../../x"}]"#, "");
        assert!(
            e[0].contains("secrets.0.target: expected a file name"),
            "{e:?}"
        );
        let long = format!("[\"{}\"]", "a".repeat(256));
        let e = errors(&long, "");
        assert!(
            e[0].contains("secrets.0.source: too long: expected 0 to 255 bytes"),
            "{e:?}"
        );
    }

    #[test]
    fn modes_ids_duplicates_and_mounts_are_checked() {
        let e = errors(
            r#"[{"source": "a", "mode": "4755"}, {"source": "b", "mode": "rw"}]"#,
            "",
        );
        assert!(
            e[0].contains("secrets.0.mode: expected octal") && e[1].contains("secrets.1.mode"),
            "{e:?}"
        );
        let e = errors(r#"["a", {"source": "b", "target": "a"}]"#, "");
        assert!(
            e[0].contains("secrets.1.target: /run/secrets/a is already secrets.0's target"),
            "{e:?}"
        );
        let e = errors(r#"[{"source": "a", "uid": 4294967295}]"#, "");
        assert!(
            e[0].contains("secrets.0.uid: 4294967295 is (uid_t)-1"),
            "{e:?}"
        );
        let maps = r#", "userns": {"uid_map": [{"container_id": 0, "host_id": 100000, "size": 1000}],
            "gid_map": [{"container_id": 0, "host_id": 100000, "size": 65536}]}"#;
        let e = errors(r#"[{"source": "a", "uid": 1000, "gid": 1000}]"#, maps);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("secrets.0.uid: 1000 is not mapped by userns.uid_map"),
            "{e:?}"
        );
        let mounts = r#", "mounts": [{"type": "tmpfs", "target": "/run/secrets/x"}, {"type": "tmpfs", "target": "/run"}]"#;
        let e = errors(r#"["a"]"#, mounts);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("mounts.0.target: is inside /run/secrets"),
            "{e:?}"
        );
        let e = errors(r#"[{"source": "a", "owner": 1}]"#, "");
        assert!(
            e[0].contains("secrets.0.owner: unknown field `owner`"),
            "{e:?}"
        );
        let e = errors("[5]", "");
        assert!(
            e[0].contains("secrets.0: invalid type: integer `5`, expected a secret's name"),
            "{e:?}"
        );
    }
}
