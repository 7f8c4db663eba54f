//! `berth daemon` and `berth check`.

use std::path::{Path, PathBuf};

use super::args::Args;
use super::commands::{CHECK, DAEMON};
use crate::api::access;
use crate::api::client::socket_path;
use crate::api::server::ApiServer;
use crate::image::Store;
use crate::image::store::DEFAULT_ROOT;
use crate::kernel::machine::boot_steps::{BootStep, stamp};
use crate::supervisor::config_store;
use crate::supervisor::daemon::clock_floor;
use crate::supervisor::daemon::data_partition::{self, DataMount};
use crate::supervisor::daemon::event_loop::{self, Host};
use crate::supervisor::daemon::hw_watchdog::HardwareWatchdog;
use crate::supervisor::daemon::notify::Notifier;
use crate::supervisor::daemon::pid1::{self, Init};
use crate::supervisor::daemon::signals::SignalPipe;
use crate::supervisor::events::kinds;
use crate::supervisor::launch::check::{check_cdi_devices, load_config as load_config_dir};
use crate::supervisor::plugins::cdi;
use crate::supervisor::plugins::network::NetworkSettings;
use crate::supervisor::say;
use crate::supervisor::spec::load::LoadedSpec;
use crate::supervisor::spec::settings::{Settings, load_settings};
use crate::supervisor::{Supervisor, SupervisorOptions};

const DEFAULT_CGROUP_PARENT: &str = "berth";
/// As the machine's init there is nobody to pass --config.
const DEFAULT_CONFIG_DIR: &str = "/etc/berth";
const DAEMON_USAGE: &str =
    "berth daemon [--config DIR] [--root DIR] [--socket PATH] [--cgroup-parent NAME]";

/// `berth daemon`. As PID 1 the machine comes first (filesystems, console)
/// before anything else opens a file, and it never returns: the end of
/// the event loop, or an error that would end the daemon, powers off or
/// reboots instead (pid1.rs).
pub fn daemon(argv: &[String]) -> Result<i32, String> {
    let mut init = Init::enter();
    let result = serve(argv, init.as_mut());
    match (init, result) {
        (None, result) => result,
        (Some(init), Err(message)) => init.fatal(&message),
        // serve() has dropped the supervisor, so the store's files are
        // closed and the data partition unmounts cleanly (no journal
        // replay at the next boot).
        (Some(init), Ok(_)) => init.finish(pid1::requested_shutdown()),
    }
}

fn serve(argv: &[String], mut init: Option<&mut Init>) -> Result<i32, String> {
    let args = Args::parse(argv, DAEMON.options)?;
    args.expect_positional(0, DAEMON_USAGE)?;
    let seed_dir = config_dir(&args, init.is_some())?;
    let root = PathBuf::from(args.value("root").unwrap_or(DEFAULT_ROOT));
    let data = mount_data_partition(init.is_some(), &root);
    let config_dir = applied_config(&root).unwrap_or_else(|| seed_dir.clone());
    let (settings, specs) = load_config(&config_dir, init.as_deref_mut())?;
    stamp(BootStep::Config);
    // Hostname, modules (overlay), cgroups: before the first container.
    let init = init.map(|init| {
        init.configure(&settings);
        init.clone()
    });
    stamp(BootStep::Machine);
    let store = Store::open(&root)
        .map_err(|e| e.to_string())?
        .with_reserve(settings.store.reserve_bytes());
    stamp(BootStep::Store);
    // Before the first event or record is stamped with a 1970 time.
    clock_floor::apply_clock_floor(
        &store.root().join("events"),
        pid1::mode() == pid1::Mode::Machine,
    );
    // Installed before any container starts, so no SIGCHLD is missed.
    let mut signals = SignalPipe::install().map_err(|e| format!("install signal handlers: {e}"))?;
    let mut server =
        ApiServer::bind(&socket_path(args.value("socket"))).map_err(|e| e.to_string())?;
    apply_api_access(&mut server, &settings)?;
    stamp(BootStep::Api);
    let mut options = supervisor_options(&args, config_dir, &settings);
    options.seed_config_dir = seed_dir;
    say(format_args!(
        "pid {}, store {}, api {}, {} containers",
        std::process::id(),
        store.root().display(),
        server.path().display(),
        specs.len()
    ));
    // Before the containers' log writers are made.
    crate::supervisor::output::logs::set_default_driver(
        settings.logging.default_driver.unwrap_or_default(),
    );
    let mut sup = start_supervisor(store, options, specs);
    sup.set_journal_sync(settings.journal.sync);
    report_data_growth(&mut sup, data.as_ref());
    let watchdog = settings.watchdog.as_ref().and_then(HardwareWatchdog::arm);
    sup.set_watchdog_info(watchdog.as_ref().map(HardwareWatchdog::info));
    let mut host = Host {
        notifier: Notifier::from_env(),
        init,
        watchdog,
    };
    // READY=1 only now: the socket answers and the containers were started.
    host.notifier
        .ready(&format!("supervising {} containers", sup.container_count()));
    #[cfg(debug_assertions)]
    panic_if_a_test_asks();
    Ok(event_loop::run(
        &mut sup,
        &mut server,
        &mut signals,
        &mut host,
    ))
}

