//! `berth mkimage`: a bootable initramfs or GPT disk image from a config
//! directory — berth (static) as /init, the config as /etc/berth, the
//! images preloaded into the store, the kernel modules the config needs
//! and a CA bundle — for one kernel, whose architecture everything else
//! must share. Both formats share the root tree; only how it is written
//! differs (root.rs: a cpio archive; disk.rs: ext4 partitions). The same
//! inputs give the same bytes (docs/images.md).

mod arch;
pub mod cpio;
mod disk;
mod ext4;
mod ext4_times;
pub mod moddep;
mod modules;
mod options;
mod preload;
mod root;
mod stage;

use std::path::{Path, PathBuf};

use self::arch::{Arch, KernelInfo, elf_info, kernel_info, read_head};
use self::cpio::Tree;
use self::options::{Format, Options};
use crate::image::Store;
use crate::supervisor::launch::check::load_config;
use crate::supervisor::spec::settings::{Settings, load_settings};

/// An ELF binary's headers are in its first pages.
const ELF_HEAD_BYTES: u64 = 64 << 10;

pub fn mkimage(argv: &[String]) -> Result<i32, String> {
    let opts = Options::parse(argv)?;
    let root = build_root(&opts)?;
    match opts.format {
        Format::Initramfs => write_initramfs(&opts, &root),
        Format::Disk => write_disk(&opts, root),
    }
}

/// What both formats boot: the root tree (berth as /init, the config,
/// modules, CA bundle; the store too in an initramfs) and the preloaded
/// store, checked against the kernel.
struct Root {
    tree: Tree,
    /// The preloaded store (a disk keeps it on its data partition).
    store: Option<PathBuf>,
    arch: Arch,
    release: String,
    berth: PathBuf,
    modules: usize,
    /// Scratch space beside the output, removed with the Root.
    work: WorkDir,
}

fn build_root(opts: &Options) -> Result<Root, String> {
    let kernel = kernel_info(&opts.kernel)?;
    let berth = static_berth(opts.berth.as_deref(), &kernel.arch, &opts.kernel)?;
    let (settings, specs) = check_config(&opts.config)?;
    if opts.format == Format::Initramfs {
        check_kernel_unpacks(opts, &kernel)?;
    }
    let (modules_dir, release) = module_tree(opts, &kernel)?;
    let index = moddep::ModuleIndex::load(&modules_dir)?;
    let mut added = opts.add_modules.clone();
    if opts.config_drive {
        added.extend(modules::CONFIG_DRIVE_MODULES.map(String::from));
    }
    let wanted = modules::wanted(&settings, &added, &index);
    let plan = modules::plan_with(&index, &modules_dir, &release, &wanted)?;
    plan.notes
        .iter()
        .for_each(|n| warn(&format!("modules: {n}")));
    let settings_json = modules::settings_with_modules(&opts.config, &plan.load_list())?;
    let ca = ca_bundle(opts)?;
    let work = WorkDir::beside(&opts.output)?;
    let store = match opts.images.is_empty() {
        true => {
            preload::missing_images(&specs, &[])
                .iter()
                .for_each(|m| warn(m));
            None
        }
        false => Some(preload_store(opts, &work.0, &kernel.arch, &specs)?),
    };
    let mut tree = Tree::new(opts.epoch);
    let parts = root::Parts {
        berth: &berth,
        config: &opts.config,
        settings: settings_json,
        ca_bundle: ca.as_deref(),
        // A disk image's store is its data partition, not part of the root.
        store: store
            .as_deref()
            .filter(|_| opts.format == Format::Initramfs),
    };
    root::assemble(parts, &mut tree)?;
    modules::install(&plan, &kernel.arch, &mut tree)?;
    Ok(Root {
        tree,
        store,
        arch: kernel.arch,
        release,
        berth,
        modules: plan.files.len(),
        work,
    })
}

fn write_initramfs(opts: &Options, root: &Root) -> Result<i32, String> {
    let tree = &root.tree;
    let written = root::write(tree, opts.compress, &opts.output)?;
    println!(
        "{}: {} bytes ({}; {} bytes of cpio) for linux/{} {}: berth {} as /init, {} modules, {} images",
        opts.output.display(),
        written.file_bytes,
        opts.compress.name(),
        written.archive_bytes,
        root.arch,
        root.release,
        root.berth.display(),
        root.modules,
        opts.images.len()
    );
    let part = |p: &str| tree.file_bytes_under(p);
    println!(
        "  uncompressed: /init {}, /lib/modules {}, /var/lib/berth {} (blobs {}, layers {}), /etc {} bytes",
        part("init"),
        part("lib/modules/"),
        part("var/lib/berth/"),
        part("var/lib/berth/blobs/"),
        part("var/lib/berth/layers/"),
        part("etc/")
    );
    Ok(0)
}

fn write_disk(opts: &Options, mut root: Root) -> Result<i32, String> {
    let input = disk::Input {
        store: root.store.as_deref(),
        epoch: opts.epoch,
        work: &root.work.0,
        output: &opts.output,
    };
    let written = disk::write(&mut root.tree, input)?;
    println!(
        "{}: {} bytes (GPT; {} bytes allocated) for linux/{} {}: berth {} as /init, {} modules, {} images",
        opts.output.display(),
        written.disk_bytes,
        written.allocated_bytes,
        root.arch,
        root.release,
        root.berth.display(),
        root.modules,
        opts.images.len()
    );
    let part = |p: &str| root.tree.file_bytes_under(p);
    println!(
        "  partition 1 berth-root: ext4 {} bytes, read-only (/init {}, /lib/modules {}, /etc {} bytes); partition 2 berth-data: ext4 {} bytes with a journal (the store: {} bytes), grown to the disk's end at first boot",
        written.root_bytes,
        part("init"),
        part("lib/modules/"),
        part("etc/"),
        written.data_bytes,
        written.store_bytes
    );
    Ok(0)
}

