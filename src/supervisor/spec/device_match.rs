//! A `devices` entry's `match`: a device named by what the kernel says of
//! it instead of a path — subsystem, kernel name, and the USB vendor,
//! product and serial of the USB device it belongs to — the stable name
//! of a device where no udev makes /dev/serial/by-id links (berth as
//! PID 1). The model, its checks and the match itself; the properties are
//! read from uevents and sysfs by launch/hotplug.rs and
//! launch/device_match.rs.

use serde::{Deserialize, Serialize};

/// Every given key must equal the device's property (AND); at least one
/// key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceMatch {
    /// The kernel subsystem: "tty", "block", "video4linux", "usb", …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<String>,
    /// The node's kernel name beneath /dev ("ttyUSB0", "loop7").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// USB idVendor, 4 hex digits ("0403").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// USB idProduct, 4 hex digits ("6001").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The USB serial number string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// What is known of one device, for matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceProperties {
    pub subsystem: String,
    pub name: String,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

/// The USB string descriptor limit (126 UTF-16 units) with room for
/// UTF-8.
const MAX_SERIAL_BYTES: usize = 256;
const MAX_SUBSYSTEM_BYTES: usize = 64;
const MAX_NAME_BYTES: usize = 256;

impl DeviceMatch {
    /// True when every key given equals the device's property; USB ids
    /// compare without case ("0403" = "0403", "04B4" = "04b4").
    pub fn matches(&self, p: &DeviceProperties) -> bool {
        let same = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let same_hex = |want: &Option<String>, have: &Option<String>| {
            want.as_deref()
                .is_none_or(|w| have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(w)))
        };
        same(&self.subsystem, Some(&p.subsystem))
            && same(&self.name, Some(&p.name))
            && same_hex(&self.vendor, &p.vendor)
            && same_hex(&self.product, &p.product)
            && same(&self.serial, p.serial.as_deref())
    }

    /// Whether matching needs the USB ids (read from sysfs).
    pub fn wants_usb(&self) -> bool {
        self.vendor.is_some() || self.product.is_some() || self.serial.is_some()
    }

    /// Problems with each key: (key, why). Empty is valid.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if *self == DeviceMatch::default() {
            let why = "needs at least one of subsystem, name, vendor, product, serial".into();
            out.push(("", why));
        }
        if let Some(s) = &self.subsystem {
            let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            if s.is_empty() || s.len() > MAX_SUBSYSTEM_BYTES || !s.chars().all(ok) {
                let why = format!(
                    "expected a kernel subsystem name (letters, digits, _ and -, at most {MAX_SUBSYSTEM_BYTES} bytes)"
                );
                out.push(("subsystem", why));
            }
        }
        if let Some(n) = &self.name
            && (!crate::kernel::uevent::clean_devname(n) || n.len() > MAX_NAME_BYTES)
        {
            let why = "expected a node name beneath /dev without \"..\" (e.g. \"ttyUSB0\")";
            out.push(("name", why.into()));
        }
        for (key, id) in [("vendor", &self.vendor), ("product", &self.product)] {
            let hex4 = |s: &str| s.len() == 4 && s.chars().all(|c| c.is_ascii_hexdigit());
            if id.as_deref().is_some_and(|s| !hex4(s)) {
                out.push((key, "expected 4 hex digits (USB id, e.g. \"0403\")".into()));
            }
        }
        if let Some(s) = &self.serial
            && (s.is_empty() || s.len() > MAX_SERIAL_BYTES || s.chars().any(char::is_control))
        {
            let why = format!("expected 1 to {MAX_SERIAL_BYTES} bytes without control characters");
            out.push(("serial", why));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftdi() -> DeviceProperties {
        DeviceProperties {
            subsystem: "tty".into(),
            name: "ttyUSB0".into(),
            vendor: Some("0403".into()),
            product: Some("6001".into()),
            serial: Some("A10KXYZ".into()),
        }
    }

    fn with(f: impl FnOnce(&mut DeviceMatch)) -> DeviceMatch {
        let mut m = DeviceMatch::default();
        f(&mut m);
        m
    }

    #[test]
    fn every_key_given_must_agree() {
        let full = with(|m| {
            m.subsystem = Some("tty".into());
            m.vendor = Some("0403".into());
            m.product = Some("6001".into());
            m.serial = Some("A10KXYZ".into());
        });
        assert!(full.matches(&ftdi()));
        assert!(full.wants_usb());
        let other_serial = DeviceMatch {
            serial: Some("B2".into()),
            ..full.clone()
        };
        assert!(!other_serial.matches(&ftdi()));
        let mut usb_node = ftdi();
        usb_node.subsystem = "usb".into();
        assert!(!full.matches(&usb_node), "the USB device's own node");
        let upper = with(|m| m.vendor = Some("04B4".into()));
        let mut cypress = ftdi();
        cypress.vendor = Some("04b4".into());
        assert!(upper.matches(&cypress));
        let mut no_usb = ftdi();
        no_usb.vendor = None;
        assert!(!upper.matches(&no_usb), "no USB parent: no vendor to match");
        let by_name = with(|m| m.name = Some("ttyUSB0".into()));
        assert!(by_name.matches(&ftdi()) && !by_name.wants_usb());
    }

    fn errors(devices: &str) -> Vec<String> {
        let text = format!("{{\"image\": \"x\",\n \"devices\": {devices}}}");
        match crate::supervisor::spec::validate::parse_spec(std::path::Path::new("m.json"), &text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_match_is_checked_at_load_with_its_position() {
        let ok = r#"[{"match": {"subsystem": "tty", "vendor": "0403", "product": "6001",
            "serial": "A10K"}, "container_path": "/dev/modem", "optional": true}]"#;
        assert_eq!(errors(ok), Vec::<String>::new());
        let unknown = errors(
            r#"[{"match": {"vendor": "0403", "idVendor": "x"}, "container_path": "/dev/m"}]"#,
        );
        assert!(
            unknown.len() == 1
                && unknown[0].starts_with("m.json:2:")
                && unknown[0].contains("idVendor"),
            "{unknown:?}"
        );
        let bad = errors(r#"[{"match": {"vendor": "403"}, "container_path": "/dev/m"}]"#);
        assert!(bad.len() == 1 && bad[0].starts_with("m.json:2:"), "{bad:?}");
        assert!(
            bad[0].contains("devices.0.match.vendor") && bad[0].contains("4 hex digits"),
            "{bad:?}"
        );
        let both = errors(
            r#"[{"path": "/dev/ttyUSB0", "match": {"name": "ttyUSB0"}, "container_path": "/dev/m"}]"#,
        );
        assert!(
            both.iter()
                .any(|e| e.contains("give path or match, not both")),
            "{both:?}"
        );
        let empty = errors(r#"[{"match": {}, "container_path": "/dev/m"}]"#);
        assert!(
            empty.iter().any(|e| e.contains("at least one")),
            "{empty:?}"
        );
        let nowhere = errors(r#"[{"match": {"name": "ttyUSB0"}}]"#);
        assert!(
            nowhere.iter().any(|e| e.contains("container_path")),
            "{nowhere:?}"
        );
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(DeviceMatch::default().problems().len(), 1);
        let bad = DeviceMatch {
            subsystem: Some("../tty".into()),
            name: Some("../../etc/shadow".into()),
            vendor: Some("403".into()),
            product: Some("60011".into()),
            serial: Some("a\nb".into()),
        };
        let keys: Vec<&str> = bad.problems().iter().map(|p| p.0).collect();
        assert_eq!(keys, ["subsystem", "name", "vendor", "product", "serial"]);
        let long = with(|m| m.serial = Some("x".repeat(MAX_SERIAL_BYTES + 1)));
        assert_eq!(long.problems().len(), 1);
        assert!(
            with(|m| m.vendor = Some("0403".into()))
                .problems()
                .is_empty()
        );
    }
}
