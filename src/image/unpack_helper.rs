//! Layer unpacking runs in a helper: a child process of the same binary
//! (`berth _unpack`), confined before it reads a byte of the layer —
//! Landlock to the blob (read) and the target directory (write), only the
//! capabilities extraction needs, and a seccomp filter (kernel::sandbox).
//! A helper that crashes or is killed leaves only its staging directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use caps::Capability;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::extract::LayerWriter;
use super::tree_digest::tree_digest;
use super::unpack::{UnpackLimits, UnpackReport, unpack_layer, verify_diff_id};
use crate::kernel::sandbox::{Confinement, confine};

/// The hidden subcommand the helper runs as.
pub const HELPER_COMMAND: &str = "_unpack";

/// What extraction needs and nothing more: owners, modes incl. setuid,
/// files the archive made unreadable, fifos and whiteouts, file caps.
const UNPACK_CAPS: [Capability; 6] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_MKNOD,
    Capability::CAP_SETFCAP,
];

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    blob: PathBuf,
    /// None: only check the blob against `diff_id`.
    target: Option<PathBuf>,
    diff_id: Digest,
    what: String,
    limits: UnpackLimits,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Done(UnpackReport),
    Failed(String),
}

/// Unpacks `blob` into the (new, empty) directory `target` in a helper,
/// then marks its opaque directories.
pub fn unpack_in_helper(
    blob: &Path,
    target: &Path,
    diff_id: &Digest,
    what: &str,
) -> Result<UnpackReport, ImageError> {
    std::fs::create_dir(target).map_err(ImageError::io("create layer directory", target))?;
    let req = Request {
        blob: blob.into(),
        target: Some(target.into()),
        diff_id: diff_id.clone(),
        what: what.into(),
        limits: UnpackLimits::default(),
    };
    let report = call_helper(&req)?;
    let writer = LayerWriter::open(target).map_err(|e| ImageError::invalid(what, e.to_string()))?;
    for dir in &report.opaque_dirs {
        writer
            .set_opaque_xattr(dir)
            .map_err(|e| ImageError::invalid(what, e.to_string()))?;
    }
    Ok(report)
}

/// Checks in a helper that `blob` decompresses to `diff_id`.
pub fn verify_in_helper(blob: &Path, diff_id: &Digest, what: &str) -> Result<(), ImageError> {
    let req = Request {
        blob: blob.into(),
        target: None,
        diff_id: diff_id.clone(),
        what: what.into(),
        limits: UnpackLimits::default(),
    };
    call_helper(&req).map(drop)
}

fn call_helper(req: &Request) -> Result<UnpackReport, ImageError> {
    let exe =
        std::env::current_exe().map_err(ImageError::io("find own executable", "/proc/self/exe"))?;
    let mut child = Command::new(&exe)
        .arg(HELPER_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(ImageError::io("start unpack helper", &exe))?;
    let input =
        serde_json::to_vec(req).map_err(|e| ImageError::invalid(&req.what, e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .map_err(ImageError::io("send request to unpack helper", &exe))?;
    }
    let out = child
        .wait_with_output()
        .map_err(ImageError::io("wait for unpack helper", &exe))?;
    match serde_json::from_slice::<Reply>(&out.stdout) {
        Ok(Reply::Done(report)) if out.status.success() => Ok(report),
        Ok(Reply::Failed(message)) => Err(ImageError::Helper(message)),
        _ => Err(ImageError::invalid(
            &req.what,
            format!("unpack helper died ({})", out.status),
        )),
    }
}

/// The helper's side: read the request, confine, unpack, answer.
pub fn helper_main() -> i32 {
    let mut input = Vec::new();
    let reply = match std::io::stdin().take(1 << 20).read_to_end(&mut input) {
        Err(e) => Reply::Failed(format!("read request: {e}")),
        Ok(_) => match serde_json::from_slice::<Request>(&input) {
            Err(e) => Reply::Failed(format!("bad request: {e}")),
            Ok(req) => run_confined(&req),
        },
    };
    let ok = matches!(reply, Reply::Done(_));
    let _ = serde_json::to_writer(std::io::stdout().lock(), &reply);
    if ok { 0 } else { 1 }
}

fn run_confined(req: &Request) -> Reply {
    let confinement = Confinement {
        read_only: vec![req.blob.clone()],
        read_write: req.target.iter().cloned().collect(),
        keep_caps: if req.target.is_some() {
            UNPACK_CAPS.to_vec()
        } else {
            Vec::new()
        },
    };
    if let Err(e) = confine(&confinement) {
        return Reply::Failed(e.to_string());
    }
    let result = match &req.target {
        Some(target) => unpack_layer(&req.blob, target, &req.diff_id, &req.what, req.limits)
            .and_then(|mut report| {
                report.tree = Some(
                    tree_digest(target).map_err(ImageError::io("hash unpacked layer", target))?,
                );
                Ok(report)
            }),
        None => verify_diff_id(&req.blob, &req.diff_id, &req.what, req.limits)
            .map(|()| UnpackReport::default()),
    };
    match result {
        Ok(report) => Reply::Done(report),
        Err(e) => Reply::Failed(e.to_string()),
    }
}
