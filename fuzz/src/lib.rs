//! What each fuzz target checks, one function per target, shared by the
//! targets in fuzz_targets/ (under libFuzzer) and by the main test suite
//! (tests/fuzz_replay.rs includes this file and replays every target's
//! seeds and saved regressions through the same functions, on stable Rust
//! without cargo-fuzz). A property that fails panics.

use std::path::Path;

use berth::image::digest::Digest;
use berth::image::oci::{ImageConfig, Index, Manifest, parse_json, validate_config};
use berth::image::unpack::{UnpackLimits, unpack_layer};
use berth::kernel::caps::DOCKER_DEFAULT;
use berth::kernel::seccomp::{CompileContext, TargetArch, compile, parse_profile};
use berth::supervisor::events::journal::{Journal, JournalLimits, read_range};

/// A target's check: panics when the input breaks a property.
pub type Check = fn(&[u8]);

/// Every target: its name (as in Cargo.toml and fuzz_targets/) and check.
pub const TARGETS: &[(&str, Check)] = &[
    ("spec_parse", spec_parse),
    ("rpc_request", rpc_request),
    ("image_reference", image_reference),
    ("layer_unpack", layer_unpack),
    ("www_authenticate", www_authenticate),
    ("manifest_parse", manifest_parse),
    ("seccomp_profile", seccomp_profile),
    ("journal_read", journal_read),
    ("device_rule", device_rule),
    ("uevent_parse", uevent_parse),
    ("cdi_spec", cdi_spec),
    ("settings_parse", settings_parse),
    ("config_tarball", config_tarball),
    ("compose_convert", compose_convert),
    ("relay_message", relay_message),
    ("dhcp_packet", dhcp_packet),
    ("sntp_packet", sntp_packet),
    ("modules_dep", modules_dep),
    ("first_boot_source", first_boot_source),
    ("gpt_table", gpt_table),
];

/// Container spec files: any bytes must give a spec or file:line:col
/// errors, never a panic, and the position must lie inside the text.
pub fn spec_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = berth::supervisor::spec::validate::parse_spec(Path::new("fuzz.json"), text)
    {
        assert!(!errors.is_empty());
        let lines = text.lines().count().max(1) + 1;
        for e in errors {
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} outside the text",
                e.line
            );
        }
    }
}

/// berth.json: any bytes must give settings or file:line:col errors,
/// never a panic (`journal.sync` and `logging.default_driver` included).
pub fn settings_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) =
        berth::supervisor::spec::settings::parse_settings(Path::new("berth.json"), text)
    {
        assert!(!errors.is_empty());
        let lines = text.lines().count().max(1) + 1;
        for e in errors {
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} outside the text",
                e.line
            );
        }
    }
}

/// JSON-RPC request lines from the control socket.
pub fn rpc_request(data: &[u8]) {
    match berth::api::protocol::parse_request(data) {
        Ok(req) => assert!(req.params.is_object() || req.params.is_array() || req.params.is_null()),
        Err((_, err)) => assert!(err.code <= -32000),
    }
}

/// Relay lines a remote client sends `berth system dial-stdio`: any bytes
/// give a message or None, never a panic; a message prints back to itself.
pub fn relay_message(data: &[u8]) {
    use berth::api::relay::{
        FromClient, input_closed_line, input_line, parse_client_line, window_line,
    };
    let Some(m) = parse_client_line(data) else {
        return;
    };
    let line = match &m {
        FromClient::Input(d) => input_line(d),
        FromClient::InputClosed => input_closed_line(),
        FromClient::Window { rows, cols } => window_line(*rows, *cols),
    };
    assert_eq!(parse_client_line(&line[..line.len() - 1]), Some(m));
}

/// Image references: parse, print, parse again gives the same reference.
pub fn image_reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = berth::fetch::reference::Reference::parse(text) {
        let again = berth::fetch::reference::Reference::parse(&r.to_string())
            .expect("printed reference parses");
        assert_eq!(r, again);
    }
}

