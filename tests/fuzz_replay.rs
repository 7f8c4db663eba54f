//! Every fuzz target's seeds (fuzz/seeds/TARGET/), saved regressions
//! (fuzz/regressions/TARGET/: inputs that once broke a target, kept so
//! the bug stays fixed) and any crash a local fuzz run left behind
//! (fuzz/artifacts/TARGET/, not committed), replayed through the very
//! checks the targets run (fuzz/src/lib.rs, included here), on stable
//! Rust without cargo-fuzz. Also: every target has a check and seeds, and
//! its seeds reach the path where the input is accepted.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_checks;

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_check_and_seeds() {
    let checked: BTreeSet<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let sources: BTreeSet<String> = inputs(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let bins: BTreeSet<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            let line = section.lines().find(|l| l.starts_with("name = "))?;
            Some(
                line.trim_start_matches("name = ")
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .collect();
    let checked_owned: BTreeSet<String> = checked.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        sources, checked_owned,
        "fuzz_targets/*.rs vs fuzz/src/lib.rs TARGETS"
    );
    assert_eq!(bins, checked_owned, "fuzz/Cargo.toml [[bin]]s vs TARGETS");
    for name in checked {
        let seeds = inputs(&fuzz_dir().join("seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ has no seed");
    }
}

#[test]
fn seeds_regressions_and_crashes_pass_every_check() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, check) in TARGETS {
        for kind in ["seeds", "regressions", "artifacts"] {
            for file in inputs(&fuzz_dir().join(kind).join(name)) {
                let data = fs::read(&file).expect("read input");
                replayed += 1;
                if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                    failures.push(format!("{name}: {}", file.display()));
                }
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
    assert!(
        failures.is_empty(),
        "inputs that fail their fuzz target's check (panics above):\n  {}",
        failures.join("\n  ")
    );
}

/// Whether berth accepts `data` as what target `name` parses: a seed that
/// is refused at the first step explores only the error path.
fn accepted(name: &str, data: &[u8]) -> bool {
    let text = std::str::from_utf8(data).unwrap_or("");
    match name {
        "spec_parse" => {
            berth::supervisor::spec::validate::parse_spec(Path::new("seed.json"), text).is_ok()
        }
        "settings_parse" => {
            berth::supervisor::spec::settings::parse_settings(Path::new("berth.json"), text).is_ok()
        }
        "rpc_request" => berth::api::protocol::parse_request(data).is_ok(),
        "relay_message" => berth::api::relay::parse_client_line(data).is_some(),
        "image_reference" => berth::fetch::reference::Reference::parse(text).is_ok(),
        "www_authenticate" => !berth::fetch::challenge::parse_challenges(text).is_empty(),
        "manifest_parse" => {
            use berth::image::oci::{ImageConfig, Index, Manifest, parse_json};
            parse_json::<Manifest>(data, "seed").is_ok()
                || parse_json::<Index>(data, "seed").is_ok()
                || parse_json::<ImageConfig>(data, "seed").is_ok()
        }
        "seccomp_profile" => berth::kernel::seccomp::parse_profile(text).is_ok(),
        "device_rule" => berth::supervisor::spec::device_rules::parse_device_rule(text).is_ok(),
        "uevent_parse" => berth::kernel::uevent::parse_uevent(data).is_some(),
        "dhcp_packet" => berth::supervisor::hostnet::dhcp_packet::parse_any_reply(data).is_some(),
        "sntp_packet" => data.split_first_chunk::<8>().is_some_and(|(head, packet)| {
            use berth::supervisor::hostnet::sntp_packet::{parse_answer, to_ntp};
            let t1 = i128::from(i64::from_be_bytes(*head));
            parse_answer(packet, to_ntp(t1), t1, t1 + 1_000_000).is_ok()
        }),
        "cdi_spec" => {
            use berth::supervisor::plugins::cdi::parse::parse_spec;
            parse_spec(data, false).is_ok() || parse_spec(data, true).is_ok()
        }
        "compose_convert" => {
            use berth::cli::convert::compose::convert_text;
            let vars = berth::cli::convert::interpolate::Vars::default();
            convert_text(text, None, &vars).is_ok_and(|c| !c.specs.is_empty())
        }
        "journal_read" => {
            let dir = tempfile::tempdir().expect("tempdir");
            fs::write(dir.path().join("00000000000000000001.jsonl"), data).expect("write");
            berth::supervisor::events::journal::read_range(dir.path(), 0, 10)
                .is_ok_and(|b| !b.events.is_empty())
        }
        "config_tarball" => {
            let dir = tempfile::tempdir().expect("tempdir");
            berth::supervisor::config_store::stage::unpack(data, dir.path()).is_ok()
                && fs::read_dir(dir.path()).expect("read").count() > 0
        }
        "layer_unpack" => {
            use berth::image::digest::Digest;
            use berth::image::unpack::{UnpackLimits, unpack_layer};
            let dir = tempfile::tempdir().expect("tempdir");
            let (blob, target) = (dir.path().join("blob"), dir.path().join("layer"));
            fs::write(&blob, data).expect("write");
            fs::create_dir(&target).expect("mkdir");
            let limits = UnpackLimits {
                max_bytes: 64 << 20,
                max_ratio: 100,
                ratio_floor_bytes: 1 << 20,
                max_entries: 10_000,
                reserve_bytes: 0,
            };
            // The target passes the blob's own digest as the diff_id, so a
            // plain tar seed is unpacked to the end.
            unpack_layer(&blob, &target, &Digest::of_bytes(data), "seed", limits).is_ok()
        }
        "modules_dep" => {
            let mut parts = text.split('\0');
            let mut next = || parts.next().unwrap_or("");
            let (dep, soft, builtin, alias) = (next(), next(), next(), next());
            berth::cli::mkimage::moddep::ModuleIndex::parse(dep, soft, builtin, alias)
                .is_ok_and(|i| i.module("overlay").is_some())
        }
        "first_boot_source" => {
            use berth::supervisor::config_store::first_boot::from_cmdline;
            matches!(from_cmdline(text), Ok(Some(_)))
                || berth::kernel::config_drive::probe_bytes(data).is_some()
        }
        "gpt_table" => berth::kernel::gpt::Gpt::from_disk(data, 512)
            .is_ok_and(|g| g.named("berth-data").is_some()),
        other => panic!("no acceptance rule for target {other}"),
    }
}

#[test]
fn every_target_has_a_seed_that_is_accepted() {
    let mut without = Vec::new();
    for (name, _) in TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(name));
        if !seeds
            .iter()
            .any(|p| accepted(name, &fs::read(p).expect("read seed")))
        {
            without.push(*name);
        }
    }
    assert!(
        without.is_empty(),
        "targets whose seeds are all refused at once: {without:?}"
    );
}
