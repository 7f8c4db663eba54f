//! Layer unpacking runs in a helper: a child process of the same binary
//! (`berth _unpack REQUEST`), confined before it reads a byte of the
//! layer — Landlock to the target directory (write) and nothing else,
//! only the capabilities extraction needs, and a seccomp filter
//! (kernel::sandbox). The layer's compressed bytes arrive on its stdin as
//! they are downloaded or read; it answers on stdout. A helper that
//! crashes or is killed leaves only its staging directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use caps::Capability;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::extract::LayerWriter;
use super::unpack::{UnpackLimits, UnpackReport, unpack_stream, verify_stream};
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

/// The pipe to a helper holds this much, so that the feeding side and
/// the helper do not wake each other for every 64 KiB (pipe(7),
/// F_SETPIPE_SZ; the default maximum for an unprivileged pipe is 1 MiB).
const PIPE_BYTES: i32 = 1 << 20;

/// A reply lists the layer's opaque directories, so it can be long, but
/// not longer than this: past it the helper is taken for broken.
const MAX_REPLY_BYTES: u64 = 16 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// None: only check the stream against `diff_id`.
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

/// A running helper, fed one layer's compressed bytes through `input`.
pub struct LayerHelper {
    child: Child,
    input: Option<ChildStdin>,
    target: Option<PathBuf>,
    what: String,
}

impl LayerHelper {
    /// Starts a helper unpacking into the new, empty directory `target`,
    /// or (None) only verifying the stream against `diff_id`.
    pub fn spawn(
        target: Option<&Path>,
        diff_id: &Digest,
        what: &str,
        reserve: u64,
    ) -> Result<LayerHelper, ImageError> {
        let req = Request {
            target: target.map(Path::to_path_buf),
            diff_id: diff_id.clone(),
            what: what.into(),
            limits: UnpackLimits {
                reserve_bytes: reserve,
                ..UnpackLimits::default()
            },
        };
        let arg =
            serde_json::to_string(&req).map_err(|e| ImageError::invalid(what, e.to_string()))?;
        let exe = std::env::current_exe()
            .map_err(ImageError::io("find own executable", "/proc/self/exe"))?;
        let mut child = Command::new(&exe)
            .arg(HELPER_COMMAND)
            .arg(arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(ImageError::io("start unpack helper", &exe))?;
        let input = child.stdin.take();
        if let Some(pipe) = &input {
            // Best effort: a smaller pipe only costs more wake-ups.
            let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
        }
        Ok(LayerHelper {
            child,
            input,
            target: req.target,
            what: req.what,
        })
    }

    /// Where the compressed bytes go, until `finish`.
    pub fn input(&mut self) -> Option<&mut ChildStdin> {
        self.input.as_mut()
    }

    /// Ends the input, waits for the verdict and, for an unpacked layer,
    /// marks its opaque directories (trusted.* needs CAP_SYS_ADMIN, which
    /// the helper does not have).
    pub fn finish(mut self) -> Result<UnpackReport, ImageError> {
        drop(self.input.take());
        let mut out = Vec::new();
        if let Some(stdout) = self.child.stdout.take() {
            let _ = stdout.take(MAX_REPLY_BYTES).read_to_end(&mut out);
        }
        let status = self
            .child
            .wait()
            .map_err(ImageError::io("wait for unpack helper", "_unpack"))?;
        let report = match serde_json::from_slice::<Reply>(&out) {
            Ok(Reply::Done(report)) if status.success() => report,
            Ok(Reply::Failed(message)) => return Err(ImageError::Helper(message)),
            _ => {
                return Err(ImageError::invalid(
                    &self.what,
                    format!("unpack helper died ({status})"),
                ));
            }
        };
        if let Some(target) = &self.target {
            let writer = LayerWriter::open(target)
                .map_err(|e| ImageError::invalid(&self.what, e.to_string()))?;
            for dir in &report.opaque_dirs {
                writer
                    .set_opaque_xattr(dir)
                    .map_err(|e| ImageError::invalid(&self.what, e.to_string()))?;
            }
        }
        Ok(report)
    }
}

impl Drop for LayerHelper {
    /// A helper abandoned half-way (an error on the feeding side) is
    /// stopped rather than left to read a pipe nobody writes.
    fn drop(&mut self) {
        if self.input.take().is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The helper's side: read the request, confine, unpack stdin, answer.
pub fn helper_main(args: &[String]) -> i32 {
    let reply = match args.first().map(|a| serde_json::from_str::<Request>(a)) {
        None => Reply::Failed("unpack helper: no request".into()),
        Some(Err(e)) => Reply::Failed(format!("unpack helper: bad request: {e}")),
        Some(Ok(req)) => run_confined(&req),
    };
    let ok = matches!(reply, Reply::Done(_));
    let _ = serde_json::to_writer(std::io::stdout().lock(), &reply);
    if ok { 0 } else { 1 }
}

fn run_confined(req: &Request) -> Reply {
    let confinement = Confinement {
        // The layer arrives on stdin, already open: nothing to read by path.
        read_only: Vec::new(),
        read_write: req.target.iter().cloned().collect(),
        keep_caps: if req.target.is_some() {
            UNPACK_CAPS.to_vec()
        } else {
            Vec::new()
        },
    };
    // Before any thread exists: Landlock, the capability sets and seccomp
    // apply to the calling thread, and threads started later inherit them.
    if let Err(e) = confine(&confinement) {
        return Reply::Failed(e.to_string());
    }
    let input = std::io::stdin();
    let result = match &req.target {
        Some(target) => unpack_stream(input, target, &req.diff_id, &req.what, req.limits),
        None => verify_stream(input, &req.diff_id, &req.what, req.limits)
            .map(|()| UnpackReport::default()),
    };
    match result {
        Ok(report) => Reply::Done(report),
        Err(e) => Reply::Failed(e.to_string()),
    }
}
