//! berth.json's `pull`, `store`, `watchdog`, `logging` and `journal`
//! sections: how pulls use a slow or metered link, the free space the
//! image store keeps, the hardware watchdog, and how much berth writes to
//! flash (docs/config.md).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::supervisor::spec::bounds::JOURNAL_SYNC_INTERVAL;
use crate::supervisor::spec::logging::LogDriver;

use crate::supervisor::spec::hardening::ByteSize;

/// Free space the store keeps, and whether a pull may prune to find it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Bytes left free on the store's filesystem (default 64 MiB).
    #[serde(default)]
    pub reserve: Option<ByteSize>,
    /// Before refusing a pull for want of space, remove what nothing uses.
    #[serde(default)]
    pub auto_prune: bool,
}

impl StoreSettings {
    pub fn reserve_bytes(&self) -> u64 {
        self.reserve
            .map_or(crate::image::space::DEFAULT_RESERVE_BYTES, |r| r.0)
    }
}

/// Pulls over a slow or metered link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullSettings {
    /// A cap on the download rate, all layers together, in bytes per
    /// second ("1m" is 1 MiB/s).
    #[serde(default)]
    pub max_rate: Option<ByteSize>,
    /// Layers downloaded at once (default 3; 1 on a metered link).
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// How long the daemon keeps retrying a container's missing image
    /// after transient failures; unset: until it comes ("0s": fail at once).
    #[serde(default)]
    pub give_up_after: Option<crate::supervisor::spec::service::Seconds>,
}

/// A hardware watchdog berth pets while its loop turns (docs/pid1.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogSettings {
    #[serde(default = "default_watchdog_device")]
    pub device: std::path::PathBuf,
    /// Seconds without a sign of life before the machine resets.
    #[serde(default = "default_watchdog_timeout")]
    pub timeout: crate::supervisor::spec::service::Seconds,
}

fn default_watchdog_device() -> std::path::PathBuf {
    "/dev/watchdog".into()
}

fn default_watchdog_timeout() -> crate::supervisor::spec::service::Seconds {
    crate::supervisor::spec::service::Seconds(std::time::Duration::from_secs(30))
}

/// Container logs, machine-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    /// The driver of a spec that names none (default "json-file").
    #[serde(default)]
    pub default_driver: Option<LogDriver>,
}

/// The event journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSettings {
    #[serde(default)]
    pub sync: JournalSync,
}

/// When the journal is made durable (fdatasync).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JournalSync {
    /// After every loop turn that appended events (berth's behaviour
    /// before the setting existed).
    #[default]
    Always,
    /// At most once per interval; events of the last interval can be lost
    /// to a power cut.
    Interval(Duration),
    /// Never: the kernel writes the journal back when it likes.
    Never,
}

impl JournalSync {
    /// "always", "never" or "interval:DURATION" ("interval:5s", "interval:
    /// 500ms"); the interval bounded by `JOURNAL_SYNC_INTERVAL`.
    pub fn parse(text: &str) -> Result<JournalSync, String> {
        const EXPECTED: &str =
            "expected \"always\", \"never\" or \"interval:DURATION\" (e.g. \"interval:5s\")";
        match text {
            "always" => return Ok(JournalSync::Always),
            "never" => return Ok(JournalSync::Never),
            _ => {}
        }
        let Some(d) = text.strip_prefix("interval:") else {
            return Err(format!("{EXPECTED}, got {text:?}"));
        };
        let d =
            humantime::parse_duration(d.trim()).map_err(|e| format!("{EXPECTED}: {d:?}: {e}"))?;
        JOURNAL_SYNC_INTERVAL.check(d)?;
        Ok(JournalSync::Interval(d))
    }
}

impl std::fmt::Display for JournalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalSync::Always => f.write_str("always"),
            JournalSync::Never => f.write_str("never"),
            JournalSync::Interval(d) => write!(f, "interval:{}", humantime::format_duration(*d)),
        }
    }
}

impl Serialize for JournalSync {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JournalSync {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JournalSync::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_sync_values() {
        assert_eq!(JournalSync::parse("always"), Ok(JournalSync::Always));
        assert_eq!(JournalSync::parse("never"), Ok(JournalSync::Never));
        assert_eq!(
            JournalSync::parse("interval:5s"),
            Ok(JournalSync::Interval(Duration::from_secs(5)))
        );
        assert_eq!(
            JournalSync::Interval(Duration::from_secs(5)).to_string(),
            "interval:5s"
        );
        let file = std::path::Path::new("berth.json");
        let parse = crate::supervisor::spec::settings::parse_settings;
        let s = parse(
            file,
            r#"{"journal": {"sync": "interval:250ms"}, "logging": {"default_driver": "memory"}}"#,
        )
        .unwrap();
        assert_eq!(
            s.journal.sync,
            JournalSync::Interval(Duration::from_millis(250))
        );
        assert_eq!(s.logging.default_driver, Some(LogDriver::Memory));
        let e = parse(file, r#"{"journal": {"sync": "often"}}"#).unwrap_err()[0].to_string();
        assert!(e.contains("journal.sync: expected \"always\""), "{e}");
        let e =
            parse(file, r#"{"logging": {"default_driver": "syslog"}}"#).unwrap_err()[0].to_string();
        assert!(e.contains("logging.default_driver"), "{e}");
        for bad in [
            "sometimes",
            "interval:",
            "interval:5",
            "interval:1ms",
            "interval:2h",
            "",
        ] {
            assert!(JournalSync::parse(bad).is_err(), "{bad}");
        }
    }
}