/// Booted from a disk image as the machine's init: its data partition
/// holds the store (and the applied config in it), so it is mounted
/// before either is read.
fn mount_data_partition(is_pid1: bool, root: &Path) -> Option<DataMount> {
    (is_pid1 && pid1::mode() == pid1::Mode::Machine)
        .then(|| data_partition::mount_store(root))
        .flatten()
}

/// The data partition's growth at this boot, as an event (the console
/// said it when it happened, before the journal was open).
fn report_data_growth(sup: &mut Supervisor, data: Option<&DataMount>) {
    let Some((data, grown)) = data.and_then(|d| Some((d, d.grown.as_ref()?))) else {
        return;
    };
    sup.emit(
        kinds::DATA_PARTITION_GROWN,
        None,
        serde_json::json!({
            "device": data.device,
            "disk": data.disk,
            "partition_from_bytes": grown.partition_from,
            "partition_to_bytes": grown.partition_to,
            "fs_from_bytes": grown.fs_from,
            "fs_to_bytes": grown.fs_to,
        }),
    );
}

/// `--config`, or as PID 1 (nobody to pass it) the default directory.
fn config_dir(args: &Args, is_pid1: bool) -> Result<PathBuf, String> {
    match (args.value("config"), is_pid1) {
        (Some(dir), _) => Ok(PathBuf::from(dir)),
        (None, true) => Ok(PathBuf::from(DEFAULT_CONFIG_DIR)),
        (None, false) => Err(format!("daemon needs --config DIR; usage: {DAEMON_USAGE}")),
    }
}

/// The config `berth apply` made active (docs/update.md, "apply"), once
/// what an unfinished apply left is gone; None: the seed (`--config`) is
/// used. An applied config that no longer loads is reported and the seed
/// used instead, so a machine still boots.
fn applied_config(root: &Path) -> Option<PathBuf> {
    for dir in config_store::clean_leftovers(root) {
        say(format_args!(
            "removed {} (an apply that did not finish)",
            dir.display()
        ));
    }
    let (_, dir) = config_store::active(root)?;
    match load_or_report(&dir) {
        (Some(_), Some(_)) => {
            say(format_args!("using the applied config {}", dir.display()));
            Some(dir)
        }
        _ => {
            say(format_args!(
                "the applied config {} is invalid; using the seed config",
                dir.display()
            ));
            None
        }
    }
}

/// berth.json and every spec, or the refusal to start. As PID 1,
/// berth.json's `shutdown` is applied even when a spec is invalid: it says
/// how PID 1 fails.
fn load_config(
    config_dir: &Path,
    init: Option<&mut Init>,
) -> Result<(Settings, Vec<LoadedSpec>), String> {
    let (settings, specs) = load_or_report(config_dir);
    if let (Some(init), Some(settings)) = (init, &settings) {
        init.set_shutdown(&settings.shutdown);
    }
    match (settings, specs) {
        (Some(settings), Some(specs)) => Ok((settings, specs)),
        _ => Err(format!(
            "refusing to start: invalid config in {}",
            config_dir.display()
        )),
    }
}

