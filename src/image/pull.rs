//! `berth pull`: an image from a registry into the store, as one import
//! transaction (staging.rs): blobs are downloaded to tmp/downloads/ (kept
//! across a killed pull, resumed with a Range request), verified by size
//! and digest, adopted into staging, unpacked by the confined helpers, and
//! committed. A failed pull leaves the image that was there untouched.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ImageError;
use super::import::{NamedManifest, stage_image};
use super::oci::{Descriptor, Manifest, Platform, host_platform, parse_json};
use super::staging::{Expected, Staging};
use super::store::Store;
use crate::fetch::credentials::{Credentials, auth_file_candidates, lookup};
use crate::fetch::manifest::{FetchedManifest, resolve_image_manifest};
use crate::fetch::reference::Reference;
use crate::fetch::registry::{Registry, RegistryOptions};

const MAX_BLOB_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub auth_file: Option<PathBuf>,
    pub registry: RegistryOptions,
    /// Hosts tried first, in order, each with its own options.
    pub mirrors: Vec<(String, RegistryOptions)>,
    /// Credentials for the registry itself, instead of a config.json's.
    pub credentials: Option<Credentials>,
}

/// Pulls `reference` into the store; `progress` gets one line per event.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    progress: &mut dyn FnMut(String),
) -> Result<NamedManifest, ImageError> {
    let r = Reference::parse(reference)?;
    let platform = opts.platform.clone().unwrap_or_else(host_platform);
    let target = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (mut reg, fetched, recipe) =
        first_answering_registry(&r, opts, &target, &platform, progress)?;
    progress(format!("{}: manifest {}", r, fetched.digest));
    let manifest: Manifest = parse_json(&fetched.bytes, &format!("manifest {}", fetched.digest))?;
    let downloads = store.tmp_dir().join("downloads");
    fs::create_dir_all(&downloads).map_err(ImageError::io("create", &downloads))?;
    let wanted: Vec<&Descriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .filter(|d| !store.has_blob(&d.digest) && !downloads.join(d.digest.hex()).exists())
        .collect();
    download_in_parallel(&recipe, &wanted, &downloads, progress)?;
    let mut staging = Staging::new(store)?;
    let manifest_digest = staging.add_blob_bytes(&fetched.bytes, "manifest")?;
    let record = stage_image(
        &mut staging,
        &manifest,
        manifest_digest,
        |staging, desc, what| {
            fetch_blob(&mut reg, store, staging, &downloads, desc, what, progress)
        },
    )?;
    let name = r.to_string();
    staging.commit(vec![(name.clone(), record.clone())])?;
    let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
    for d in blobs {
        let _ = fs::remove_file(downloads.join(d.digest.hex()));
    }
    progress(format!("{name}: pulled"));
    Ok(NamedManifest {
        reference: name,
        record,
    })
}

/// What it takes to open another connection to the registry that answered.
struct RegistryRecipe {
    reference: Reference,
    options: RegistryOptions,
    creds: Option<Credentials>,
}

/// Blob downloads at once, one registry client per worker (each with its
/// own token): layers are independent, and one slow layer should not hold
/// up the rest.
const DOWNLOAD_WORKERS: usize = 3;

fn download_in_parallel(
    recipe: &RegistryRecipe,
    blobs: &[&Descriptor],
    downloads: &Path,
    progress: &mut dyn FnMut(String),
) -> Result<(), ImageError> {
    if blobs.is_empty() {
        return Ok(());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let workers = DOWNLOAD_WORKERS.min(blobs.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || -> Result<(), ImageError> {
                    let mut reg =
                        Registry::new(&recipe.reference, recipe.creds.clone(), &recipe.options)?;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(desc) = blobs.get(i) else {
                            return Ok(());
                        };
                        let what = format!("blob {}", desc.digest);
                        download(
                            &mut reg,
                            desc,
                            &downloads.join(desc.digest.hex()),
                            &what,
                            &mut |line| {
                                let _ = tx.send(line);
                            },
                        )?;
                    }
                })
            })
            .collect();
        drop(tx);
        for line in rx {
            progress(line);
        }
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(ImageError::invalid(
                    "download",
                    "a download thread panicked",
                ))
            })
        })
    })
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

/// Makes `desc` available in staging: from the store, a finished download,
/// or the registry (resuming a partial download).
fn fetch_blob(
    reg: &mut Registry,
    store: &Store,
    staging: &mut Staging<'_>,
    downloads: &Path,
    desc: &Descriptor,
    what: &str,
    progress: &mut dyn FnMut(String),
) -> Result<(), ImageError> {
    if store.has_blob(&desc.digest) {
        return Ok(());
    }
    let done = downloads.join(desc.digest.hex());
    if !done.exists() {
        download(reg, desc, &done, what, progress)?;
    }
    let file = File::open(&done).map_err(ImageError::io("open download", &done))?;
    let result = staging.add_blob(
        file,
        Expected {
            digest: Some(&desc.digest),
            size: Some(desc.size),
        },
        what,
    );
    if result.is_err() {
        // A download that fails verification must not be offered again.
        let _ = fs::remove_file(&done);
    }
    // A good one stays until the image is committed: a pull killed before
    // then finds it here and does not fetch it again.
    result.map(drop)
}

fn download(
    reg: &mut Registry,
    desc: &Descriptor,
    done: &Path,
    what: &str,
    progress: &mut dyn FnMut(String),
) -> Result<(), ImageError> {
    let partial = done.with_extension("partial");
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > MAX_BLOB_ATTEMPTS {
            return Err(ImageError::invalid(
                what,
                format!("download incomplete after {MAX_BLOB_ATTEMPTS} attempts"),
            ));
        }
        let have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if have > desc.size {
            fs::remove_file(&partial).map_err(ImageError::io("remove", &partial))?;
            continue;
        }
        if have == desc.size {
            fs::rename(&partial, done).map_err(ImageError::io("rename", &partial))?;
            progress(format!("{what}: {0}/{0} bytes", desc.size));
            return Ok(());
        }
        let budget = reg.body_budget(desc.size - have);
        let resp = reg.get(
            &format!("blobs/{}", desc.digest),
            &[],
            Some(have),
            Some(budget),
        )?;
        // A server that ignores Range sends everything again.
        let offset = if resp.status().as_u16() == 206 {
            have
        } else {
            0
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(offset == 0)
            .append(offset != 0)
            .open(&partial)
            .map_err(ImageError::io("open", &partial))?;
        let mut body = resp.into_body().into_reader().take(desc.size - offset);
        let mut report = |n: u64| progress(format!("{what}: {}/{} bytes", offset + n, desc.size));
        match copy_all(&mut body, &mut file, &mut report) {
            Ok(_) => continue,
            Err(e) => {
                progress(format!("{what}: {e}; resuming"));
                std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
            }
        }
    }
}

/// Progress is reported every this many bytes of a blob.
const PROGRESS_STEP_BYTES: u64 = 1 << 20;

fn copy_all(from: &mut dyn Read, to: &mut File, report: &mut dyn FnMut(u64)) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            to.flush()?;
            return Ok(total);
        }
        to.write_all(&buf[..n])?;
        let before = total;
        total += n as u64;
        if before / PROGRESS_STEP_BYTES != total / PROGRESS_STEP_BYTES {
            report(total);
        }
    }
}
