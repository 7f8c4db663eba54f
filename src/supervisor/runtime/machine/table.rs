//! The state machine as a table for people: every (state, event) pair,
//! run through the real `Lifecycle::handle` under the conditions that
//! change its outcome. docs/lifecycle.md holds its markdown, checked by a
//! test so the document cannot drift from the code.

use super::{Action, Context, Event, Lifecycle, State};
use crate::supervisor::spec::RestartSpec;

/// One row of the documented table.
#[derive(Debug, Clone)]
pub struct Row {
    pub from: State,
    pub event: Event,
    pub to: State,
    pub actions: Vec<Action>,
    /// The condition under which this row applies, when there are several.
    pub when: &'static str,
}

/// Every (state, event) pair under the conditions that change its
/// outcome, for docs/lifecycle.md and the test that keeps it true.
pub fn table() -> Vec<Row> {
    let always = RestartSpec {
        policy: crate::supervisor::spec::RestartPolicy::Always,
        max_retries: None,
    };
    let never = RestartSpec {
        policy: crate::supervisor::spec::RestartPolicy::No,
        max_retries: None,
    };
    let conditions: [(&'static str, &RestartSpec, bool); 3] = [
        ("policy restarts", &always, false),
        ("policy does not restart", &never, false),
        ("shutting down", &always, true),
    ];
    let mut rows = Vec::new();
    for from in State::ALL {
        for event in Event::ALL {
            let mut seen: Vec<Row> = Vec::new();
            for (when, restart, shutting_down) in conditions {
                let ctx = Context {
                    restart,
                    shutting_down,
                    ran_long_enough: false,
                };
                let mut m = Lifecycle::in_state(from);
                let actions = m.handle(event, &ctx);
                let row = Row {
                    from,
                    event,
                    to: m.state(),
                    actions,
                    when,
                };
                if !seen
                    .iter()
                    .any(|r| r.to == row.to && r.actions == row.actions)
                {
                    seen.push(row);
                }
            }
            if seen.len() == 1 {
                seen[0].when = "";
            }
            rows.extend(seen);
        }
    }
    rows
}

/// The table as markdown: only the pairs that do something.
pub fn table_markdown() -> String {
    let mut out =
        String::from("| state | event | when | new state | actions |\n|---|---|---|---|---|\n");
    for r in table() {
        if r.to == r.from && r.actions.is_empty() {
            continue;
        }
        let actions: Vec<&str> = r.actions.iter().map(|a| a.name()).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.from.name(),
            r.event.name(),
            r.when,
            r.to.name(),
            actions.join(", ")
        ));
    }
    out
}
