//! The kernel's module index as depmod writes it (modules.dep,
//! modules.softdep, modules.builtin, modules.alias) and the load order of
//! a set of modules: each after the modules it depends on, a softdep's
//! `pre:` modules before it and `post:` ones after. The files come with a
//! kernel, not from berth: every size is bounded and no input panics
//! (fuzz target `modules_dep`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod resolve;
pub use resolve::LoadOrder;

/// Larger than any distribution's modules.dep or modules.alias (Debian's
/// biggest kernel: under 1 MiB and 3 MiB).
pub const MAX_INDEX_BYTES: u64 = 16 << 20;
/// Modules in one index, and dependencies or softdeps on one line.
pub const MAX_MODULES: usize = 1 << 16;
pub const MAX_PER_LINE: usize = 1024;
/// A module's path in modules.dep.
const MAX_PATH: usize = 1024;
/// Dependency chains deeper than this are refused rather than followed.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone)]
pub struct Module {
    /// Relative to the module tree (`kernel/fs/overlayfs/overlay.ko`).
    pub path: String,
    pub deps: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ModuleIndex {
    modules: BTreeMap<String, Module>,
    builtin: BTreeSet<String>,
    pre: BTreeMap<String, Vec<String>>,
    post: BTreeMap<String, Vec<String>>,
    /// Plain aliases only (`crypto-md5` → `md5`); device patterns are not
    /// something a config names.
    aliases: BTreeMap<String, String>,
}

/// A module's name from its file (`kernel/fs/fuse/fuse.ko.xz` → `fuse`),
/// `-` and `_` being the same to the kernel.
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|s| file.strip_suffix(s))
        .unwrap_or(file);
    let ok = !stem.is_empty()
        && stem.len() <= 64
        && stem
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    ok.then(|| stem.replace('-', "_"))
}

