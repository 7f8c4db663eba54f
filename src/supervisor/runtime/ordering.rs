//! Start and stop order from `depends_on`: which dependencies a container
//! still waits for, which dependency failed for good, which containers may
//! be stopped now at shutdown (nothing live depends on them), and cycle
//! detection for validation. Pure functions over the container map.

use std::collections::{BTreeMap, BTreeSet};

use crate::supervisor::runtime::container::{Container, State};
use crate::supervisor::spec::service::{DependCondition, DependsOn};

/// Where a container stands with respect to its dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Waiting for these (name, condition) pairs.
    Waiting(Vec<String>),
    /// A dependency can no longer meet its condition (a setup task failed,
    /// a service stopped for good).
    Failed(String),
}

pub fn readiness(deps: &DependsOn, containers: &BTreeMap<String, Container>) -> Readiness {
    let mut waiting = Vec::new();
    for (name, condition) in deps {
        let Some(dep) = containers.get(name) else {
            return Readiness::Failed(format!("dependency {name} does not exist"));
        };
        match condition_state(dep, *condition) {
            Met::Yes => {}
            Met::NotYet => waiting.push(format!("{name} ({})", describe(*condition))),
            Met::Never(why) => return Readiness::Failed(format!("dependency {name} {why}")),
        }
    }
    if waiting.is_empty() {
        Readiness::Ready
    } else {
        Readiness::Waiting(waiting)
    }
}

enum Met {
    Yes,
    NotYet,
    Never(String),
}

fn describe(c: DependCondition) -> &'static str {
    match c {
        DependCondition::Started => "started",
        DependCondition::Healthy => "healthy",
        DependCondition::CompletedSuccessfully => "completed successfully",
    }
}

fn condition_state(dep: &Container, condition: DependCondition) -> Met {
    let finished = dep.state() == State::Exited;
    match condition {
        DependCondition::Started if dep.state() == State::Running => Met::Yes,
        DependCondition::Healthy if dep.state() == State::Running && dep.health.is_healthy() => {
            Met::Yes
        }
        DependCondition::CompletedSuccessfully if finished && dep.exit_code == Some(0) => Met::Yes,
        DependCondition::CompletedSuccessfully if finished && dep.exit_code.is_some() => {
            Met::Never(format!(
                "failed (exit code {})",
                dep.exit_code.unwrap_or_default()
            ))
        }
        // A service that stopped for good will not start or turn healthy.
        DependCondition::Started | DependCondition::Healthy
            if finished && dep.exit_code.is_some() =>
        {
            Met::Never("exited and is not restarting".into())
        }
        _ => Met::NotYet,
    }
}

/// Containers that may receive their stop signal now during a shutdown:
/// live ones no other live container depends on.
pub fn stoppable(containers: &BTreeMap<String, Container>) -> Vec<String> {
    let needed: BTreeSet<&str> = containers
        .values()
        .filter(|c| c.state().is_live())
        .flat_map(|c| c.spec.depends_on.keys().map(String::as_str))
        .collect();
    containers
        .values()
        .filter(|c| c.state() == State::Running && !needed.contains(c.name.as_str()))
        .map(|c| c.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::spec::cycles::find_cycle;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn cycles_are_found_and_named() {
        assert_eq!(
            find_cycle(&graph(&[("a", &["b"]), ("b", &["c"]), ("c", &[])])),
            None
        );
        assert_eq!(
            find_cycle(&graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(
            find_cycle(&graph(&[("a", &["a"])])),
            Some(vec!["a".into(), "a".into()])
        );
    }
}
