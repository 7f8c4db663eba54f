//! The load order of modules: each after the modules it depends on
//! (modules.dep), a softdep's `pre:` modules before it and `post:` ones
//! after, each once. A dependency that is missing or part of a cycle is an
//! error naming it; a softdep that cannot be had is skipped, as modprobe
//! skips it.

use std::collections::BTreeSet;

use super::{MAX_DEPTH, ModuleIndex};

/// What `resolve` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadOrder {
    /// Module names, each after what it needs.
    pub modules: Vec<String>,
    /// Asked for (or needed) but built into the kernel: nothing to load.
    pub builtin: Vec<String>,
    /// Softdeps that were skipped, and why (modprobe skips them too).
    pub skipped: Vec<String>,
}

impl ModuleIndex {
    /// The load order of `wanted` (module names, in the order given).
    pub fn resolve(&self, wanted: &[String]) -> Result<LoadOrder, String> {
        let mut walk = Walk {
            index: self,
            out: LoadOrder::default(),
            done: BTreeSet::new(),
            stack: Vec::new(),
        };
        for name in wanted {
            walk.visit(name, None)?;
        }
        Ok(walk.out)
    }
}

struct Walk<'a> {
    index: &'a ModuleIndex,
    out: LoadOrder,
    done: BTreeSet<String>,
    /// The modules being visited, outermost first.
    stack: Vec<String>,
}

impl Walk<'_> {
    /// Visits `name`; `soft_of` names the module whose softdep it is: then
    /// what goes wrong skips it instead of failing the whole order.
    fn visit(&mut self, name: &str, soft_of: Option<&str>) -> Result<(), String> {
        let depth = self.stack.len();
        let result = self.visit_inner(name);
        match (result, soft_of) {
            (Ok(()), _) => Ok(()),
            (Err(e), Some(of)) => {
                self.stack.truncate(depth);
                self.out
                    .skipped
                    .push(format!("softdep {name} of {of}: {e}"));
                Ok(())
            }
            (Err(e), None) => Err(e),
        }
    }

    fn visit_inner(&mut self, name: &str) -> Result<(), String> {
        let index = self.index;
        let name = index.canonical(name);
        if self.done.contains(&name) {
            return Ok(());
        }
        if index.builtin.contains(&name) {
            self.done.insert(name.clone());
            self.out.builtin.push(name);
            return Ok(());
        }
        if let Some(at) = self.stack.iter().position(|s| *s == name) {
            let mut cycle = self.stack[at..].to_vec();
            cycle.push(name);
            return Err(format!("dependency cycle: {}", cycle.join(" -> ")));
        }
        let Some(module) = index.module(&name) else {
            return Err(match self.stack.last() {
                Some(by) => {
                    format!("module {name} (needed by {by}) is neither in modules.dep nor built in")
                }
                None => format!("module {name} is neither in modules.dep nor built in"),
            });
        };
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "module {name}: dependencies nested deeper than {MAX_DEPTH}"
            ));
        }
        self.stack.push(name.clone());
        let none = Vec::new();
        for pre in index.pre.get(&name).unwrap_or(&none) {
            self.visit(pre, Some(&name))?;
        }
        for dep in &module.deps {
            // A dependency is a file modules.dep lists, by its own name:
            // modprobe loads that file and never looks it up as an alias.
            if index.module(dep).is_none() && !index.builtin.contains(dep) {
                return Err(format!(
                    "module {dep} (needed by {name}) is neither in modules.dep nor built in"
                ));
            }
            self.visit(dep, None)?;
        }
        self.stack.pop();
        self.done.insert(name.clone());
        self.out.modules.push(name.clone());
        for post in index.post.get(&name).unwrap_or(&none) {
            self.visit(post, Some(&name))?;
        }
        Ok(())
    }
}
