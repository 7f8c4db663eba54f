//! `berth pull`: an image from a registry into the store, as one import
//! transaction (staging.rs). The manifest and config come first; then
//! every layer streams from the registry through its digest check into a
//! confined extractor in one pass (layer_stream.rs), several at once,
//! the compressed bytes spooled to tmp/downloads/ on the way so that a
//! cut or a killed pull resumes where it stopped. Nothing is committed
//! until every blob and layer verified; a failed pull leaves the image
//! that was there untouched.

use std::fs;
use std::path::Path;

use super::error::ImageError;
use super::import::{MAX_JSON_BYTES, NamedManifest, stage_image};
use super::layer_stream::BlobInput;
use super::oci::{Descriptor, Manifest, Platform, host_platform, parse_json};
use super::pull_blob::{RegistryBlobs, RegistryRecipe};
use super::staging::{Expected, Staging};
use super::store::Store;
use super::{gc, space};
use crate::fetch::credentials::{Credentials, auth_file_candidates, lookup};
use crate::fetch::manifest::{FetchedManifest, resolve_image_manifest};
use crate::fetch::rate::RateLimit;
use crate::fetch::reference::Reference;
use crate::fetch::registry::{Registry, RegistryOptions};

/// Layers streamed at once, each with its own connection: layers are
/// independent, and one slow layer should not hold up the rest.
pub const DOWNLOAD_WORKERS: usize = 3;
/// `berth pull`'s exit code when the failure may pass (sysexits'
/// EX_TEMPFAIL): the daemon tries such a pull again later.
pub const EXIT_TRANSIENT: i32 = 75;
/// `berth pull`'s exit code when a registry certificate is outside its
/// validity while this machine's clock is not synchronized: the clock is
/// the likely culprit, and the daemon tries again as soon as it is set.
pub const EXIT_CLOCK: i32 = 76;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub auth_file: Option<std::path::PathBuf>,
    pub registry: RegistryOptions,
    /// Hosts tried first, in order, each with its own options.
    pub mirrors: Vec<(String, RegistryOptions)>,
    /// Credentials for the registry itself, instead of a config.json's.
    pub credentials: Option<Credentials>,
    /// A cap on the download rate, all streams together (bytes/s).
    pub max_rate: Option<u64>,
    /// Layers downloaded at once (default DOWNLOAD_WORKERS; 1 suits a
    /// metered link: one layer completes before the next begins).
    pub max_parallel: Option<usize>,
    /// Prune what nothing uses when the pull would not fit otherwise.
    pub auto_prune: bool,
}

impl PullOptions {
    fn workers(&self) -> usize {
        self.max_parallel.unwrap_or(DOWNLOAD_WORKERS).max(1)
    }

    /// With a rate cap, each stream may get as little as its share of it:
    /// the stall floor drops to half that, so berth's own throttling never
    /// looks like a stalled registry.
    fn with_rate_floor(&self) -> PullOptions {
        let mut opts = self.clone();
        if let Some(rate) = self.max_rate {
            let floor = Some((rate / self.workers() as u64 / 2).max(1));
            opts.registry.slowest_bytes_per_sec = floor;
            for (_, m) in &mut opts.mirrors {
                m.slowest_bytes_per_sec = floor;
            }
        }
        opts
    }
}

/// Pulls `reference` into the store; `progress` gets one line per event.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    progress: &mut dyn FnMut(String),
) -> Result<NamedManifest, ImageError> {
    let r = Reference::parse(reference)?;
    let opts = &opts.with_rate_floor();
    let platform = opts.platform.clone().unwrap_or_else(host_platform);
    let target = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (reg, fetched, recipe) = first_answering_registry(&r, opts, &target, &platform, progress)?;
    progress(format!("{}: manifest {}", r, fetched.digest));
    let manifest: Manifest = parse_json(&fetched.bytes, &format!("manifest {}", fetched.digest))?;
    ensure_room(store, &manifest, opts.auto_prune, &r.to_string(), progress)?;
    let downloads = store.tmp_dir().join("downloads");
    fs::create_dir_all(&downloads).map_err(ImageError::io("create", &downloads))?;
    let blobs = RegistryBlobs::new(recipe, reg, opts.max_rate.map(RateLimit::new));
    let mut staging = Staging::new(store)?;
    let manifest_digest = staging.add_blob_bytes(&fetched.bytes, "manifest")?;
    // Layer streams report from their own threads; this one prints.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let record = std::thread::scope(|scope| {
        let (staging, manifest, downloads, blobs) = (&mut staging, &manifest, &downloads, &blobs);
        let worker = scope.spawn(move || {
            let send = |line: String| {
                let _ = tx.send(line);
            };
            stage_image(
                staging,
                manifest,
                manifest_digest,
                |staging, desc, what| fetch_config(blobs, downloads, staging, desc, what),
                |_, desc| layer_input(store, downloads, desc, blobs),
                opts.workers(),
                &send,
            )
        });
        for line in rx {
            progress(line);
        }
        worker
            .join()
            .unwrap_or_else(|_| Err(ImageError::invalid("pull", "the pulling thread panicked")))
    })?;
    let name = r.to_string();
    staging.commit(vec![(name.clone(), record.clone())])?;
    remove_downloads(&downloads, manifest.layers.iter().chain([&manifest.config]));
    progress(format!("{name}: pulled"));
    Ok(NamedManifest {
        reference: name,
        record,
    })
}

