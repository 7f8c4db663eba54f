//! `berth save`: images from the store, read directly (as `berth import`
//! writes it), into one archive; no daemon is involved, so writing
//! gigabytes never holds up its loop.

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::Path;

use super::args::Args;
use super::commands::SAVE;
use crate::image::Store;
use crate::image::lookup::image_id;
use crate::image::save::{SaveFormat, save_to_path, save_to_writer};
use crate::image::store::DEFAULT_ROOT;

pub fn save(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, SAVE.options)?;
    let usage = "berth save REF... [-o FILE] [--format docker|oci] [--root DIR]";
    if args.positional.is_empty() {
        return Err(format!("usage: {usage}"));
    }
    let format = match args.value("format") {
        None => SaveFormat::Docker,
        Some(f) => SaveFormat::parse(f)
            .ok_or_else(|| format!("--format: {f:?} is neither docker nor oci"))?,
    };
    let store =
        Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())?;
    let refs = &args.positional;
    match args.value("output").filter(|o| *o != "-") {
        Some(dest) => {
            let saved = save_to_path(&store, refs, format, Path::new(dest))
                .map_err(|e| format!("save: {e}"))?;
            for image in saved {
                println!("saved {} ({})", image.reference, image_id(&image.record));
            }
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err("refusing to write an archive to a terminal; use -o FILE".into());
            }
            // Straight to the descriptor: stdout's own buffer is by line.
            let out = stdout
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| format!("standard output: {e}"))?;
            save_to_writer(&store, refs, format, File::from(out))
                .map_err(|e| format!("save: {e}"))?;
        }
    }
    Ok(0)
}