fn warn(message: &str) {
    eprintln!("berth mkimage: {message}");
}

/// The berth to boot: `--berth`, else this very program, if it is a
/// static binary for the kernel's architecture.
fn static_berth(given: Option<&Path>, arch: &Arch, kernel: &Path) -> Result<PathBuf, String> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| format!("this berth's own path: {e}"))?,
    };
    let what = match given {
        Some(_) => format!("--berth {}", path.display()),
        None => format!("this berth ({}; or pass --berth BIN)", path.display()),
    };
    let info = elf_info(&read_head(&path, ELF_HEAD_BYTES)?)
        .ok_or_else(|| format!("{what} is not an ELF binary"))?;
    if &info.arch != arch {
        return Err(format!(
            "{what} is built for {} but the kernel {} is for {arch}",
            info.arch,
            kernel.display()
        ));
    }
    if let Some(interp) = info.interpreter {
        return Err(format!(
            "{what} is dynamically linked (interpreter {interp}): as /init it would need that loader and its libraries in the image; build a static berth (scripts/build-release.sh) and pass it with --berth"
        ));
    }
    Ok(path)
}

/// berth.json and every spec, as `berth check` reads them.
fn check_config(dir: &Path) -> Result<(Settings, Vec<(String, String)>), String> {
    let settings = load_settings(dir);
    let specs = load_config(dir);
    let errors: Vec<String> = settings
        .as_ref()
        .err()
        .into_iter()
        .flatten()
        .chain(specs.as_ref().err().into_iter().flatten())
        .map(|e| e.to_string())
        .collect();
    match (settings, specs) {
        (Ok(s), Ok(specs)) => Ok((
            s,
            specs.into_iter().map(|l| (l.name, l.spec.image)).collect(),
        )),
        _ => Err(format!(
            "--config {}:\n{}",
            dir.display(),
            errors.join("\n")
        )),
    }
}

/// Refuses a compression the kernel's config (beside it, as
/// /boot/config-RELEASE) says it cannot unpack.
fn check_kernel_unpacks(opts: &Options, kernel: &KernelInfo) -> Result<(), String> {
    let (Some(option), Some(release)) = (opts.compress.kernel_option(), &kernel.release) else {
        return Ok(());
    };
    let config = opts.kernel.with_file_name(format!("config-{release}"));
    let Ok(text) = std::fs::read_to_string(&config) else {
        return Ok(());
    };
    if text.lines().any(|l| l == format!("# {option} is not set")) {
        return Err(format!(
            "the kernel cannot unpack a {} initramfs ({} says {option} is not set): choose another --compress",
            opts.compress.name(),
            config.display()
        ));
    }
    Ok(())
}

/// The module tree and the release its modules land under in the image.
fn module_tree(opts: &Options, kernel: &KernelInfo) -> Result<(PathBuf, String), String> {
    if let Some(dir) = &opts.modules {
        let release = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("--modules {}: names no directory", dir.display()))?;
        if kernel.release.as_ref().is_some_and(|r| *r != release) {
            warn(&format!(
                "--modules {} is not named after the kernel's release {}: its modules may not load",
                dir.display(),
                kernel.release.as_deref().unwrap_or_default()
            ));
        }
        return Ok((dir.clone(), release));
    }
    let release = kernel.release.clone().ok_or_else(|| {
        format!(
            "cannot tell the release of the kernel {}: pass --modules /lib/modules/RELEASE",
            opts.kernel.display()
        )
    })?;
    Ok((PathBuf::from(format!("/lib/modules/{release}")), release))
}

fn ca_bundle(opts: &Options) -> Result<Option<PathBuf>, String> {
    match &opts.ca_bundle {
        Some(p) if !opts.ca_named && !p.exists() => {
            warn(&format!(
                "no CA bundle at {} (and no --ca-bundle): TLS pulls from inside the image will fail",
                p.display()
            ));
            Ok(None)
        }
        other => Ok(other.clone()),
    }
}

/// Imports the images into a store under `work` and checks them.
fn preload_store(
    opts: &Options,
    work: &Path,
    arch: &Arch,
    specs: &[(String, String)],
) -> Result<PathBuf, String> {
    let dir = work.join("store");
    let store = Store::open(&dir).map_err(|e| e.to_string())?;
    preload::preload(&store, &opts.images, &opts.root, work)?;
    let images = preload::check_platforms(&store, arch)?;
    // mkfs.ext4 -d copies extended attributes; a cpio archive cannot.
    if opts.format == Format::Initramfs {
        preload::check_no_xattrs(&images)?;
    }
    preload::missing_images(specs, &images)
        .iter()
        .for_each(|m| warn(m));
    Ok(dir)
}

/// A scratch directory beside the output (the store can be large; /tmp
/// may be a small tmpfs), removed when the command ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn beside(out: &Path) -> Result<WorkDir, String> {
        let name = out
            .file_name()
            .ok_or_else(|| format!("-o {}: names no file", out.display()))?;
        let dir = out.with_file_name(format!(
            ".{}.mkimage-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