/// Refuses a pull whose new blobs and their unpacked layers would not
/// fit above the store's reserve — after pruning unused content, when
/// `auto_prune` allows it — before a byte of a layer is fetched.
fn ensure_room(
    store: &Store,
    manifest: &Manifest,
    auto_prune: bool,
    what: &str,
    progress: &mut dyn FnMut(String),
) -> Result<(), ImageError> {
    let new_bytes: u64 = manifest
        .layers
        .iter()
        .chain([&manifest.config])
        .filter(|d| !store.blob_path(&d.digest).exists())
        .map(|d| d.size)
        .sum();
    let need = space::estimate_need(new_bytes);
    let first = space::check_room(store.root(), need, store.reserve(), what);
    if first.is_ok() || !auto_prune {
        return first;
    }
    let freed = gc::prune(store)?;
    progress(format!(
        "{what}: pruned {} blobs and {} layers ({}) to make room",
        freed.blobs,
        freed.layers,
        space::mib(freed.bytes)
    ));
    space::check_room(store.root(), need, store.reserve(), what)
}

/// The config is small: fetched into memory and kept under `downloads`
/// (a pull killed later does not fetch it again), verified as it is staged.
fn fetch_config(
    blobs: &RegistryBlobs,
    downloads: &Path,
    staging: &mut Staging<'_>,
    desc: &Descriptor,
    what: &str,
) -> Result<(), ImageError> {
    let expected = Expected {
        digest: Some(&desc.digest),
        size: Some(desc.size),
    };
    if staging.blob_path(&desc.digest).is_file() {
        return staging.add_blob(std::io::empty(), expected, what).map(drop);
    }
    let done = downloads.join(desc.digest.hex());
    let bytes = match fs::read(&done) {
        Ok(bytes) => bytes,
        Err(_) => {
            let bytes = blobs.fetch_small(&desc.digest, desc.size, MAX_JSON_BYTES)?;
            fs::write(&done, &bytes).map_err(ImageError::io("write download", &done))?;
            bytes
        }
    };
    let result = staging.add_blob(&bytes[..], expected, what).map(drop);
    if result.is_err() {
        // Bytes that failed verification must not be offered again.
        let _ = fs::remove_file(&done);
    }
    result
}

/// A layer blob the store has is read from there (and verified again);
/// any other streams from the registry, spooled under `downloads`.
fn layer_input<'a>(
    store: &Store,
    downloads: &Path,
    desc: &Descriptor,
    blobs: &'a RegistryBlobs,
) -> BlobInput<'a> {
    if store.has_blob(&desc.digest) {
        return BlobInput::Stored(store.blob_path(&desc.digest));
    }
    let done = downloads.join(desc.digest.hex());
    BlobInput::Spooled {
        partial: done.with_extension("partial"),
        done,
        fetch: blobs,
    }
}

/// Once the image is committed its downloads have served: a pull killed
/// before then finds them and does not fetch them again.
fn remove_downloads<'d>(downloads: &Path, blobs: impl Iterator<Item = &'d Descriptor>) {
    for d in blobs {
        let done = downloads.join(d.digest.hex());
        let _ = fs::remove_file(done.with_extension("partial"));
        let _ = fs::remove_file(done);
    }
}

/// The mirrors in order, then the registry itself: the first that serves
/// the manifest serves the whole pull.
fn first_answering_registry(
    r: &Reference,
    opts: &PullOptions,
    target: &str,
    platform: &Platform,
    progress: &mut dyn FnMut(String),
) -> Result<(Registry, FetchedManifest, RegistryRecipe), ImageError> {
    let files = auth_file_candidates(opts.auth_file.as_deref());
    let mut candidates: Vec<(Reference, &RegistryOptions, Option<Credentials>)> = Vec::new();
    for (host, o) in &opts.mirrors {
        let creds = lookup(host, &files).map_err(|e| ImageError::invalid("credentials", e))?;
        candidates.push((
            Reference {
                domain: host.clone(),
                ..r.clone()
            },
            o,
            creds,
        ));
    }
    let creds = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => lookup(&r.domain, &files).map_err(|e| ImageError::invalid("credentials", e))?,
    };
    candidates.push((r.clone(), &opts.registry, creds));
    let last = candidates.len() - 1;
    for (i, (candidate, o, creds)) in candidates.into_iter().enumerate() {
        let recipe = RegistryRecipe {
            reference: candidate.clone(),
            options: o.clone(),
            creds: creds.clone(),
        };
        let attempt = Registry::new(&candidate, creds, o).and_then(|mut reg| {
            let m = resolve_image_manifest(&mut reg, target, platform)?;
            Ok((reg, m))
        });
        match attempt {
            Ok((reg, m)) => return Ok((reg, m, recipe)),
            Err(e) if i < last => {
                progress(format!("mirror {}: {e}; trying the next", candidate.domain))
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the registry itself is always the last candidate")
}