fn supervisor_options(args: &Args, config_dir: PathBuf, settings: &Settings) -> SupervisorOptions {
    let network = NetworkSettings::for_config_dir(&config_dir);
    SupervisorOptions {
        seed_config_dir: config_dir.clone(),
        config_dir,
        cgroup_parent: args
            .value("cgroup-parent")
            .unwrap_or(DEFAULT_CGROUP_PARENT)
            .to_string(),
        console_logs: settings.console_logs(pid1::mode().is_pid1()),
        report_boot_time: pid1::mode() == pid1::Mode::Machine,
        machine_init: pid1::mode() == pid1::Mode::Machine,
        volume_plugins: settings.volume_plugins.clone(),
        cdi_spec_dirs: cdi::spec_dirs(settings.cdi.spec_dirs.as_deref()),
        network,
        pull_give_up_after: settings.pull.give_up_after.map(|s| s.0),
    }
}

/// Stale networks cleaned, every container started, the webhook notifier
/// running.
fn start_supervisor(
    store: Store,
    options: SupervisorOptions,
    specs: Vec<LoadedSpec>,
) -> Supervisor {
    let mut sup = Supervisor::new(store, options, specs);
    sup.recover_leftovers();
    stamp(BootStep::Recovered);
    sup.import_airgap_images();
    stamp(BootStep::Images);
    sup.start_all();
    stamp(BootStep::StartsBegun);
    sup.start_notifier();
    sup.start_host_network();
    // After the baked containers: the first-boot config replaces them as
    // an apply once its helper found and checked it.
    sup.start_first_boot();
    sup
}

/// Test-only, compiled into debug builds alone (release builds have no
/// such variable): with `BERTH_TEST_PANIC_AFTER_START` set, the daemon
/// panics once its startup is done, before its first loop turn, so that
/// tests/pid1.rs can check PID 1's panic hook (daemon/pid1.rs).
#[cfg(debug_assertions)]
fn panic_if_a_test_asks() {
    if std::env::var_os("BERTH_TEST_PANIC_AFTER_START").is_some() {
        panic!("BERTH_TEST_PANIC_AFTER_START is set (a test-only trigger)");
    }
}

pub fn check(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, CHECK.options)?;
    let dir = match args.positional.as_slice() {
        [] => return check_active(&args),
        [dir] => dir,
        _ => return Err("usage: berth check [DIR]".into()),
    };
    match load_or_report(Path::new(dir)) {
        (Some(settings), Some(specs)) => {
            let dirs = cdi::spec_dirs(settings.cdi.spec_dirs.as_deref());
            let errors = check_cdi_devices(&specs, &dirs);
            if !errors.is_empty() {
                errors.iter().for_each(|e| eprintln!("{e}"));
                return Ok(1);
            }
            println!("{}: {} container specs are valid", dir, specs.len());
            Ok(0)
        }
        _ => Ok(1),
    }
}

/// `berth check` without DIR: the daemon checks its active config (the
/// applied one, else the seed; docs/update.md, "apply").
fn check_active(args: &Args) -> Result<i32, String> {
    let mut client = crate::api::client::Client::connect(&socket_path(args.value("socket")))
        .map_err(|e| e.to_string())?;
    let r = client
        .call("check", serde_json::Value::Null)
        .map_err(|e| e.to_string())?;
    let errors = r["errors"].as_array().cloned().unwrap_or_default();
    for e in &errors {
        eprintln!("{}", e.as_str().unwrap_or_default());
    }
    if r["valid"].as_bool() == Some(true) {
        println!("the daemon's active config is valid");
        return Ok(0);
    }
    Ok(1)
}

/// Loads berth.json and every spec, printing each error
/// (file:line:col: field: message).
fn load_or_report(dir: &Path) -> (Option<Settings>, Option<Vec<LoadedSpec>>) {
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
    (settings.ok(), specs.ok())
}

/// berth.json's `api` groups: the policy for connections, and the socket's
/// group (the read group when there is one, since every client must be
/// able to connect: admins then belong to it too; else the admin group).
fn apply_api_access(server: &mut ApiServer, settings: &Settings) -> Result<(), String> {
    let gid = |g: &Option<String>| {
        g.as_deref()
            .and_then(crate::supervisor::spec::settings::host_group_gid)
    };
    let policy = access::AccessPolicy {
        admin_gid: gid(&settings.api.admin_group),
        read_gid: gid(&settings.api.read_group),
    };
    let socket_gid = policy.read_gid.or(policy.admin_gid);
    server
        .set_access(policy, socket_gid)
        .map_err(|e| format!("set the API socket's group: {e}"))
}
