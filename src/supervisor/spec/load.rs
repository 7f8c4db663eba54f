//! Loading the config directory: every DIR/containers/NAME.json, all
//! validated before anything may start. One bad file rejects the set.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::supervisor::spec::Spec;
use crate::supervisor::spec::cycles::find_cycle;
use crate::supervisor::spec::position::locate;
use crate::supervisor::spec::service::DependCondition;
use crate::supervisor::spec::validate::{SpecError, parse_spec, valid_container_name};

/// Spec files larger than this are refused unread.
const MAX_SPEC_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct LoadedSpec {
    pub name: String,
    pub path: PathBuf,
    pub spec: Spec,
}

/// Reads and validates every spec; returns all of them, or every error.
pub fn load_config_dir(dir: &Path) -> Result<Vec<LoadedSpec>, Vec<SpecError>> {
    let containers = dir.join("containers");
    let whole_dir_error = |message: String| {
        vec![SpecError {
            file: containers.clone(),
            line: 1,
            col: 1,
            field: None,
            message,
        }]
    };
    let entries = fs::read_dir(&containers)
        .map_err(|e| whole_dir_error(format!("cannot read directory: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_spec_file(&path) {
            Ok(s) => specs.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        errors = check_dependencies(&specs);
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

/// Across files: every dependency exists, "healthy" ones have a health
/// check, and no cycle (reported on each container along it).
fn check_dependencies(specs: &[LoadedSpec]) -> Vec<SpecError> {
    let by_name: BTreeMap<&str, &LoadedSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut errors = Vec::new();
    for s in specs {
        for (dep, condition) in &s.spec.depends_on {
            let problem = match by_name.get(dep.as_str()) {
                None => Some(format!("no container {dep:?} in this directory")),
                Some(_) if dep == &s.name => Some("a container cannot depend on itself".into()),
                Some(d)
                    if *condition == DependCondition::Healthy && d.spec.healthcheck.is_none() =>
                {
                    Some(format!(
                        "{dep} has no healthcheck, so it can never be healthy"
                    ))
                }
                Some(_) => None,
            };
            if let Some(message) = problem {
                errors.push(spec_error_at(s, &["depends_on", dep], message));
            }
        }
    }
    let graph: BTreeMap<String, Vec<String>> = specs
        .iter()
        .map(|s| (s.name.clone(), s.spec.depends_on.keys().cloned().collect()))
        .collect();
    if errors.is_empty()
        && let Some(cycle) = find_cycle(&graph)
    {
        let shown = cycle.join(" -> ");
        for pair in cycle.windows(2) {
            if let Some(s) = by_name.get(pair[0].as_str()) {
                errors.push(spec_error_at(
                    s,
                    &["depends_on", &pair[1]],
                    format!("dependency cycle: {shown}"),
                ));
            }
        }
    }
    errors
}

/// An error located at `field` in the spec's own file.
fn spec_error_at(s: &LoadedSpec, field: &[&str], message: String) -> SpecError {
    let text = fs::read_to_string(&s.path).unwrap_or_default();
    let (line, col) = locate(&text, field).unwrap_or((1, 1));
    SpecError {
        file: s.path.clone(),
        line,
        col,
        field: Some(field.join(".")),
        message,
    }
}

pub fn load_spec_file(path: &Path) -> Result<LoadedSpec, Vec<SpecError>> {
    let at_start = |message: String| {
        vec![SpecError {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            field: None,
            message,
        }]
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !valid_container_name(&name) {
        return Err(at_start(format!(
            "container name {name:?} (the file name) must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )));
    }
    let mut text = String::new();
    let file = fs::File::open(path).map_err(|e| at_start(format!("cannot open: {e}")))?;
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| at_start(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(at_start(format!("larger than {MAX_SPEC_BYTES} bytes")));
    }
    let spec = parse_spec(path, &text)?;
    Ok(LoadedSpec {
        name,
        path: path.to_path_buf(),
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_file_rejects_the_set_and_every_error_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("containers");
        fs::create_dir(&c).unwrap();
        fs::write(c.join("good.json"), r#"{"image": "busybox"}"#).unwrap();
        fs::write(c.join("bad.json"), "{\"image\": 1}").unwrap();
        fs::write(c.join("worse.json"), "{").unwrap();
        fs::write(c.join("notes.txt"), "ignored").unwrap();
        let errs = load_config_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0]
                .to_string()
                .contains("bad.json:1:2: image: invalid type"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1]
                .to_string()
                .contains("worse.json:1:1: EOF while parsing"),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn good_files_load_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("containers");
        fs::create_dir(&c).unwrap();
        fs::write(c.join("b.json"), r#"{"image": "busybox"}"#).unwrap();
        fs::write(c.join("a.json"), r#"{"image": "busybox"}"#).unwrap();
        let names: Vec<_> = load_config_dir(dir.path())
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
