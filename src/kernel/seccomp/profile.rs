//! Docker's seccomp profile JSON (moby/profiles `seccomp/seccomp.go`): the
//! parsed types and the parser. Errors name the line, column and field.
//! Nothing here knows syscall numbers or BPF; that is `compile.rs`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny};

/// The errno of an ERRNO action that names none: runtime-spec's default
/// `defaultErrnoRet`, and what runc uses.
const EPERM: u32 = 1;
/// The kernel clamps SECCOMP_RET_ERRNO data to MAX_ERRNO
/// (include/linux/err.h), so larger values would silently change meaning.
const MAX_ERRNO: u64 = 4095;
/// `struct seccomp_data` carries six syscall arguments.
const MAX_ARG_INDEX: u64 = 5;

/// What the kernel does with a matched syscall; errno and trace data are
/// already resolved against the profile's `defaultErrnoRet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Errno(u32),
    /// `SCMP_ACT_KILL` and `SCMP_ACT_KILL_THREAD` (libseccomp's KILL is
    /// the thread-killing one).
    KillThread,
    KillProcess,
    Trap,
    Log,
    Trace(u32),
}

/// Argument comparison; `MaskedEq` takes the mask from `value` and the
/// expected result from `value_two`, as libseccomp's SCMP_CMP_MASKED_EQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One `args[]` entry; compared as a 64-bit value, like libseccomp.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCondition {
    #[serde(deserialize_with = "arg_index")]
    pub index: u8,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: CmpOp,
}

/// An `includes` or `excludes` block. Empty fields impose nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleFilter {
    /// Capability names as written ("CAP_SYS_ADMIN").
    #[serde(default, deserialize_with = "null_as_default")]
    pub caps: Vec<String>,
    /// Go architecture names ("amd64", "arm64", "s390x", ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub arches: Vec<String>,
    /// "<kernel>.<major>", e.g. "4.8" is (4, 8).
    #[serde(default, deserialize_with = "min_kernel")]
    pub min_kernel: Option<(u32, u32)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    /// ANDed together; several rules for one syscall are ORed.
    pub args: Vec<ArgCondition>,
    pub includes: RuleFilter,
    pub excludes: RuleFilter,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchMapEntry {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<String>,
}

/// A parsed profile. `architectures`/`arch_map` are kept for reference
/// only: berth filters the target's native ABI (see `compile.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub default_action: Action,
    pub architectures: Vec<String>,
    pub arch_map: Vec<ArchMapEntry>,
    pub rules: Vec<Rule>,
}

/// A profile that is not valid JSON or not a valid profile, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub line: usize,
    pub column: usize,
    /// The field, e.g. "syscalls[3].action"; empty for the whole profile.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProfileError {}

/// Parses a Docker-format seccomp profile.
pub fn parse_profile(text: &str) -> Result<Profile, ProfileError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: Result<ParsedProfile, _> = serde_path_to_error::deserialize(&mut de);
    let parsed = parsed.map_err(|e| {
        let path = e.path().to_string();
        json_error(if path == "." { String::new() } else { path }, e.inner())
    })?;
    // Trailing garbage after the object is an error, as in Go's decoder.
    de.end().map_err(|e| json_error(String::new(), &e))?;
    Ok(parsed.0)
}

fn json_error(path: String, e: &serde_json::Error) -> ProfileError {
    let text = e.to_string();
    // serde_json appends the position to its message; it is shown first.
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    ProfileError {
        line: e.line(),
        column: e.column(),
        path,
        message,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProfile {
    default_action: ActionName,
    #[serde(default, deserialize_with = "errno_ret")]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    arch_map: Vec<ArchMapEntry>,
    #[serde(default, deserialize_with = "null_as_default")]
    syscalls: Vec<ParsedRule>,
    // Accepted and ignored. The listener only serves SCMP_ACT_NOTIFY, which
    // is refused; filter flags (LOG, SPEC_ALLOW, TSYNC) only ever loosen or
    // widen a filter, so leaving them out keeps it at least as strict.
    #[serde(default, rename = "listenerPath")]
    _listener_path: Option<IgnoredAny>,
    #[serde(default, rename = "listenerMetadata")]
    _listener_metadata: Option<IgnoredAny>,
    #[serde(default, rename = "flags")]
    _flags: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRule {
    #[serde(default, deserialize_with = "null_as_default")]
    names: Vec<String>,
    /// The pre-`names` spelling, still accepted by Docker.
    #[serde(default)]
    name: Option<String>,
    action: ActionName,
    #[serde(default, deserialize_with = "errno_ret")]
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    args: Vec<ArgCondition>,
    #[serde(default, deserialize_with = "null_as_default")]
    includes: RuleFilter,
    #[serde(default, deserialize_with = "null_as_default")]
    excludes: RuleFilter,
    #[serde(default)]
    comment: Option<String>,
}

/// The action as written; errno resolution needs the whole profile.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ActionName {
    Allow,
    Errno,
    KillThread,
    KillProcess,
    Trap,
    Log,
    Trace,
}

impl ActionName {
    fn resolve(self, errno: Option<u32>, default_errno: Option<u32>) -> Action {
        let errno = errno.or(default_errno).unwrap_or(EPERM);
        match self {
            Self::Allow => Action::Allow,
            Self::Errno => Action::Errno(errno),
            Self::KillThread => Action::KillThread,
            Self::KillProcess => Action::KillProcess,
            Self::Trap => Action::Trap,
            Self::Log => Action::Log,
            Self::Trace => Action::Trace(errno),
        }
    }
}

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "SCMP_ACT_ALLOW" => Self::Allow,
            "SCMP_ACT_ERRNO" => Self::Errno,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Self::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Self::KillProcess,
            "SCMP_ACT_TRAP" => Self::Trap,
            "SCMP_ACT_LOG" => Self::Log,
            "SCMP_ACT_TRACE" => Self::Trace,
            // Needs a listener process berth does not run; refusing beats
            // a filter that blocks forever on a missing listener.
            "SCMP_ACT_NOTIFY" => {
                return Err(de::Error::custom("unsupported action \"SCMP_ACT_NOTIFY\""));
            }
            _ => return Err(de::Error::custom(format!("unknown action {s:?}"))),
        })
    }
}

