//! `berth convert compose.yml [-o DIR]`: a docker-compose file into berth
//! specs, one DIR/containers/NAME.json per service, each key either mapped
//! or listed on stderr by its path with the reason (docs/convert.md).
//!
//! compose.rs reads the file (yaml.rs, interpolate.rs), service.rs maps a
//! service with an area's mapper per key (basics, security, storage,
//! network, health), output.rs validates and writes.

mod basics;
pub mod compose;
mod envfile;
mod health;
pub mod interpolate;
pub mod issues;
mod network;
mod output;
mod security;
pub mod service;
mod storage;
mod values;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::Args;
use super::commands::CONVERT;
use compose::convert_text;
use interpolate::Vars;

/// Some keys could not be mapped (the specs were written unless
/// `--strict`).
pub const EXIT_UNMAPPED: i32 = 3;

const USAGE: &str = "berth convert COMPOSE_FILE [-o DIR] [--strict] [--env-file PATH]";

pub fn convert(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, CONVERT.options)?;
    let [file] = args.expect_positional(1, USAGE)? else {
        unreachable!()
    };
    let file = Path::new(file);
    let base_dir = absolute_dir(file)?;
    let env_file = args
        .value("env-file")
        .map(PathBuf::from)
        .unwrap_or_else(|| base_dir.join(".env"));
    let vars = variables(&env_file, args.value("env-file").is_some())?;
    let text = yaml::read_compose_file(file)?;
    let conversion = convert_text(&text, Some(&base_dir), &vars).map_err(|e| {
        // compose.yml:4:14: message, or compose.yml: services.a.image: message.
        let sep = if e.at.is_some() { ":" } else { ": " };
        format!("{}{sep}{e}", file.display())
    })?;
    for issue in &conversion.issues.list {
        eprintln!("{issue}");
    }
    if conversion.issues.dropped > 0 {
        eprintln!("… and {} more keys not shown", conversion.issues.dropped);
    }
    if conversion.issues.any_invalid() {
        return Err(format!(
            "{}: invalid values (listed above); nothing written",
            file.display()
        ));
    }
    let unmapped = !conversion.issues.is_empty();
    if unmapped && args.switch("strict") {
        eprintln!("berth convert: --strict and keys above could not be mapped; nothing written");
        return Ok(EXIT_UNMAPPED);
    }
    let out = PathBuf::from(args.value("output").unwrap_or("."));
    let written = output::write_specs(&out, &conversion.specs).map_err(|errors| {
        errors.iter().for_each(|e| eprintln!("{e}"));
        "the converted specs are invalid (listed above); nothing written".to_string()
    })?;
    for path in &written {
        println!("{}", path.display());
    }
    if unmapped {
        eprintln!(
            "berth convert: {} specs written; the keys above were not mapped",
            written.len()
        );
        return Ok(EXIT_UNMAPPED);
    }
    Ok(0)
}

/// The compose file's directory, absolute (binds are made absolute from
/// it).
fn absolute_dir(file: &Path) -> Result<PathBuf, String> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// The environment, then the `.env` file for what it lacks (compose's
/// precedence). A missing default `.env` is fine; a named one is not.
fn variables(env_file: &Path, named: bool) -> Result<Vars, String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    match envfile::read_env_file(env_file) {
        Ok(entries) => {
            for (k, v) in entries {
                if let Some(v) = v {
                    vars.insert(k, v);
                }
            }
        }
        Err(e) if named || env_file.exists() => return Err(e),
        Err(_) => {}
    }
    for (k, v) in std::env::vars_os() {
        if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    Ok(Vars(vars))
}
