//! `berth daemon` and `berth check`.

use std::path::{Path, PathBuf};

use super::args::Args;
use crate::api::client::socket_path;
use crate::api::server::ApiServer;
use crate::image::Store;
use crate::image::store::DEFAULT_ROOT;
use crate::supervisor::config_dir::{LoadedSpec, load_config_dir};
use crate::supervisor::event_loop;
use crate::supervisor::manager::say;
use crate::supervisor::settings::load_settings;
use crate::supervisor::signals::SignalPipe;
use crate::supervisor::{Supervisor, SupervisorOptions};

const DEFAULT_CGROUP_PARENT: &str = "berth";

pub fn daemon(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(
        argv,
        &[
            ("config", true),
            ("root", true),
            ("socket", true),
            ("cgroup-parent", true),
        ],
    )?;
    args.expect_positional(
        0,
        "berth daemon --config DIR [--root DIR] [--socket PATH] [--cgroup-parent NAME]",
    )?;
    let config_dir = PathBuf::from(args.value("config").ok_or("daemon needs --config DIR")?);
    let specs = load_or_report(&config_dir).ok_or_else(|| {
        format!(
            "refusing to start: invalid config in {}",
            config_dir.display()
        )
    })?;
    let store =
        Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())?;
    // Installed before any container starts, so no SIGCHLD is missed.
    let mut signals = SignalPipe::install().map_err(|e| format!("install signal handlers: {e}"))?;
    let mut server =
        ApiServer::bind(&socket_path(args.value("socket"))).map_err(|e| e.to_string())?;
    let options = SupervisorOptions {
        config_dir,
        cgroup_parent: args
            .value("cgroup-parent")
            .unwrap_or(DEFAULT_CGROUP_PARENT)
            .to_string(),
    };
    say(format_args!(
        "pid {}, store {}, api {}, {} containers",
        std::process::id(),
        store.root().display(),
        server.path().display(),
        specs.len()
    ));
    let mut sup = Supervisor::new(store, options, specs);
    sup.start_all();
    Ok(event_loop::run(&mut sup, &mut server, &mut signals))
}

pub fn check(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, &[])?;
    let [dir] = args.expect_positional(1, "berth check DIR")? else {
        unreachable!()
    };
    match load_or_report(Path::new(dir)) {
        Some(specs) => {
            println!("{}: {} container specs are valid", dir, specs.len());
            Ok(0)
        }
        None => Ok(1),
    }
}

/// Loads berth.json and every spec, printing each error
/// (file:line:col: field: message).
fn load_or_report(dir: &Path) -> Option<Vec<LoadedSpec>> {
    let settings = load_settings(dir);
    let specs = load_config_dir(dir);
    for e in settings
        .as_ref()
        .err()
        .into_iter()
        .flatten()
        .chain(specs.as_ref().err().into_iter().flatten())
    {
        eprintln!("{e}");
    }
    match (settings, specs) {
        (Ok(_), Ok(specs)) => Some(specs),
        _ => None,
    }
}
