//! `berth import` and `berth images`: the store, without a daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::Args;
use super::commands::{IMAGES, IMPORT, PRUNE, PULL, RMI, STORE};
use super::progress::ProgressView;
use super::table;
use crate::api::client::{Client, socket_path};
use crate::fetch::credentials::Credentials;
use crate::fetch::manifest::parse_platform;
use crate::fetch::reference::Reference;
use crate::fetch::registry::RegistryOptions;
use crate::image::Store;
use crate::image::gc::{self, GcReport, remove_image};
use crate::image::import::import_path;
use crate::image::lookup::{image_id, list};
use crate::image::pull::{PullOptions, pull as image_pull};
use crate::image::store::DEFAULT_ROOT;
use crate::image::verify::verify;
use crate::supervisor::spec::bounds::{
    Bound, PULL_MAX_PARALLEL, PULL_MAX_RATE, REGISTRY_TIMEOUT_SECS,
};
use crate::supervisor::spec::hardening::parse_byte_size;
use crate::supervisor::spec::settings::{Settings, load_settings};

pub fn import(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, IMPORT.options)?;
    let [path] = args.expect_positional(1, "berth import PATH [--name REF] [--root DIR]")? else {
        unreachable!()
    };
    let store =
        Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())?;
    let imported = import_path(&store, Path::new(path), args.value("name"))
        .map_err(|e| format!("import {path}: {e}"))?;
    for image in imported {
        println!("imported {} ({})", image.reference, image_id(&image.record));
    }
    Ok(0)
}

pub fn images(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, IMAGES.options)?;
    args.expect_positional(0, "berth images [--json] [--root DIR]")?;
    let store =
        Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())?;
    let images = list(&store).map_err(|e| e.to_string())?;
    if args.switch("json") {
        let rows: Vec<_> = images
            .iter()
            .map(|i| serde_json::json!({"reference": i.reference, "id": image_id(&i.record).to_string(), "manifest": i.record.manifest.to_string(), "size": i.size}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.reference.clone(),
                image_id(&i.record).short().to_string(),
                human_size(i.size),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["REFERENCE", "IMAGE ID", "SIZE"], &rows)
    );
    Ok(0)
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

fn open_store(args: &Args) -> Result<Store, String> {
    Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())
}

fn print_gc(report: &GcReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
    for r in &report.removed_references {
        println!("untagged {r}");
    }
    println!(
        "removed {} blobs, {} layers, {} staging directories; reclaimed {}",
        report.blobs,
        report.layers,
        report.staging_dirs,
        human_size(report.bytes)
    );
}

pub fn rmi(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, RMI.options)?;
    let [reference] = args.expect_positional(1, "berth rmi REF [--force] [--json] [--root DIR]")?
    else {
        unreachable!()
    };
    let report = remove_image(&open_store(&args)?, reference, args.switch("force"))
        .map_err(|e| e.to_string())?;
    print_gc(&report, args.switch("json"));
    Ok(0)
}

pub fn prune(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, PRUNE.options)?;
    args.expect_positional(0, "berth prune [--json] [--root DIR]")?;
    let report = gc::prune(&open_store(&args)?).map_err(|e| e.to_string())?;
    print_gc(&report, args.switch("json"));
    Ok(0)
}

/// `berth store verify [--repair]`: exit 0 when clean (leftover staging
/// is harmless), 1 when problems remain.
pub fn store(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, STORE.options)?;
    let usage = "berth store verify [--repair] [--json] [--root DIR]";
    if args.expect_positional(1, usage)?[0] != "verify" {
        return Err(format!("usage: {usage}"));
    }
    let repair = args.switch("repair");
    let store = open_store(&args)?;
    let mut report = verify(&store, repair).map_err(|e| e.to_string())?;
    // The applied config's pointer (docs/update.md, "apply").
    let area = crate::supervisor::config_store::verify(store.root());
    report.problems.extend(area.problems);
    report.garbage.extend(area.garbage);
    if args.switch("json") {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        for p in &report.problems {
            println!("problem: {p}");
        }
        for g in &report.garbage {
            println!("garbage: {g}");
        }
        for r in &report.repaired {
            println!("repaired: {r}");
        }
        println!(
            "checked {} blobs and {} layers: {} problems",
            report.blobs_checked,
            report.layers_checked,
            report.problems.len()
        );
    }
    Ok(if report.problems.is_empty() || repair {
        0
    } else {
        1
    })
}

