//! The order in which one rank sends and receives the chunks of a ring operation.
//!
//! A link carries several levels of chunks: the rank's own initial range (level 0),
//! then each received step that it forwards. Sending every level in turn would send a
//! forwarded chunk long after it was combined, when large buffers have pushed it out
//! of the cache, so it would be read from memory a second time. The schedule instead
//! interleaves the levels: chunk `i` of level `l` goes at position `i + l × LAG`, and
//! ties go to the lower level. A forwarded chunk then leaves about `LAG` chunks after
//! it was combined, and a received all-gather chunk lands where the initial chunk was
//! read shortly before.
//!
//! Both ends of a link derive the order from the same ranges, so the receiver reads
//! the chunks in the order the sender writes them. A forwarded chunk depends only on
//! a receive of an earlier position. Without an initial range it may depend on the
//! same position, but then the chain of waits ends at the rank that sends first, so
//! no ring of ranks waits on itself.

use std::ops::Range;

/// Chunks by which level `l + 1` trails level `l` on a link. In sixteen alternating
/// bench runs with two ranks and 1 MiB chunks, a lag of 4 gave a median of 2.41 GB/s
/// at 64 MiB, against 2.23 GB/s when each level went out after the one before.
/// Lags of 2 and 3 were within the noise of 4.
const LAG: usize = 4;

/// A chunk to write to the right neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSend {
    pub range: Range<usize>,
    /// The receive, as `(step, chunk)`, that must be combined before this chunk is ready.
    pub after: Option<(usize, usize)>,
}

/// A chunk to read from the left neighbour for step `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedReceive {
    pub step: usize,
    pub chunk: usize,
    pub range: Range<usize>,
}

/// The sends and receives of one rank in one operation, each in wire order.
#[derive(Debug)]
pub struct Schedule {
    pub sends: Vec<PlannedSend>,
    pub receives: Vec<PlannedReceive>,
}

impl Schedule {
    /// Plans an operation that first sends `initial`, then receives the ranges of
    /// `steps`, forwarding those whose flag is set, all cut into chunks of
    /// `chunk_elements`.
    pub fn plan(initial: Option<Range<usize>>, steps: &[(Range<usize>, bool)], chunk_elements: usize) -> Schedule {
        let chunk_elements = chunk_elements.max(1);
        let mut sends = Vec::new();
        let mut level = 0;
        if let Some(range) = initial {
            sends.extend(chunks(range, chunk_elements).enumerate().map(|(index, range)| {
                (position(level, index), PlannedSend { range, after: None })
            }));
            level += 1;
        }
        let mut receives = Vec::new();
        for (step, (range, forward)) in steps.iter().enumerate() {
            for (chunk, range) in chunks(range.clone(), chunk_elements).enumerate() {
                receives.push((position(step, chunk), PlannedReceive { step, chunk, range: range.clone() }));
                if *forward {
                    sends.push((position(level, chunk), PlannedSend { range, after: Some((step, chunk)) }));
                }
            }
            if *forward {
                level += 1;
            }
        }
        // Stable sorts keep chunks of one position in level order.
        sends.sort_by_key(|(position, _)| *position);
        receives.sort_by_key(|(position, _)| *position);
        Schedule {
            sends: sends.into_iter().map(|(_, send)| send).collect(),
            receives: receives.into_iter().map(|(_, receive)| receive).collect(),
        }
    }
}

/// Sort key of chunk `index` of `level`: its position, then its level.
fn position(level: usize, index: usize) -> (usize, usize) {
    (index + level * LAG, level)
}