/// The layer unpacker on arbitrary bytes (tar, gzip or zstd): it may
/// refuse, never panic, and never create anything outside its target.
pub fn layer_unpack(data: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = dir.path().join("blob");
    let target = dir.path().join("layer");
    std::fs::write(&blob, data).expect("write blob");
    std::fs::create_dir(&target).expect("target");
    let limits = UnpackLimits {
        max_bytes: 64 << 20,
        max_ratio: 100,
        ratio_floor_bytes: 1 << 20,
        max_entries: 10_000,
        reserve_bytes: 0,
    };
    let _ = unpack_layer(&blob, &target, &Digest::of_bytes(data), "fuzz", limits);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["blob", "layer"],
        "something was written beside the layer"
    );
    assert!(target.is_dir());
}

/// A config tarball for `berth apply` (tar or gzip): it may refuse, never
/// panic, never create anything outside its target, and what it creates
/// is only files and directories.
pub fn config_tarball(data: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("config");
    std::fs::create_dir(&target).expect("target");
    let _ = berth::supervisor::config_store::stage::unpack(data, &target);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(names, ["config"], "something was written beside the config");
    only_files_and_dirs(&target);
}

fn only_files_and_dirs(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).expect("read a directory") {
        let e = e.expect("an entry");
        let t = std::fs::symlink_metadata(e.path())
            .expect("stat")
            .file_type();
        assert!(
            t.is_file() || t.is_dir(),
            "{} is neither",
            e.path().display()
        );
        if t.is_dir() {
            only_files_and_dirs(&e.path());
        }
    }
}

/// WWW-Authenticate headers from a registry: any bytes parse to some
/// challenges (maybe none) without panicking; schemes come out lowercased.
pub fn www_authenticate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for c in berth::fetch::challenge::parse_challenges(text) {
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        assert!(c.params.keys().all(|k| *k == k.to_ascii_lowercase()));
    }
}

/// Manifests, indexes and configs as a registry or layout sends them:
/// parsing and validation refuse bad documents without panicking.
pub fn manifest_parse(data: &[u8]) {
    if let Ok(m) = parse_json::<Manifest>(data, "fuzz manifest") {
        let _ = serde_json::to_vec(&m).expect("a parsed manifest serialises");
    }
    let _ = parse_json::<Index>(data, "fuzz index");
    if let Ok(c) = parse_json::<ImageConfig>(data, "fuzz config") {
        let _ = validate_config(&c, "fuzz config", c.rootfs.diff_ids.len());
    }
}

/// Seccomp profiles: any bytes must parse to a profile or give a
/// positioned error, and any profile must compile for x86_64 and aarch64
/// with Docker's default capabilities, or fail with an error; never panic.
pub fn seccomp_profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let profile = match parse_profile(text) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.line >= 1, "error without a position: {e}");
            return;
        }
    };
    for arch in [TargetArch::x86_64, TargetArch::aarch64] {
        let ctx = CompileContext {
            arch,
            capabilities: &DOCKER_DEFAULT,
            kernel: (6, 1),
        };
        if let Ok(filters) = compile(&profile, &ctx) {
            assert!(
                filters
                    .programs
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 4096)
            );
        }
    }
}

/// The event journal's readers on arbitrary segment bytes (a crash, bit
/// rot, a stranger's file): `read_range` and the writer's recovery may
/// report problems, never panic, and what they return is in seq order.
pub fn journal_read(data: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first byte splits the input into two segments, so the checks
    // between segments (seq ranges, unterminated lines) are reached too.
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) * data.len() / 256);
    let (older, live) = data.split_at(split);
    std::fs::write(dir.path().join("00000000000000000001.jsonl"), older).expect("write");
    std::fs::write(dir.path().join("00000000000000000003.jsonl"), live).expect("write");
    for after in [0, 1, 2, 5] {
        let batch = read_range(dir.path(), after, 4).expect("read");
        assert!(batch.events.len() <= 4);
        assert!(batch.events.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(batch.events.iter().all(|e| e.seq > after));
    }
    let mut journal = Journal::open(dir.path(), JournalLimits::default()).expect("open");
    let before = journal.last_seq();
    // A segment may claim seq u64::MAX: then there is no seq left, and
    // append says so instead of wrapping around.
    let Ok(event) = journal.append("fuzz", None, serde_json::Value::Null) else {
        assert_eq!(before, u64::MAX);
        return;
    };
    assert_eq!(event.seq, before + 1);
    let batch = read_range(dir.path(), before, 10).expect("read again");
    assert_eq!(batch.events.last().map(|e| e.seq), Some(event.seq));
}

