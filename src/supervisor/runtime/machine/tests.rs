//! The state machine's tests: every state × event pair, the common lives
//! of a container, and the table in docs/lifecycle.md.

use super::table::{table, table_markdown};
use super::*;
use crate::supervisor::spec::RestartPolicy;
use std::time::Duration;

fn policy(policy: RestartPolicy, max_retries: Option<u32>) -> RestartSpec {
    RestartSpec {
        policy,
        max_retries,
    }
}

fn ctx(restart: &RestartSpec) -> Context<'_> {
    Context {
        restart,
        shutting_down: false,
        ran_long_enough: false,
    }
}

/// Feeds events in order; returns every action taken.
fn feed(m: &mut Lifecycle, events: &[Event], c: &Context<'_>) -> Vec<Action> {
    events.iter().flat_map(|e| m.handle(*e, c)).collect()
}

#[test]
fn every_pair_is_decided_and_removed_is_terminal() {
    for row in table() {
        if row.from == State::Removed {
            assert_eq!(row.to, State::Removed, "{row:?}");
            assert!(row.actions.is_empty(), "{row:?}");
        }
        // A new run only ever begins by entering Creating.
        if row.actions.contains(&Action::Create) {
            assert_eq!(row.to, State::Creating, "{row:?}");
        }
        // Removal happens at rest only.
        if row.actions.contains(&Action::Remove) {
            assert_eq!(row.to, State::Removed, "{row:?}");
            assert!(
                !row.from.is_live() || row.from == State::Cleaning,
                "{row:?}"
            );
        }
        // Nothing running is forgotten: a live state leaves only through
        // an exit (Cleaning) or a stop.
        if matches!(row.from, State::Running | State::Stopping) && !row.to.is_live() {
            panic!("a running container left without exiting: {row:?}");
        }
    }
    // Every pair appears at least once.
    let rows = table();
    for s in State::ALL {
        for e in Event::ALL {
            assert!(rows.iter().any(|r| r.from == s && r.event == e));
        }
    }
}

#[test]
fn a_crash_loop_backs_off_and_counts() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    assert_eq!(m.handle(Event::Start, &c), [Action::CheckGates]);
    assert_eq!(m.handle(Event::Ready, &c), [Action::Create]);
    assert_eq!(m.state(), State::Creating);
    assert_eq!(m.run_id(), 1);
    assert_eq!(m.handle(Event::Spawned, &c), [Action::RecordStart]);
    assert_eq!(m.handle(Event::Exited(1), &c), [Action::Cleanup]);
    assert_eq!(m.state(), State::Cleaning);
    let a = m.handle(Event::CleanedUp, &c);
    assert_eq!(a, [Action::ScheduleRestart(Duration::from_millis(100))]);
    assert_eq!((m.state(), m.restarts()), (State::Restarting, 1));
    feed(
        &mut m,
        &[Event::BackoffDone, Event::Ready, Event::Spawned],
        &c,
    );
    feed(&mut m, &[Event::Exited(1)], &c);
    let a = m.handle(Event::CleanedUp, &c);
    assert_eq!(a, [Action::ScheduleRestart(Duration::from_millis(200))]);
    assert_eq!((m.restarts(), m.run_id()), (2, 2));
}

#[test]
fn on_failure_stops_after_max_retries() {
    let p = policy(RestartPolicy::OnFailure, Some(1));
    let c = ctx(&p);
    let mut m = Lifecycle::new();
    feed(
        &mut m,
        &[Event::Start, Event::Ready, Event::Spawned, Event::Exited(3)],
        &c,
    );
    feed(&mut m, &[Event::CleanedUp], &c);
    assert_eq!(m.state(), State::Restarting);
    feed(
        &mut m,
        &[Event::BackoffDone, Event::Ready, Event::Spawned],
        &c,
    );
    feed(&mut m, &[Event::Exited(3)], &c);
    assert_eq!(m.handle(Event::CleanedUp, &c), [Action::Finish]);
    assert_eq!(m.state(), State::Exited);
}

#[test]
fn a_stop_is_never_followed_by_a_restart() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::Ready, Event::Spawned], &c);
    assert_eq!(m.handle(Event::Stop, &c), [Action::SignalStop]);
    assert_eq!(m.handle(Event::KillTimeout, &c), [Action::Kill]);
    feed(&mut m, &[Event::Exited(137)], &c);
    assert_eq!(m.handle(Event::CleanedUp, &c), [Action::Finish]);
    assert_eq!(m.state(), State::Exited);
    assert!(m.stop_requested());
    // A stale restart timer of that run changes nothing.
    assert!(m.handle(Event::BackoffDone, &c).is_empty());
    assert_eq!(m.state(), State::Exited);
}

