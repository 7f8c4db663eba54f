//! `berth help`, `berth COMMAND --help` and `berth completion bash|zsh`,
//! all made from the command table (commands.rs), so they cannot drift
//! from what the parser accepts.

use std::fmt::Write;

use super::args::Opt;
use super::commands::{COMMANDS, Command, Group};

/// One command's help: usage, what it does, every option, an example.
pub fn command_help(cmd: &Command) -> String {
    let mut out = format!("usage: berth {}", cmd.name);
    if !cmd.options.is_empty() {
        out.push_str(" [OPTIONS]");
    }
    if !cmd.args.is_empty() {
        let _ = write!(out, " {}", cmd.args);
    }
    let _ = write!(out, "\n\n{}.\n", capitalised(cmd.summary));
    const HELP_LABEL: &str = "-h, --help";
    out.push_str("\nOptions:\n");
    let width = cmd
        .options
        .iter()
        .map(|o| label(o).len())
        .chain([HELP_LABEL.len()])
        .max()
        .unwrap_or(0);
    for o in cmd.options {
        let _ = writeln!(out, "  {:width$}  {}", label(o), o.help);
    }
    let _ = writeln!(out, "  {HELP_LABEL:width$}  print this help");
    let _ = write!(out, "\nExample:\n  {}\n", cmd.example);
    out
}

/// "-f, --follow", "    --tail N".
fn label(o: &Opt) -> String {
    let short = o.short.map_or("    ".to_string(), |c| format!("-{c}, "));
    match o.value {
        Some(v) => format!("{short}--{} {v}", o.name),
        None => format!("{short}--{}", o.name),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `berth help`: every command, grouped, one line each.
pub fn overview() -> String {
    let mut out = String::from(
        "usage: berth [--host ssh://[user@]host[:port]] COMMAND [OPTIONS]\n\n\
         --host (or $BERTH_HOST) runs a client command against the daemon of\n\
         another device, through ssh and `berth system dial-stdio` there\n\
         ($BERTH_SSH_OPTS: more ssh options; $BERTH_REMOTE_BIN: berth's path there).\n",
    );
    for (group, title) in [
        (Group::Daemon, "The daemon and this tool"),
        (
            Group::Images,
            "Images (--root: the store directly; else through the daemon)",
        ),
        (
            Group::Containers,
            "Containers (through the daemon's socket: --socket, $BERTH_SOCKET or /run/berth/berth.sock)",
        ),
    ] {
        let _ = write!(out, "\n{title}:\n");
        for c in COMMANDS.iter().filter(|c| c.group == group) {
            let _ = writeln!(out, "  {:<12} {}", c.name, c.summary);
        }
    }
    out.push_str("\n`berth COMMAND --help` explains a command and its options.\n");
    out
}

/// A bash completion script: commands, then each command's options.
pub fn bash_completion() -> String {
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    let mut cases = String::new();
    for c in COMMANDS {
        let _ = writeln!(
            cases,
            "    {}) opts=\"{}\" ;;",
            c.name,
            option_words(c).join(" ")
        );
    }
    format!(
        "# bash completion for berth (berth completion bash)\n\
         _berth() {{\n\
         \x20 local cur=${{COMP_WORDS[COMP_CWORD]}} opts\n\
         \x20 if [ \"$COMP_CWORD\" -eq 1 ]; then\n\
         \x20   COMPREPLY=($(compgen -W \"{} --host\" -- \"$cur\")); return\n\
         \x20 fi\n\
         \x20 case ${{COMP_WORDS[1]}} in\n{cases}\
         \x20   *) opts=\"\" ;;\n\
         \x20 esac\n\
         \x20 case $cur in -*) COMPREPLY=($(compgen -W \"$opts --help\" -- \"$cur\")) ;; *) COMPREPLY=($(compgen -f -- \"$cur\")) ;; esac\n\
         }}\n\
         complete -F _berth berth\n",
        names.join(" ")
    )
}

/// A zsh completion script (`#compdef berth`).
pub fn zsh_completion() -> String {
    let mut out = String::from(
        "#compdef berth\n# zsh completion for berth (berth completion zsh)\n_berth() {\n  local -a commands\n  commands=(\n",
    );
    for c in COMMANDS {
        let _ = writeln!(out, "    '{}:{}'", c.name, quote_zsh(c.summary));
    }
    out.push_str("  )\n  if (( CURRENT == 2 )); then\n    _describe 'command' commands\n    return\n  fi\n  case $words[2] in\n");
    for c in COMMANDS {
        let specs: Vec<String> = c
            .options
            .iter()
            .map(|o| {
                let arg = if o.value.is_some() { ":value:" } else { "" };
                format!("'--{}[{}]{arg}'", o.name, quote_zsh(o.help))
            })
            .collect();
        let _ = writeln!(
            out,
            "    {}) _arguments {} '*:file:_files' ;;",
            c.name,
            specs.join(" ")
        );
    }
    out.push_str("  esac\n}\n_berth \"$@\"\n");
    out
}

fn option_words(c: &Command) -> Vec<String> {
    c.options
        .iter()
        .flat_map(|o| {
            let short = o.short.map(|s| format!("-{s}"));
            std::iter::once(format!("--{}", o.name)).chain(short)
        })
        .collect()
}

/// Text inside zsh's single quotes and [] descriptions.
fn quote_zsh(s: &str) -> String {
    s.replace('\'', "'\\''")
        .replace('[', "(")
        .replace(']', ")")
        .replace(':', " ")
}