/// Device cgroup rules (`"c 188:* rwm"`) and device entries
/// (`"HOST[:CONTAINER[:PERMISSIONS]]"`), Docker's short forms: any text
/// parses or is refused with a short message, never a panic; a rule
/// prints back to text that parses to the same rule, in the kernel's
/// bounds; an entry's parts are pieces of the text.
pub fn device_rule(data: &[u8]) {
    use berth::supervisor::spec::device_rules::parse_device_rule;
    use berth::supervisor::spec::devices::DeviceSpec;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_device_rule(text) {
        Ok(rule) => {
            let printed = rule.to_string();
            let again = parse_device_rule(&printed).expect("a printed rule parses");
            assert_eq!(again, rule, "{printed:?}");
            assert!(rule.major.is_none_or(|m| m < 1 << 12));
            assert!(rule.minor.is_none_or(|m| m < 1 << 20));
            assert!(!rule.access.is_empty());
        }
        Err(e) => assert!(
            e.len() < 512,
            "an error echoes the input: {} bytes",
            e.len()
        ),
    }
    match DeviceSpec::parse_short(text) {
        Ok(d) => {
            assert!(text.starts_with(d.path.as_str()));
            assert!(text.contains(d.container_path.as_str()));
            assert!(d.short && !d.optional);
        }
        Err(e) => assert!(e.len() < 512),
    }
}

/// A kernel uevent message (NUL-separated KEY=VALUE after "ACTION@DEVPATH"):
/// any bytes parse or are dropped, never a panic; what parses is bounded
/// and names nothing outside /sys and /dev.
pub fn uevent_parse(data: &[u8]) {
    use berth::kernel::uevent::{MAX_UEVENT_BYTES, clean_devname, parse_uevent};
    let Some(e) = parse_uevent(data) else {
        return;
    };
    assert!(data.len() <= MAX_UEVENT_BYTES);
    assert!(e.devpath.starts_with('/') && !e.devpath.split('/').any(|c| c == ".."));
    assert!(e.devname.as_deref().is_none_or(clean_devname));
    assert!(e.devname.as_deref().is_none_or(|n| !n.starts_with('/')));
    if let Some((major, minor)) = e.numbers {
        assert!(major < 1 << 12 && minor < 1 << 20);
    }
    assert!(!e.subsystem.contains('/'));
}

/// CDI spec files (host data, but a driver's generator may be wrong):
/// decoded as JSON and as YAML, bounded, and an accepted spec's devices
/// resolve (`KIND=all`) to edits with absolute, clean paths only.
pub fn cdi_spec(data: &[u8]) {
    use berth::supervisor::plugins::cdi::parse::parse_spec;
    // YAML ends a line at \n, \r\n or a lone \r.
    let lone_cr = data
        .windows(2)
        .filter(|w| w[0] == b'\r' && w[1] != b'\n')
        .count();
    let breaks = data.iter().filter(|b| **b == b'\n').count() + lone_cr;
    let lines = breaks as u64 + 2;
    for yaml in [false, true] {
        match parse_spec(data, yaml) {
            Ok(spec) => check_cdi_resolution(spec),
            Err(e) => {
                if let Some((line, _)) = e.at {
                    assert!(line >= 1 && line <= lines, "line {line} outside the text");
                }
                assert!(e.message.len() < 8192, "{} bytes of error", e.message.len());
            }
        }
    }
}

/// docker-compose files (`berth convert`): any bytes give specs and a
/// list of unmapped keys, or one error whose line lies inside the text;
/// never a panic or an unbounded expansion. Each spec is an object with an
/// image that berth's own spec parser reads without panicking.
pub fn compose_convert(data: &[u8]) {
    use berth::cli::convert::compose::convert_text;
    use berth::cli::convert::interpolate::Vars;
    use berth::cli::convert::issues::MAX_ISSUES;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("TAG".to_string(), "1.0".to_string());
    vars.insert("EMPTY".to_string(), String::new());
    let lines = text.split(['\n', '\r']).count() as u64 + 1;
    match convert_text(text, None, &Vars(vars)) {
        Err(e) => {
            assert!(e.message.len() < 8192, "{} bytes of error", e.message.len());
            if let Some((line, _)) = e.at {
                assert!(line >= 1 && line <= lines, "line {line} outside the text");
            }
        }
        Ok(conversion) => {
            assert!(conversion.issues.list.len() <= MAX_ISSUES);
            for (name, spec) in &conversion.specs {
                assert!(spec["image"].is_string(), "{name}: {spec}");
                let json = spec.to_string();
                assert!(json.len() < 64 << 20, "{name}: {} bytes", json.len());
                let _ =
                    berth::supervisor::spec::validate::parse_spec(Path::new("fuzz.json"), &json);
            }
        }
    }
}

