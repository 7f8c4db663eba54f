//! The rows of the table: one function per state, each deciding every
//! event (no catch-all arm, so a new event does not compile until every
//! state has placed it).

use super::{Action, Context, EXIT_CANNOT_START, Event, Lifecycle, Outcome, State};

impl Lifecycle {
    /// Created (never run here) or Exited (ran, not running again).
    pub(super) fn at_rest(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::Start | E::Restart => self.start_request(ctx),
            E::DependenciesPending | E::DependenciesFailed | E::ImageMissing | E::Ready => {
                self.gate_answer(event, ctx)
            }
            E::Stop => {
                self.stop_requested = true;
                let done = self.state == State::Created;
                (
                    State::Exited,
                    if done {
                        vec![Action::Finish]
                    } else {
                        Vec::new()
                    },
                )
            }
            E::Remove => (State::Removed, vec![Action::Remove]),
            E::PullDone
            | E::PullFailed
            | E::Spawned
            | E::StartFailed(_)
            | E::Exited(_)
            | E::KillTimeout
            | E::BackoffDone
            | E::CleanedUp => self.stay(),
        }
    }

    pub(super) fn waiting(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::Start | E::Restart => self.start_request(ctx),
            E::DependenciesPending | E::DependenciesFailed | E::ImageMissing | E::Ready => {
                self.gate_answer(event, ctx)
            }
            E::Stop => self.rest_now(Vec::new()),
            E::Remove => (State::Removed, vec![Action::Finish, Action::Remove]),
            E::PullDone
            | E::PullFailed
            | E::Spawned
            | E::StartFailed(_)
            | E::Exited(_)
            | E::KillTimeout
            | E::BackoffDone
            | E::CleanedUp => self.stay(),
        }
    }

    pub(super) fn pulling(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::PullDone => (State::Pulling, vec![Action::CheckGates]),
            E::PullFailed => {
                self.last_exit = Some(EXIT_CANNOT_START);
                self.after_run(ctx)
            }
            // Already pulling: the pull's end decides.
            E::ImageMissing | E::Start | E::Restart => self.stay(),
            E::DependenciesPending | E::DependenciesFailed | E::Ready => {
                self.gate_answer(event, ctx)
            }
            E::Stop => self.rest_now(vec![Action::LeavePull]),
            E::Remove => (
                State::Removed,
                vec![Action::LeavePull, Action::Finish, Action::Remove],
            ),
            E::Spawned
            | E::StartFailed(_)
            | E::Exited(_)
            | E::KillTimeout
            | E::BackoffDone
            | E::CleanedUp => self.stay(),
        }
    }

    pub(super) fn creating(&mut self, event: Event, _ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            // Stopped while its last step ran: it never gets to run.
            E::Spawned if self.stop_requested || self.restart_requested => {
                (State::Stopping, vec![Action::RecordStart, Action::Kill])
            }
            E::Spawned => (State::Running, vec![Action::RecordStart]),
            E::StartFailed(code) | E::Exited(code) => {
                self.last_exit = Some(code);
                (State::Cleaning, vec![Action::Cleanup])
            }
            E::Stop => {
                self.ask_stop();
                (State::Creating, vec![Action::AbortCreate])
            }
            E::Restart => {
                self.restart_requested = true;
                (State::Creating, vec![Action::AbortCreate])
            }
            E::Remove => {
                self.remove_requested = true;
                self.ask_stop();
                (State::Creating, vec![Action::AbortCreate])
            }
            E::Start
            | E::DependenciesPending
            | E::DependenciesFailed
            | E::ImageMissing
            | E::Ready
            | E::PullDone
            | E::PullFailed
            | E::KillTimeout
            | E::BackoffDone
            | E::CleanedUp => self.stay(),
        }
    }

    pub(super) fn running(&mut self, event: Event, _ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::Exited(code) => {
                self.last_exit = Some(code);
                (State::Cleaning, vec![Action::Cleanup])
            }
            E::Stop => {
                self.ask_stop();
                (State::Stopping, vec![Action::SignalStop])
            }
            E::Restart => {
                self.ask_restart();
                (State::Stopping, vec![Action::SignalStop])
            }
            E::Remove => {
                self.remove_requested = true;
                self.ask_stop();
                (State::Stopping, vec![Action::SignalStop])
            }
            E::Start
            | E::DependenciesPending
            | E::DependenciesFailed
            | E::ImageMissing
            | E::Ready
            | E::PullDone
            | E::PullFailed
            | E::Spawned
            | E::StartFailed(_)
            | E::KillTimeout
            | E::BackoffDone
            | E::CleanedUp => self.stay(),
        }
    }

    pub(super) fn stopping(&mut self, event: Event, _ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::Exited(code) => {
                self.last_exit = Some(code);
                (State::Cleaning, vec![Action::Cleanup])
            }
            E::KillTimeout => (State::Stopping, vec![Action::Kill]),
            E::Stop => {
                self.ask_stop();
                self.stay()
            }
            // Run again once the current run has ended.
            E::Start | E::Restart => {
                self.ask_restart();
                self.stay()
            }
            E::Remove => {
                self.remove_requested = true;
                self.ask_stop();
                self.stay()
            }
            E::DependenciesPending
            | E::DependenciesFailed
            | E::ImageMissing
            | E::Ready
            | E::PullDone
            | E::PullFailed
            | E::Spawned
            | E::StartFailed(_)
            | E::BackoffDone
            | E::CleanedUp => self.stay(),
        }
    }

    pub(super) fn cleaning(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::CleanedUp => self.after_run(ctx),
            E::Stop => {
                self.ask_stop();
                self.stay()
            }
            E::Start | E::Restart => {
                self.ask_restart();
                self.stay()
            }
            E::Remove => {
                self.remove_requested = true;
                self.ask_stop();
                self.stay()
            }
            E::DependenciesPending
            | E::DependenciesFailed
            | E::ImageMissing
            | E::Ready
            | E::PullDone
            | E::PullFailed
            | E::Spawned
            | E::StartFailed(_)
            | E::Exited(_)
            | E::KillTimeout
            | E::BackoffDone => self.stay(),
        }
    }

    pub(super) fn restarting(&mut self, event: Event, ctx: &Context<'_>) -> Outcome {
        use Event as E;
        match event {
            E::BackoffDone => (State::Restarting, vec![Action::CheckGates]),
            E::Start | E::Restart => self.start_request(ctx),
            E::DependenciesPending | E::DependenciesFailed | E::ImageMissing | E::Ready => {
                self.gate_answer(event, ctx)
            }
            E::Stop => self.rest_now(Vec::new()),
            E::Remove => (State::Removed, vec![Action::Finish, Action::Remove]),
            E::PullDone
            | E::PullFailed
            | E::Spawned
            | E::StartFailed(_)
            | E::Exited(_)
            | E::KillTimeout
            | E::CleanedUp => self.stay(),
        }
    }
}
