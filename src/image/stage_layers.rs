//! An image's layers into a staging area, several at once, each streamed
//! in one pass (layer_stream.rs): which layers to unpack and which only
//! to verify, running the streams in parallel, and adopting what they
//! verified (blob, unpacked tree, layer record) into the staging area.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::digest::Digest;
use super::error::ImageError;
use super::layer_record::LayerRecord;
use super::layer_stream::{BlobInput, LayerJob, Progress, stream_layer};
use super::staging::Staging;
use super::unpack::UnpackReport;

/// One layer of an image being imported.
pub struct LayerToAdd<'a> {
    pub blob: Digest,
    pub size: Option<u64>,
    pub diff_id: Digest,
    pub what: String,
    pub input: BlobInput<'a>,
}

type JobResult = Result<(UnpackReport, PathBuf), ImageError>;

impl Staging<'_> {
    /// Streams each layer in, up to `workers` at once. A layer the store
    /// (or this import) already has is only verified, never trusted.
    pub fn add_layers(
        &mut self,
        layers: Vec<LayerToAdd<'_>>,
        workers: usize,
        progress: Progress<'_>,
    ) -> Result<(), ImageError> {
        let jobs = self.plan(layers)?;
        let results = run_jobs(&jobs, workers, progress);
        for (job, result) in jobs.iter().zip(results) {
            let (report, blob_file) = result.unwrap_or_else(|| {
                Err(ImageError::invalid(
                    &job.what,
                    "not streamed: an earlier layer failed",
                ))
            })?;
            self.adopt_blob(&job.blob, &blob_file)?;
            if let Some(target) = &job.target {
                let tree = report.tree.clone().ok_or_else(|| {
                    ImageError::invalid(&job.what, "helper reported no tree digest")
                })?;
                let record = LayerRecord {
                    diff_id: job.diff_id.clone(),
                    tree,
                    entries: report.entries,
                    bytes: report.bytes,
                };
                record.write(&target.with_extension("json"))?;
                self.layers.push(job.diff_id.clone());
            }
        }
        Ok(())
    }

    /// One job per distinct blob: the first layer with a new diff_id is
    /// unpacked into the staging area, the others only verified.
    fn plan<'a>(&self, layers: Vec<LayerToAdd<'a>>) -> Result<Vec<LayerJob<'a>>, ImageError> {
        let mut jobs: Vec<LayerJob<'a>> = Vec::new();
        for l in layers {
            if let Some(twin) = jobs.iter().find(|j| j.blob == l.blob) {
                if twin.diff_id != l.diff_id {
                    return Err(ImageError::invalid(
                        &l.what,
                        format!("listed again with another diff_id than {}", twin.diff_id),
                    ));
                }
                continue; // the same bytes, already on their way
            }
            let known = self.store.has_layer(&l.diff_id)
                || self.layers.contains(&l.diff_id)
                || jobs
                    .iter()
                    .any(|j| j.diff_id == l.diff_id && j.target.is_some());
            let target = if known {
                None
            } else {
                let dir = self.dir.join("layers").join(l.diff_id.hex());
                fs::create_dir(&dir).map_err(ImageError::io("create layer directory", &dir))?;
                Some(dir)
            };
            jobs.push(LayerJob {
                blob: l.blob,
                size: l.size,
                diff_id: l.diff_id,
                what: l.what,
                input: l.input,
                target,
                reserve: self.store.reserve(),
            });
        }
        Ok(jobs)
    }

    /// Makes the verified blob in `file` part of this import: it is already
    /// in the store or staged, or it is linked into the staging area (the
    /// download keeps its own name until the import commits).
    fn adopt_blob(&mut self, blob: &Digest, file: &std::path::Path) -> Result<(), ImageError> {
        if self.store.has_blob(blob) || self.blobs.contains(blob) {
            return Ok(());
        }
        let staged = self.staged_blob_path(blob);
        if file != staged {
            fs::hard_link(file, &staged)
                .map_err(ImageError::io("link blob into staging", &staged))?;
        }
        self.blobs.push(blob.clone());
        Ok(())
    }
}

/// Runs the jobs on up to `workers` threads; once one fails, no new one
/// starts (the import fails anyway), and those not started report None.
fn run_jobs(
    jobs: &[LayerJob<'_>],
    workers: usize,
    progress: Progress<'_>,
) -> Vec<Option<JobResult>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = workers.clamp(1, jobs.len().max(1));
    let mut results: Vec<(usize, JobResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let result = stream_layer(job, progress);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        done.push((i, result));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out: Vec<Option<JobResult>> = jobs.iter().map(|_| None).collect();
    results.sort_by_key(|(i, _)| *i);
    for (i, r) in results {
        out[i] = Some(r);
    }
    out
}
