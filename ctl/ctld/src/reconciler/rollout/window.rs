//! A rollout's moves between the operator's calls, on every reconciler tick: the step's
//! acknowledgements, the fresh samples of every node's counters that open and close a
//! window, and the verdict at its end (`judge.rs`). Deadlines pause it, never promote it.

use std::time::{Duration, Instant};

use super::judge::{self, Sample, Verdict};
use super::{Phase, RolloutNodeRecord, RolloutState};
use crate::clock::Now;
use crate::reconciler::Reconciler;

impl Reconciler {
    /// Moves the rollout on: acks seen, samples complete, windows over, deadlines passed.
    pub(in crate::reconciler) fn rollout_tick(&mut self, now: Now) {
        // Each move may enable the next (acks seen → sampling asked); a few suffice.
        for _ in 0..4 {
            if !self.rollout_move(now) {
                return;
            }
        }
    }

    /// One move; whether anything changed.
    fn rollout_move(&mut self, now: Now) -> bool {
        let Some(l) = self.rollout.as_ref() else {
            return false;
        };
        match &l.phase {
            Phase::Idle => false,
            Phase::Acks { deadline } => {
                let waiting: Vec<String> = l
                    .rec
                    .nodes
                    .iter()
                    .filter(|n| n.after.is_some_and(|g| self.acked(&n.node) != Some(g)))
                    .map(|n| n.node.clone())
                    .collect();
                if waiting.is_empty() {
                    if l.rec.nodes.iter().all(|n| n.after.is_some()) {
                        let why = format!("every one of the {} nodes serves it", l.rec.nodes.len());
                        self.finish(RolloutState::Completed, "complete", why, now);
                    } else {
                        self.sample(None, now);
                    }
                    true
                } else if now.mono >= *deadline {
                    let why = format!(
                        "step {}: no acknowledgement from {} within {}s",
                        l.rec.step,
                        waiting.join(", "),
                        self.ack_wait().as_secs()
                    );
                    self.pause(why, None, now);
                    true
                } else {
                    false
                }
            }
            Phase::Sampling {
                asked,
                deadline,
                start,
            } => {
                let mut sample = Sample::new();
                let mut missing = Vec::new();
                for n in &l.rec.nodes {
                    match self.sessions.fresh_traffic(&n.node, *asked) {
                        Some(t) => {
                            sample.insert(n.node.clone(), t);
                        }
                        None => missing.push(n.node.clone()),
                    }
                }
                if missing.is_empty() {
                    match start {
                        None => {
                            let interval = Duration::from_millis(l.rec.spec.interval_ms);
                            let until = now.mono + interval;
                            if let Some(l) = self.rollout.as_mut() {
                                l.rec.state = RolloutState::Watching;
                                l.phase = Phase::Window {
                                    opened: now.mono,
                                    start: sample,
                                    until,
                                };
                            }
                            self.save_rollout();
                        }
                        Some((opened, start)) => {
                            let window = now.mono.saturating_duration_since(*opened);
                            let start = start.clone();
                            self.judge_window(&start, &sample, window, now);
                        }
                    }
                    true
                } else if now.mono >= *deadline {
                    let why = format!(
                        "step {}: cannot judge: no fresh counters from {}",
                        l.rec.step,
                        missing.join(", ")
                    );
                    self.pause(why, None, now);
                    true
                } else {
                    false
                }
            }
            Phase::Window { until, .. } if now.mono >= *until => {
                let (opened, start) = match &l.phase {
                    Phase::Window { opened, start, .. } => (*opened, start.clone()),
                    _ => return false,
                };
                self.sample(Some((opened, start)), now);
                true
            }
            Phase::Window { .. } => false,
        }
    }

    /// The generation `node` last acknowledged.
    pub(super) fn acked(&self, node: &str) -> Option<u64> {
        self.nodes.get(node)?.live.acked.map(|a| a.generation)
    }

    /// Asks every node of the rollout for fresh counters.
    fn sample(&mut self, start: Option<(Instant, Sample)>, now: Now) {
        let deadline = now.mono + self.settings.timing.ack_timeout * 2;
        let Some(l) = self.rollout.as_mut() else {
            return;
        };
        l.phase = Phase::Sampling {
            asked: now.mono,
            deadline,
            start,
        };
        let nodes: Vec<String> = l.rec.nodes.iter().map(|n| n.node.clone()).collect();
        for id in nodes {
            self.sessions.ask_stats(&id);
            self.pump(&id, now);
        }
    }

    fn judge_window(&mut self, start: &Sample, end: &Sample, window: Duration, now: Now) {
        let Some(l) = self.rollout.as_ref() else {
            return;
        };
        let (canary, baseline): (Vec<&RolloutNodeRecord>, Vec<&RolloutNodeRecord>) =
            l.rec.nodes.iter().partition(|n| n.after.is_some());
        let c: Vec<&str> = canary.iter().map(|n| n.node.as_str()).collect();
        let b: Vec<&str> = baseline.iter().map(|n| n.node.as_str()).collect();
        let step = l.rec.step;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let verdict = judge::judge(
            &l.rec.spec,
            step,
            window_ms,
            judge::group(start, end, &c),
            judge::group(start, end, &b),
        );
        let next = judge::next_step(&l.rec.spec.steps, step, l.rec.nodes.len());
        match verdict {
            Verdict::Promote(j, why) => {
                if let Some(l) = self.rollout.as_mut() {
                    l.rec.last_judgement = Some(j);
                }
                self.decide("promote", why, now);
                // With a baseline there is always a next step (the last covers every node).
                self.enter_step(next.unwrap_or(step), now);
            }
            Verdict::RollBack(j, why) => {
                if let Some(l) = self.rollout.as_mut() {
                    l.rec.last_judgement = Some(j);
                }
                self.restore("rolled back", now);
                self.finish(RolloutState::RolledBack, "rollback", why, now);
            }
            Verdict::CannotJudge(j, why) => self.pause(why, j, now),
        }
    }
}