fn check_cdi_resolution(spec: berth::supervisor::plugins::cdi::model::CdiSpec) {
    use berth::supervisor::plugins::cdi::registry::{LoadedCdiSpec, resolve};
    let clean = |p: &str| p.starts_with('/') && !p.split('/').any(|c| c == "..");
    let all = format!("{}=all", spec.kind);
    let loaded = [LoadedCdiSpec {
        path: "fuzz.json".into(),
        priority: 0,
        spec,
    }];
    let Ok(edits) = resolve(&loaded, &[all.as_str()], &[]) else {
        return;
    };
    for n in &edits.nodes {
        assert!(clean(&n.container_path) && clean(&n.host_path), "{n:?}");
    }
    for m in &edits.mounts {
        assert!(clean(&m.source) && clean(&m.target), "{m:?}");
    }
    assert!(
        edits
            .env
            .iter()
            .all(|kv| kv.split_once('=').is_some_and(|(k, _)| !k.is_empty()))
    );
}

/// A DHCPv4 server's answer: any bytes parse or are dropped, never a
/// panic; what parses has capped lists, a sane prefix, a clean domain and
/// lease times in bounds and in order.
pub fn dhcp_packet(data: &[u8]) {
    use berth::supervisor::hostnet::dhcp_packet::{
        MAX_LEASE, MAX_SERVERS, MIN_LEASE, parse_any_reply,
    };
    let Some((r, _mac)) = parse_any_reply(data) else {
        return;
    };
    assert!(data.len() >= 240);
    assert!(r.dns.len() <= MAX_SERVERS && r.ntp.len() <= MAX_SERVERS);
    assert!(r.prefix.is_none_or(|p| (1..=32).contains(&p)));
    assert!(
        r.domain
            .as_deref()
            .is_none_or(berth::supervisor::spec::host_network::valid_domain)
    );
    if let Some(l) = r.lease {
        assert!(l.total >= MIN_LEASE && l.total <= MAX_LEASE);
        assert!(!l.renew.is_zero() && l.renew <= l.rebind && l.rebind <= l.total);
    }
}

/// An SNTP answer after 8 bytes of local send time: never a panic; an
/// accepted answer has a round trip of 0 to 16 s and a bounded offset.
pub fn sntp_packet(data: &[u8]) {
    use berth::supervisor::hostnet::sntp_packet::{parse_answer, to_ntp};
    let Some((head, packet)) = data.split_first_chunk::<8>() else {
        return;
    };
    let t1 = i128::from(i64::from_be_bytes(*head));
    let t4 = t1 + 1_000_000;
    let Ok(a) = parse_answer(packet, to_ntp(t1), t1, t4) else {
        return;
    };
    assert!(a.delay_ns >= 0 && a.delay_ns <= 16_000_000_000);
    assert!(a.offset_ns.abs() < 1i128 << 100);
    assert!((1..16).contains(&a.stratum));
}

/// A kernel's module index (modules.dep, modules.softdep, modules.builtin
/// and modules.alias, a NUL between each): any bytes parse or are refused,
/// never a panic; in a load order each module comes once, after every
/// module it depends on (or its dependency is built in).
pub fn modules_dep(data: &[u8]) {
    use berth::cli::mkimage::moddep::{ModuleIndex, module_name};
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let mut next = || parts.next().unwrap_or("");
    let (dep, soft, builtin, alias) = (next(), next(), next(), next());
    let Ok(index) = ModuleIndex::parse(dep, soft, builtin, alias) else {
        return;
    };
    let wanted: Vec<String> = dep
        .lines()
        .filter_map(|l| module_name(l.split(':').next()?.trim()))
        .take(32)
        .collect();
    let Ok(order) = index.resolve(&wanted) else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for m in &order.modules {
        assert!(seen.insert(m.clone()), "{m} twice in the load order");
        let module = index.module(m).expect("a loaded module is in modules.dep");
        for d in &module.deps {
            assert!(
                seen.contains(d) || order.builtin.contains(d),
                "{m} comes before its dependency {d}"
            );
        }
    }
}