impl<'de> Deserialize<'de> for CmpOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "SCMP_CMP_NE" => Self::Ne,
            "SCMP_CMP_LT" => Self::Lt,
            "SCMP_CMP_LE" => Self::Le,
            "SCMP_CMP_EQ" => Self::Eq,
            "SCMP_CMP_GE" => Self::Ge,
            "SCMP_CMP_GT" => Self::Gt,
            "SCMP_CMP_MASKED_EQ" => Self::MaskedEq,
            _ => return Err(de::Error::custom(format!("unknown op {s:?}"))),
        })
    }
}

/// A rule with its own checks done: `name` merged into `names`, and
/// errnoRet only where it means something. Its errno is resolved later,
/// against the profile's defaultErrnoRet.
#[derive(Deserialize)]
#[serde(try_from = "RawRule")]
struct ParsedRule(RawRule);

impl TryFrom<RawRule> for ParsedRule {
    type Error = &'static str;

    fn try_from(mut raw: RawRule) -> Result<Self, &'static str> {
        match raw.name.take().filter(|n| !n.is_empty()) {
            Some(_) if !raw.names.is_empty() => {
                return Err("both name and names are given; use names");
            }
            Some(name) => raw.names.push(name),
            None => {}
        }
        if raw.errno_ret.is_some() && !matches!(raw.action, ActionName::Errno | ActionName::Trace) {
            return Err("errnoRet needs action SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
        }
        Ok(Self(raw))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "RawProfile")]
struct ParsedProfile(Profile);

impl TryFrom<RawProfile> for ParsedProfile {
    type Error = &'static str;

    fn try_from(raw: RawProfile) -> Result<Self, &'static str> {
        // Docker refuses the combination too (seccomp_linux.go setupSeccomp).
        if !raw.architectures.is_empty() && !raw.arch_map.is_empty() {
            return Err("both architectures and archMap are given; use one");
        }
        let default_errno = raw.default_errno_ret;
        let rules = raw.syscalls.into_iter().map(|ParsedRule(r)| Rule {
            names: r.names,
            action: r.action.resolve(r.errno_ret, default_errno),
            args: r.args,
            includes: r.includes,
            excludes: r.excludes,
            comment: r.comment,
        });
        Ok(Self(Profile {
            default_action: raw.default_action.resolve(None, default_errno),
            architectures: raw.architectures,
            arch_map: raw.arch_map,
            rules: rules.collect(),
        }))
    }
}

/// Go writes absent lists and structs as `null`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn errno_ret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        None => Ok(None),
        Some(n) if n <= MAX_ERRNO => Ok(u32::try_from(n).ok()),
        Some(n) => Err(de::Error::custom(format!(
            "errno {n} out of range 0..={MAX_ERRNO}"
        ))),
    }
}

fn arg_index<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let n = u64::deserialize(d)?;
    match u8::try_from(n) {
        Ok(i) if n <= MAX_ARG_INDEX => Ok(i),
        _ => Err(de::Error::custom(format!(
            "argument index {n} out of range 0..={MAX_ARG_INDEX}"
        ))),
    }
}

/// "<kernel>.<major>" as moby's KernelVersion.UnmarshalJSON reads it; ""
/// means no minimum, and "0.0" is refused there too.
fn min_kernel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u32, u32)>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        de::Error::custom(format!(
            "invalid kernel version {s:?}, expected \"<kernel>.<major>\""
        ))
    };
    let (kernel, major) = s.split_once('.').ok_or_else(bad)?;
    let kernel: u32 = kernel.parse().map_err(|_| bad())?;
    let major: u32 = major.parse().map_err(|_| bad())?;
    if (kernel, major) == (0, 0) {
        return Err(bad());
    }
    Ok(Some((kernel, major)))
}

#[cfg(test)]
mod tests;
