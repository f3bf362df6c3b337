//! `rollout start|status|pause|resume|abort`: ctld's progressive rollouts
//! (docs/ctld-rollout.md). Every subcommand prints the rollout as ctld holds it afterwards.

use ringside_wire::{Reply, Request, RolloutSpec};

use super::config::read_valid;
use super::{ctld, show, Failure};
use crate::cli::{Cli, Rollout};
use crate::output;

pub fn rollout(cli: &Cli, r: &Rollout) -> Result<(), Failure> {
    let request = match r {
        Rollout::Start {
            file,
            selector,
            steps,
            interval,
            max_error_increase,
            min_requests,
        } => {
            let config = read_valid(file)?;
            let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
            Request::RolloutStart(RolloutSpec {
                config,
                selector: selector.clone().unwrap_or_default(),
                steps: steps.clone(),
                interval_ms,
                max_error_increase: *max_error_increase,
                min_requests: *min_requests,
            })
        }
        Rollout::Status => Request::RolloutStatus,
        Rollout::Pause => Request::RolloutPause,
        Rollout::Resume => Request::RolloutResume,
        Rollout::Abort => Request::RolloutAbort,
    };
    show(cli, &ctld(cli, request)?, |reply| match reply {
        Reply::Rollout { rollout: None } => Some("no rollout yet\n".into()),
        Reply::Rollout { rollout: Some(r) } => Some(output::rollout(r)),
        _ => None,
    })
}