fn clean_rel(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The meaningful lines: numbered from 1, comments and blanks dropped.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

impl ModuleIndex {
    /// Reads the index of the module tree `dir` (modules.dep is required;
    /// the others are optional).
    pub fn load(dir: &Path) -> Result<ModuleIndex, String> {
        let read = |name: &str, required: bool| -> Result<String, String> {
            let path = dir.join(name);
            match std::fs::metadata(&path) {
                Err(_) if !required => Ok(String::new()),
                Err(e) => Err(format!(
                    "{}: {e}: --modules names a kernel's module tree (/lib/modules/RELEASE, indexed by depmod)",
                    path.display()
                )),
                Ok(m) if m.len() > MAX_INDEX_BYTES => Err(format!(
                    "{}: larger than {MAX_INDEX_BYTES} bytes",
                    path.display()
                )),
                Ok(_) => std::fs::read(&path)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| format!("{}: {e}", path.display())),
            }
        };
        ModuleIndex::parse(
            &read("modules.dep", true)?,
            &read("modules.softdep", false)?,
            &read("modules.builtin", false)?,
            &read("modules.alias", false)?,
        )
    }

    pub fn parse(dep: &str, softdep: &str, builtin: &str, alias: &str) -> Result<Self, String> {
        let mut index = ModuleIndex::default();
        index.parse_dep(dep)?;
        index.parse_softdep(softdep)?;
        for (n, line) in lines(builtin) {
            let name = module_name(line)
                .ok_or_else(|| format!("modules.builtin:{n}: not a module path: {line:.80}"))?;
            index.builtin.insert(name);
            if index.builtin.len() > MAX_MODULES {
                return Err(format!("modules.builtin: more than {MAX_MODULES} modules"));
            }
        }
        for (_, line) in lines(alias) {
            let mut words = line.split_whitespace();
            let (Some("alias"), Some(from), Some(to), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                continue;
            };
            let plain = |s: &str| module_name(s).is_some_and(|n| n.len() == s.len());
            if plain(from) && plain(to) && index.aliases.len() < MAX_MODULES {
                index
                    .aliases
                    .entry(from.replace('-', "_"))
                    .or_insert_with(|| to.replace('-', "_"));
            }
        }
        Ok(index)
    }

    fn parse_dep(&mut self, text: &str) -> Result<(), String> {
        for (n, line) in lines(text) {
            let at = |what: &str| format!("modules.dep:{n}: {what}: {line:.80}");
            let (path, deps) = line.split_once(':').ok_or_else(|| at("no ':'"))?;
            let path = path.trim();
            let name = module_name(path)
                .filter(|_| clean_rel(path))
                .ok_or_else(|| at("not a relative module path"))?;
            let mut names = Vec::new();
            for d in deps.split_whitespace() {
                if names.len() == MAX_PER_LINE {
                    return Err(at(&format!("more than {MAX_PER_LINE} dependencies")));
                }
                names.push(module_name(d).ok_or_else(|| at("not a module path"))?);
            }
            let module = Module {
                path: path.to_string(),
                deps: names,
            };
            // depmod lists each module once; a repeated one keeps the first.
            self.modules.entry(name).or_insert(module);
            if self.modules.len() > MAX_MODULES {
                return Err(format!("modules.dep: more than {MAX_MODULES} modules"));
            }
        }
        Ok(())
    }

    /// `softdep NAME pre: A B post: C`, as kmod reads it: words before the
    /// first `pre:` or `post:` mean nothing.
    fn parse_softdep(&mut self, text: &str) -> Result<(), String> {
        for (n, line) in lines(text) {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(of) = words.next().and_then(module_name) else {
                return Err(format!("modules.softdep:{n}: no module named: {line:.80}"));
            };
            let mut into = None;
            for w in words {
                match w {
                    "pre:" => into = Some(true),
                    "post:" => into = Some(false),
                    _ => {
                        let (Some(pre), Some(name)) = (into, module_name(w)) else {
                            continue;
                        };
                        let list = match pre {
                            true => self.pre.entry(of.clone()).or_default(),
                            false => self.post.entry(of.clone()).or_default(),
                        };
                        if list.len() == MAX_PER_LINE {
                            return Err(format!(
                                "modules.softdep:{n}: more than {MAX_PER_LINE} softdeps of {of}"
                            ));
                        }
                        list.push(name);
                    }
                }
            }
            if self.pre.len() + self.post.len() > 2 * MAX_MODULES {
                return Err(format!("modules.softdep: more than {MAX_MODULES} modules"));
            }
        }
        Ok(())
    }

    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.get(name)
    }

    /// The module `name` stands for: itself, or what a plain alias names.
    fn canonical(&self, name: &str) -> String {
        let name = name.replace('-', "_");
        match self.modules.contains_key(&name) || self.builtin.contains(&name) {
            true => name,
            false => self.aliases.get(&name).cloned().unwrap_or(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(dep: &str, soft: &str, wanted: &[&str]) -> Result<LoadOrder, String> {
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        ModuleIndex::parse(
            dep,
            soft,
            "kernel/fs/ext4/ext4.ko\n",
            "alias crypto-md5 md5\nalias pci:v00001AF4d* virtio_pci\n",
        )?
        .resolve(&wanted)
    }

    const DEP: &str = "kernel/fs/overlayfs/overlay.ko:\n\
        kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz\n\
        kernel/drivers/virtio/virtio_ring.ko.xz:\n\
        kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz\n\
        kernel/drivers/watchdog/softdog.ko: kernel/drivers/watchdog/watchdog.ko\n\
        kernel/drivers/watchdog/watchdog.ko:\n\
        kernel/crypto/md5.ko:\n\
        kernel/fs/nfsd/nfsd.ko:\n\
        kernel/net/a-b.ko.zst:\n";

    #[test]
    fn dependencies_load_first_each_once() {
        let o = order(
            DEP,
            "",
            &["virtio_blk", "softdog", "virtio-ring", "overlay"],
        )
        .unwrap();
        assert_eq!(
            o.modules,
            [
                "virtio_ring",
                "virtio",
                "virtio_blk",
                "watchdog",
                "softdog",
                "overlay"
            ]
        );
        assert_eq!(order(DEP, "", &["a_b"]).unwrap().modules, ["a_b"]);
    }

    #[test]
    fn softdeps_pre_before_post_after_and_aliases_resolve() {
        let soft = "# comment\nsoftdep nfsd pre: crypto-md5 watchdog post: softdog\nsoftdep overlay ignored-word\n";
        let o = order(DEP, soft, &["nfsd", "overlay"]).unwrap();
        assert_eq!(o.modules, ["md5", "watchdog", "nfsd", "softdog", "overlay"]);
        assert!(o.skipped.is_empty(), "{:?}", o.skipped);
    }

    #[test]
    fn a_missing_softdep_is_skipped_a_missing_dependency_is_named() {
        let o = order(DEP, "softdep overlay pre: nosuch\n", &["overlay"]).unwrap();
        assert_eq!(o.modules, ["overlay"]);
        assert!(o.skipped[0].contains("nosuch"), "{:?}", o.skipped);
        let dep = "kernel/a.ko: kernel/b.ko\n";
        let e = order(dep, "", &["a"]).unwrap_err();
        assert!(e.contains("module b (needed by a)"), "{e}");
        let e = order(DEP, "", &["nosuch_driver"]).unwrap_err();
        assert!(e.contains("nosuch_driver"), "{e}");
        // A dependency with no line of its own is not looked up as an
        // alias (the fuzz target found md5 loaded for `crypto-md5`).
        let dep = format!("{DEP}kernel/k.ko: kernel/crypto-md5.ko\n");
        let e = order(&dep, "", &["k"]).unwrap_err();
        assert!(e.contains("module crypto_md5 (needed by k)"), "{e}");
    }

    #[test]
    fn builtins_are_reported_not_loaded() {
        let o = order(DEP, "", &["ext4", "overlay"]).unwrap();
        assert_eq!(
            (o.modules, o.builtin),
            (vec!["overlay".to_string()], vec!["ext4".to_string()])
        );
    }

    #[test]
    fn a_dependency_cycle_is_refused_a_softdep_cycle_is_broken() {
        let dep = "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko: kernel/a.ko\n";
        let e = order(dep, "", &["a"]).unwrap_err();
        assert!(e.contains("a -> b -> c -> a"), "{e}");
        let dep = "kernel/a.ko:\nkernel/b.ko:\n";
        let soft = "softdep a pre: b\nsoftdep b pre: a\n";
        let o = order(dep, soft, &["a"]).unwrap();
        assert_eq!(o.modules, ["b", "a"]);
        assert_eq!(o.skipped.len(), 1, "{:?}", o.skipped);
        let soft = "softdep a post: a\n";
        assert_eq!(
            order("kernel/a.ko:\n", soft, &["a"]).unwrap().modules,
            ["a"]
        );
    }

    #[test]
    fn nasty_indexes_are_errors_not_panics() {
        for bad in [
            "no colon here\n",
            "/abs/olute.ko:\n",
            "kernel/../x.ko:\n",
            "kernel/x.ko: ../\n",
            "kernel/x y.ko:\n",
        ] {
            assert!(order(bad, "", &[]).is_err(), "{bad:?}");
        }
        let many = format!("kernel/a.ko:{}\n", " kernel/b.ko".repeat(MAX_PER_LINE + 1));
        assert!(order(&many, "", &[]).unwrap_err().contains("more than"));
        // A chain deeper than MAX_DEPTH ends in an error, not a stack overflow.
        let chain: String = (0..MAX_DEPTH + 10)
            .map(|i| format!("kernel/m{i}.ko: kernel/m{}.ko\n", i + 1))
            .collect();
        let chain = format!("{chain}kernel/m{}.ko:\n", MAX_DEPTH + 10);
        assert!(order(&chain, "", &["m0"]).unwrap_err().contains("deeper"));
        assert!(order(DEP, "softdep\nsoftdep !!! pre: a\n", &[]).is_err());
        assert_eq!(module_name("kernel/x/a-b.ko.xz").as_deref(), Some("a_b"));
        assert_eq!(module_name(""), None);
    }
}