#[test]
fn a_stop_while_creating_aborts_and_rests() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::Ready], &c);
    assert_eq!(m.handle(Event::Stop, &c), [Action::AbortCreate]);
    assert_eq!(m.state(), State::Creating);
    assert_eq!(m.handle(Event::StartFailed(125), &c), [Action::Cleanup]);
    assert_eq!(m.handle(Event::CleanedUp, &c), [Action::Finish]);
    assert_eq!(m.state(), State::Exited);
}

#[test]
fn spawned_after_a_stop_is_killed_at_once() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::Ready, Event::Stop], &c);
    assert_eq!(
        m.handle(Event::Spawned, &c),
        [Action::RecordStart, Action::Kill]
    );
    assert_eq!(m.state(), State::Stopping);
}

#[test]
fn restart_runs_again_with_the_pending_spec() {
    let never = policy(RestartPolicy::No, None);
    let c = ctx(&never);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::Ready, Event::Spawned], &c);
    assert_eq!(m.handle(Event::Restart, &c), [Action::SignalStop]);
    feed(&mut m, &[Event::Exited(143)], &c);
    let a = m.handle(Event::CleanedUp, &c);
    assert_eq!(
        a,
        [
            Action::TakePendingSpec,
            Action::ScheduleRestart(Duration::from_millis(100))
        ]
    );
    assert_eq!(m.restarts(), 1);
}

#[test]
fn dependencies_wait_then_fail_without_retry() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::DependenciesPending], &c);
    assert_eq!(m.state(), State::Waiting);
    assert_eq!(m.handle(Event::DependenciesFailed, &c), [Action::Finish]);
    assert_eq!(m.state(), State::Exited);
}

#[test]
fn a_failed_pull_follows_the_restart_policy() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    assert_eq!(
        feed(&mut m, &[Event::Start, Event::ImageMissing], &c),
        [Action::CheckGates, Action::StartPull]
    );
    assert_eq!(m.state(), State::Pulling);
    let a = m.handle(Event::PullFailed, &c);
    assert!(matches!(a[..], [Action::ScheduleRestart(_)]));
    feed(&mut m, &[Event::BackoffDone, Event::ImageMissing], &c);
    assert_eq!(m.handle(Event::PullDone, &c), [Action::CheckGates]);
    assert_eq!(m.handle(Event::Ready, &c), [Action::Create]);
}

#[test]
fn shutdown_rests_everything_and_refuses_starts() {
    let always = policy(RestartPolicy::Always, None);
    let mut c = ctx(&always);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::Ready, Event::Spawned], &c);
    c.shutting_down = true;
    feed(&mut m, &[Event::Stop, Event::Exited(0)], &c);
    assert_eq!(m.handle(Event::CleanedUp, &c), [Action::Finish]);
    assert!(m.handle(Event::Start, &c).is_empty());
    assert_eq!(m.state(), State::Exited);
}

#[test]
fn remove_waits_for_the_run_to_end() {
    let always = policy(RestartPolicy::Always, None);
    let c = ctx(&always);
    let mut m = Lifecycle::new();
    feed(&mut m, &[Event::Start, Event::Ready, Event::Spawned], &c);
    assert_eq!(m.handle(Event::Remove, &c), [Action::SignalStop]);
    feed(&mut m, &[Event::Exited(0)], &c);
    assert_eq!(
        m.handle(Event::CleanedUp, &c),
        [Action::Finish, Action::Remove]
    );
    assert_eq!(m.state(), State::Removed);
}

/// docs/lifecycle.md holds the table generated from the code; run with
/// BERTH_REGENERATE_DOCS=1 to rewrite it after changing the machine.
#[test]
fn docs_table_matches_the_code() {
    const BEGIN: &str = "<!-- BEGIN GENERATED TABLE -->\n";
    const END: &str = "<!-- END GENERATED TABLE -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lifecycle.md");
    let text = std::fs::read_to_string(&path).expect("docs/lifecycle.md");
    let (head, rest) = text.split_once(BEGIN).expect("begin marker");
    let (_, tail) = rest.split_once(END).expect("end marker");
    let wanted = format!("{head}{BEGIN}{}{END}{tail}", table_markdown());
    if std::env::var_os("BERTH_REGENERATE_DOCS").is_some() {
        std::fs::write(&path, &wanted).expect("write docs/lifecycle.md");
        return;
    }
    assert!(
        text == wanted,
        "docs/lifecycle.md is out of date: run BERTH_REGENERATE_DOCS=1 cargo test --lib docs_table"
    );
}