/// `berth pull REF`: into the store itself with `--root`, else through the
/// daemon. The options are checked either way.
pub fn pull(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, PULL.options)?;
    let usage = "berth pull REF [--platform os/arch[/variant]] [--auth-file PATH] [--insecure] [--ca-file PEM] [--timeout SECS] [--max-rate BYTES/S] [--max-parallel N] [--config DIR] [--root DIR | --socket PATH]";
    let [reference] = args.expect_positional(1, usage)? else {
        unreachable!()
    };
    let opts = pull_options(&args, reference)?;
    if args.value("root").is_none() {
        let link = serde_json::json!({"max_rate": args.value("max-rate").map(|_| opts.max_rate),
            "max_parallel": args.value("max-parallel").map(|_| opts.max_parallel)});
        return pull_through_daemon(
            reference,
            args.value("platform"),
            args.value("socket"),
            link,
        );
    }
    let reserve = pull_settings(&args)?.store.reserve_bytes();
    let store = open_store(&args)?.with_reserve(reserve);
    let mut view = ProgressView::new();
    let pulled = match image_pull(&store, reference, &opts, &mut |line| view.line(&line)) {
        Ok(pulled) => pulled,
        Err(e) if e.is_certificate_time() && !crate::kernel::clock::synchronized() => {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            eprintln!(
                "berth: pull {reference}: {e}; this machine's clock ({now}) is not synchronized: a clock problem, not the registry's"
            );
            return Ok(crate::image::pull::EXIT_CLOCK);
        }
        Err(e) if e.is_transient() => {
            eprintln!("berth: pull {reference}: {e}");
            return Ok(crate::image::pull::EXIT_TRANSIENT);
        }
        Err(e) => return Err(format!("pull {reference}: {e}")),
    };
    println!("{} ({})", pulled.reference, image_id(&pulled.record));
    Ok(0)
}

/// The flags, over berth.json's `registries` (from `--config`) for the
/// reference's registry and its mirrors.
fn pull_options(args: &Args, reference: &str) -> Result<PullOptions, String> {
    let timeout = args
        .number(
            "timeout",
            REGISTRY_TIMEOUT_SECS.min..=REGISTRY_TIMEOUT_SECS.max,
        )?
        .map(Duration::from_secs);
    let settings = pull_settings(args)?;
    let domain = Reference::parse(reference)
        .map_err(|e| e.to_string())?
        .domain;
    let options_for = |host: &str| {
        let s = settings.registries.get(host);
        RegistryOptions {
            insecure: args.switch("insecure") || s.is_some_and(|s| s.insecure),
            ca_file: args
                .value("ca-file")
                .map(PathBuf::from)
                .or_else(|| s.and_then(|s| s.ca_file.clone())),
            timeout,
            slowest_bytes_per_sec: None,
        }
    };
    let own = settings
        .registries
        .get(&domain)
        .cloned()
        .unwrap_or_default();
    Ok(PullOptions {
        platform: args.value("platform").map(parse_platform).transpose()?,
        auth_file: args.value("auth-file").map(PathBuf::from),
        registry: options_for(&domain),
        mirrors: own
            .mirrors
            .iter()
            .map(|m| (m.clone(), options_for(m)))
            .collect(),
        credentials: own
            .username
            .zip(own.password)
            .map(|(username, password)| Credentials::Basic { username, password }),
        max_rate: link_flag(args, "max-rate", &PULL_MAX_RATE, parse_byte_size)?
            .or(settings.pull.max_rate.map(|r| r.0)),
        max_parallel: link_flag(args, "max-parallel", &PULL_MAX_PARALLEL, |t| t.parse().ok())?
            .or(settings.pull.max_parallel.map(u64::from))
            .map(|n| n as usize),
        auto_prune: settings.store.auto_prune,
    })
}

/// `--max-rate 1m` or `--max-parallel 1`: parsed and held to the same
/// bounds as berth.json's `pull` section.
fn link_flag(
    args: &Args,
    flag: &str,
    bound: &Bound<u64>,
    parse: impl Fn(&str) -> Option<u64>,
) -> Result<Option<u64>, String> {
    let Some(text) = args.value(flag) else {
        return Ok(None);
    };
    let n = parse(text).ok_or_else(|| format!("--{flag}: not a number: {text:?}"))?;
    bound.check(n).map_err(|e| format!("--{flag}: {e}"))?;
    Ok(Some(n))
}

/// berth.json from `--config DIR`, or the defaults.
fn pull_settings(args: &Args) -> Result<Settings, String> {
    match args.value("config") {
        Some(dir) => load_settings(Path::new(dir)).map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }),
        None => Ok(Settings::default()),
    }
}

/// `berth pull REF` with a daemon running: it pulls (in its own helper),
/// and the progress comes back as notifications.
fn pull_through_daemon(
    reference: &str,
    platform: Option<&str>,
    socket: Option<&str>,
    link: serde_json::Value,
) -> Result<i32, String> {
    let mut view = ProgressView::new();
    let mut client = Client::connect(&socket_path(socket))
        .map_err(|e| format!("{e} (or pass --root DIR to pull without a daemon)"))?;
    let mut params = serde_json::json!({"reference": reference, "platform": platform});
    for key in ["max_rate", "max_parallel"] {
        if !link[key].is_null() {
            params[key] = link[key].clone();
        }
    }
    let result = client
        .call_streaming("pull", params, |n| {
            if let Some(line) = n["params"]["line"].as_str() {
                view.line(line);
            }
        })
        .map_err(|e| format!("pull {reference}: {e}"))?;
    println!("{}", result["reference"].as_str().unwrap_or(reference));
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(super::human_size(999), "999B");
        assert_eq!(super::human_size(1_035_152), "1.0MB");
    }
}
