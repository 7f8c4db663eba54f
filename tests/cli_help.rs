//! Every command explains itself: `berth CMD --help` and `-h` exit 0 and
//! name every option the command's parser accepts (read from the same
//! table the parser uses, so a new option without help fails here), with
//! its help text; an unknown option names itself and points to --help
//! (exit 2); `berth help` lists every command; the completion scripts
//! parse and offer every option.

use std::process::Command;

use berth::cli::commands::COMMANDS;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(BERTH)
        .args(args)
        .env_remove("BERTH_SOCKET")
        .output()
        .expect("run berth")
}

#[test]
fn every_command_documents_every_option_it_accepts() {
    for cmd in COMMANDS {
        for flag in ["--help", "-h"] {
            let out = berth(&[cmd.name, flag]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "berth {} {flag}: {:?}", cmd.name, out);
            assert!(
                text.starts_with(&format!("usage: berth {}", cmd.name)),
                "{text}"
            );
            assert!(text.contains("Example:\n  berth "), "{text}");
            for o in cmd.options {
                assert!(
                    !o.help.trim().is_empty(),
                    "berth {} --{}: no help",
                    cmd.name,
                    o.name
                );
                let word = format!("--{}", o.name);
                let line = text
                    .lines()
                    .find(|l| {
                        let label = l.trim_start().split("  ").next().unwrap_or("");
                        label.starts_with('-') && label.split([' ', ',']).any(|w| w == word)
                    })
                    .unwrap_or_else(|| {
                        panic!("berth {} --help does not name {word}:\n{text}", cmd.name)
                    });
                assert!(
                    line.contains(o.help),
                    "berth {} --{}: {line}",
                    cmd.name,
                    o.name
                );
                if let Some(c) = o.short {
                    assert!(line.contains(&format!("-{c}, --{}", o.name)), "{line}");
                }
            }
        }
    }
}

#[test]
fn an_unknown_option_names_itself_and_points_to_help() {
    for cmd in COMMANDS {
        let out = berth(&[cmd.name, "--no-such-option"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "berth {}: {err}", cmd.name);
        assert!(
            err.contains("--no-such-option") && err.contains(&format!("berth {} --help", cmd.name)),
            "{err}"
        );
    }
}

#[test]
fn help_lists_every_command_and_explains_one() {
    let out = berth(&["help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in COMMANDS {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{} ", cmd.name))),
            "berth help does not list {}:\n{text}",
            cmd.name
        );
    }
    let one = berth(&["help", "logs"]);
    assert!(one.status.success());
    assert_eq!(one.stdout, berth(&["logs", "--help"]).stdout);
    // A container's own -h is its business, not berth's.
    let run = berth(&["run", "--socket", "/nonexistent.sock", "img", "sh", "-h"]);
    assert_ne!(run.status.code(), Some(0), "{run:?}");
    assert!(!String::from_utf8_lossy(&run.stdout).starts_with("usage: berth run"));
}

#[test]
fn completion_scripts_parse_and_offer_every_option() {
    let out = berth(&["completion", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout).into_owned();
    let check = Command::new("bash")
        .args(["-n", "-c", &script])
        .status()
        .expect("bash");
    assert!(check.success(), "bash -n refused:\n{script}");
    let zsh = String::from_utf8_lossy(&berth(&["completion", "zsh"]).stdout).into_owned();
    assert!(zsh.starts_with("#compdef berth"));
    for cmd in COMMANDS {
        for o in cmd.options {
            let word = format!("--{}", o.name);
            assert!(
                script.contains(&word) && zsh.contains(&word),
                "{} {word}",
                cmd.name
            );
        }
    }
    assert_eq!(berth(&["completion", "fish"]).status.code(), Some(1));
}