fn chunks(range: Range<usize>, size: usize) -> impl Iterator<Item = Range<usize>> {
    range.clone().step_by(size).map(move |start| start..(start + size).min(range.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::segment_ranges;

    /// Plans a ring all-reduce on `rank` with the steps that `Ring::all_reduce` builds.
    fn all_reduce_plan(rank: usize, n: usize, len: usize, chunk: usize) -> Schedule {
        let segments = segment_ranges(len, n);
        let segment = |offset: usize| segments[(rank + n - offset % n) % n].clone();
        let mut steps = Vec::new();
        for step in 0..n - 1 {
            steps.push((segment(step + 1), true));
        }
        for step in 0..n - 1 {
            steps.push((segment(step), step < n - 2));
        }
        Schedule::plan(Some(segment(0)), &steps, chunk)
    }

    /// Runs the schedules of a ring one action at a time, as blocking threads would:
    /// a rank writes every send that is ready, in order, and reads its next receive
    /// once its left neighbour has written it. Fails on a stall or a mismatch.
    fn simulate(plans: &[Schedule]) {
        let n = plans.len();
        let mut written = vec![0; n];
        let mut read = vec![0; n];
        let mut done: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        loop {
            let mut progressed = false;
            for rank in 0..n {
                let plan = &plans[rank];
                while let Some(send) = plan.sends.get(written[rank]) {
                    if send.after.is_some_and(|after| !done[rank].contains(&after)) {
                        break;
                    }
                    written[rank] += 1;
                    progressed = true;
                }
                let left = (rank + n - 1) % n;
                if let Some(receive) = plan.receives.get(read[rank])
                    && written[left] > read[rank]
                {
                    assert_eq!(plans[left].sends[read[rank]].range, receive.range, "rank {rank} reads what its left neighbour writes");
                    // A send whose data is ready must leave before a receive overwrites it.
                    let overwritten = plan.sends[written[rank]..].iter().find(|send| {
                        let overlaps = send.range.start < receive.range.end && receive.range.start < send.range.end;
                        overlaps && send.after.is_none_or(|after| done[rank].contains(&after))
                    });
                    assert!(overwritten.is_none(), "rank {rank} overwrites {overwritten:?} before sending it");
                    done[rank].push((receive.step, receive.chunk));
                    read[rank] += 1;
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        for rank in 0..n {
            assert_eq!(written[rank], plans[rank].sends.len(), "rank {rank} wrote everything");
            assert_eq!(read[rank], plans[rank].receives.len(), "rank {rank} read everything");
        }
    }

    #[test]
    fn all_reduce_schedules_match_and_finish() {
        for n in [2, 3, 4, 5] {
            for (len, chunk) in [(1, 1), (10, 1), (64, 4), (1000, 7), (3, 2)] {
                let plans: Vec<_> = (0..n).map(|rank| all_reduce_plan(rank, n, len, chunk)).collect();
                simulate(&plans);
            }
        }
    }

    #[test]
    fn all_gather_schedules_match_and_finish() {
        let counts = [3, 0, 5, 2];
        let n = counts.len();
        let mut blocks = Vec::new();
        let mut start = 0;
        for count in counts {
            blocks.push(start..start + count);
            start += count;
        }
        let plans: Vec<_> = (0..n)
            .map(|rank| {
                let block = |offset: usize| blocks[(rank + n - offset % n) % n].clone();
                let steps: Vec<_> = (0..n - 1).map(|step| (block(step + 1), step < n - 2)).collect();
                Schedule::plan(Some(block(0)), &steps, 2)
            })
            .collect();
        simulate(&plans);
    }

    #[test]
    fn broadcast_schedules_match_and_finish() {
        for n in [2, 3, 4] {
            let plans: Vec<_> = (0..n)
                .map(|rank| match rank {
                    0 => Schedule::plan(Some(0..50), &[], 8),
                    _ => Schedule::plan(None, &[(0..50, rank + 1 < n)], 8),
                })
                .collect();
            simulate(&plans);
        }
    }

    #[test]
    fn levels_interleave_with_a_lag() {
        let plan = Schedule::plan(Some(0..6), &[(6..12, true)], 1);
        let order: Vec<usize> = plan.sends.iter().map(|send| send.range.start).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11]);
        assert_eq!(plan.sends[5].after, Some((0, 0)));
    }
}
