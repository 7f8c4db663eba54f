//! A spec as the API's read group sees it: the values that commonly carry
//! credentials are replaced by a marker, their names kept (docs/api.md,
//! "Redaction"). Which fields those are is decided here, next to the
//! model: the spec is taken apart field by field with no `..`, so a field
//! added to `Spec` does not compile until it is judged here too.

use crate::supervisor::spec::Spec;
use crate::supervisor::spec::hardening::MountSpec;
use crate::supervisor::spec::service::{HookSpec, HooksSpec};

/// What a redacted value reads as.
pub const REDACTED: &str = "<redacted>";

impl Spec {
    /// This spec with environment values, hook arguments and environment
    /// values, and volume driver options replaced by [`REDACTED`].
    pub fn redacted(&self) -> Spec {
        let mut out = self.clone();
        let Spec {
            // Passed into processes as configuration: redacted.
            env,
            hooks,
            mounts,
            // What runs and how it is isolated: shown. Secrets are named
            // here, never their contents.
            image: _,
            command: _,
            entrypoint: _,
            working_dir: _,
            user: _,
            hostname: _,
            restart: _,
            stop_signal: _,
            stop_timeout: _,
            pull: _,
            group_add: _,
            capabilities: _,
            no_new_privileges: _,
            seccomp: _,
            landlock: _,
            read_only: _,
            cgroupns: _,
            shm_size: _,
            sysctls: _,
            resources: _,
            rlimits: _,
            userns: _,
            depends_on: _,
            healthcheck: _,
            logging: _,
            network: _,
            ports: _,
            secrets: _,
            devices: _,
            device_cgroup_rules: _,
            privileged: _,
            init: _,
            update: _,
        } = &mut out;
        env.values_mut().for_each(|v| *v = REDACTED.into());
        redact_hooks(hooks);
        for m in mounts {
            if let MountSpec::Volume { driver_opts, .. } = m {
                driver_opts.values_mut().for_each(|v| *v = REDACTED.into());
            }
        }
        out
    }
}

/// Arguments after argv[0] and the value of each `KEY=VALUE`.
fn redact_hooks(hooks: &mut HooksSpec) {
    let HooksSpec {
        prestart,
        poststart,
        poststop,
        create_container,
        start_container,
    } = hooks;
    let all = prestart.iter_mut().chain(poststart).chain(poststop);
    for hook in all.chain(create_container).chain(start_container) {
        let HookSpec {
            path: _,
            args,
            env,
            timeout: _,
        } = hook;
        args.iter_mut().skip(1).for_each(|a| *a = REDACTED.into());
        for e in env.iter_mut() {
            let key = e.split_once('=').map_or("", |(k, _)| k);
            *e = format!("{key}={REDACTED}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::supervisor::spec::Spec;

    #[test]
    fn credentials_go_and_their_names_stay() {
        let text = r#"{"image": "x", "command": ["serve"],
            "env": {"DB_PASSWORD": "hunter2", "EMPTY": ""},
            "hooks": {"prestart": [{"path": "/bin/reg", "args": ["reg", "--token=hunter2"],
                                    "env": ["TOKEN=hunter2", "broken"]}]},
            "mounts": [{"type": "volume", "name": "v", "target": "/v", "driver": "cifs",
                        "driver_opts": {"password": "hunter2"}}],
            "secrets": ["db_password"]}"#;
        // Unvalidated: even an entry without '=' is redacted whole.
        let spec: Spec = serde_json::from_str(text).unwrap();
        let shown = serde_json::to_string(&spec.redacted()).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        for kept in [
            r#""DB_PASSWORD":"<redacted>""#,
            r#""EMPTY":"<redacted>""#,
            r#""args":["reg","<redacted>"]"#,
            r#""env":["TOKEN=<redacted>","=<redacted>"]"#,
            r#""driver_opts":{"password":"<redacted>"}"#,
            r#""command":["serve"]"#,
            r#""source":"db_password""#,
        ] {
            assert!(shown.contains(kept), "{kept} not in {shown}");
        }
        assert!(serde_json::to_string(&spec).unwrap().contains("hunter2"));
    }
}