/// What a machine's init reads to find its first-boot config: the kernel
/// command line (`berth.config=`) and a block device's first 34 KiB (a
/// FAT boot sector or an ISO 9660 volume descriptor, for its label). Any
/// bytes give a source, none, or an error, never a panic; a URL is shown
/// without its user info or query, even in an error; a label is at most
/// the 32 characters its field holds.
pub fn first_boot_source(data: &[u8]) {
    use berth::kernel::config_drive::probe_bytes;
    use berth::supervisor::config_store::first_boot::{Source, from_cmdline, redact};
    let text = String::from_utf8_lossy(data);
    match from_cmdline(&text) {
        Ok(Some(Source::Url(url))) => {
            let shown = redact(&url);
            assert!(!shown.contains(['?', '#']), "{shown} keeps its query");
            let host = shown.split_once("://").map_or("", |(_, r)| r);
            let host = host.split('/').next().unwrap_or("");
            assert!(!host.contains('@'), "{shown} keeps its user info");
        }
        // A value that is not an http(s) URL has no user info to hide: it
        // is shown as written, the operator's own kernel command line.
        // The user info is what the authority holds before its last `@`;
        // a path may hold an `@` of its own.
        Err(e) if names_a_url(&text) => {
            let after = e.split_once("://").map_or("", |(_, rest)| rest);
            let authority = after.split(['/', ' ']).next().unwrap_or("");
            assert!(!authority.contains('@'), "an error shows user info: {e}")
        }
        Err(_) => {}
        Ok(_) => {}
    }
    if let Some(probe) = probe_bytes(data) {
        assert!(probe.label.chars().count() <= 32, "label {:?}", probe.label);
        assert!(!probe.label.ends_with(' '));
    }
}

/// A disk's partition table, as berth as PID 1 reads its boot disk to
/// grow the data partition: any bytes (a whole small disk, 512-byte
/// sectors) give a table or a refusal, never a panic; a table read has
/// its partitions inside the usable range and apart; grown to a disk
/// twice as large, written and read again, it keeps every entry but the
/// grown one, which keeps its start and gets longer. An ext4 superblock
/// in the same bytes gives a size or none.
pub fn gpt_table(data: &[u8]) {
    use berth::kernel::blockdev::ext4_superblock;
    use berth::kernel::gpt::Gpt;
    if let Some(sb) = data.get(1024..2048) {
        let _ = ext4_superblock(sb);
    }
    let Ok(gpt) = Gpt::from_disk(data, 512) else {
        return;
    };
    for p in &gpt.partitions {
        assert!(gpt.first_usable <= p.first_lba && p.last_lba <= gpt.last_usable);
    }
    let Some(last) = gpt.partitions.iter().max_by_key(|p| p.last_lba) else {
        return;
    };
    let sectors = (data.len() / 512) as u64 * 2;
    let Ok(Some(grown)) = gpt.grown(sectors, last.index, 8) else {
        return;
    };
    let mut disk = vec![0u8; (sectors * 512) as usize];
    for w in grown.primary().into_iter().chain(grown.backup()) {
        let at = w.offset as usize;
        disk[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    let back = Gpt::from_disk(&disk, 512).expect("a grown table reads back");
    assert_eq!(back.backup_lba, sectors - 1);
    assert_eq!(back.partitions.len(), gpt.partitions.len());
    for (a, b) in gpt.partitions.iter().zip(&back.partitions) {
        if a.index == last.index {
            assert!(b.first_lba == a.first_lba && b.last_lba >= a.last_lba);
        } else {
            assert_eq!(a, b);
        }
    }
}

/// Whether the command line's last `berth.config=` value is an http(s)
/// URL, as parse_source decides it.
fn names_a_url(cmdline: &str) -> bool {
    let Some(value) = cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("berth.config="))
        .next_back()
    else {
        return false;
    };
    let lower = value.trim_matches('"').to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
