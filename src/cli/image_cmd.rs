//! `berth import` and `berth images`: the store, without a daemon.

use std::path::Path;

use super::args::Args;
use super::table;
use crate::image::Store;
use crate::image::import::import_path;
use crate::image::lookup::{image_id, list};
use crate::image::store::DEFAULT_ROOT;

pub fn import(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, &[("name", true), ("root", true)])?;
    let [path] = args.expect_positional(1, "berth import PATH [--name REF] [--root DIR]")? else {
        unreachable!()
    };
    let store =
        Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())?;
    let imported = import_path(&store, Path::new(path), args.value("name"))
        .map_err(|e| format!("import {path}: {e}"))?;
    for image in imported {
        println!("imported {} ({})", image.reference, image_id(&image.record));
    }
    Ok(0)
}

pub fn images(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(argv, &[("json", false), ("root", true)])?;
    args.expect_positional(0, "berth images [--json] [--root DIR]")?;
    let store =
        Store::open(args.value("root").unwrap_or(DEFAULT_ROOT)).map_err(|e| e.to_string())?;
    let images = list(&store).map_err(|e| e.to_string())?;
    if args.switch("json") {
        let rows: Vec<_> = images
            .iter()
            .map(|i| serde_json::json!({"reference": i.reference, "id": image_id(&i.record).to_string(), "manifest": i.record.manifest.to_string(), "size": i.size}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.reference.clone(),
                image_id(&i.record).short().to_string(),
                human_size(i.size),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["REFERENCE", "IMAGE ID", "SIZE"], &rows)
    );
    Ok(0)
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(super::human_size(999), "999B");
        assert_eq!(super::human_size(1_035_152), "1.0MB");
    }
}
