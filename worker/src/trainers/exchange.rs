//! The exchange between the ranks of a generation that a data-parallel step
//! needs, and the rows of a global batch that each rank computes.

use std::ops::Range;
use std::time::{Duration, Instant};

use ssl_collective::Ring;

use crate::error::{Result, WorkerError};

/// Collective operations that one data-parallel step needs. Every rank of a
/// generation makes the same calls in the same order.
pub trait StepExchange {
    fn rank(&self) -> usize;

    fn world_size(&self) -> usize;

    /// Concatenates every rank's `local` in rank order; `counts[r]` is rank `r`'s length.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Collective`] when a peer fails or the exchange is aborted.
    fn all_gather(&mut self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>>;

    /// Replaces `data` by its element-wise sum over all ranks, bit-identical on each.
    ///
    /// # Errors
    ///
    /// As [`StepExchange::all_gather`].
    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()>;
}

/// The exchange of a world of one: every operation returns its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl StepExchange for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_gather(&mut self, local: &[f32], _counts: &[usize]) -> Result<Vec<f32>> {
        Ok(local.to_vec())
    }

    fn all_reduce_sum(&mut self, _data: &mut [f32]) -> Result<()> {
        Ok(())
    }
}

impl StepExchange for Ring {
    fn rank(&self) -> usize {
        Ring::rank(self)
    }

    fn world_size(&self) -> usize {
        Ring::world_size(self)
    }

    fn all_gather(&mut self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>> {
        Ring::all_gather(self, local, counts).map_err(WorkerError::Collective)
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()> {
        Ring::all_reduce_sum(self, data).map_err(WorkerError::Collective)
    }
}

/// An exchange that adds up the time spent in its calls, and keeps the size and
/// time of its latest all-reduce.
pub struct TimedExchange<'a> {
    inner: &'a mut dyn StepExchange,
    spent: Duration,
    last_all_reduce: (u64, Duration),
}

impl<'a> TimedExchange<'a> {
    pub fn new(inner: &'a mut dyn StepExchange) -> Self {
        TimedExchange { inner, spent: Duration::ZERO, last_all_reduce: (0, Duration::ZERO) }
    }

    /// Returns the time spent in the calls so far.
    pub fn spent(&self) -> Duration {
        self.spent
    }

    /// Returns the bytes and time of the latest all-reduce, or zeros before the first.
    pub fn last_all_reduce(&self) -> (u64, Duration) {
        self.last_all_reduce
    }
}

impl StepExchange for TimedExchange<'_> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }

    fn world_size(&self) -> usize {
        self.inner.world_size()
    }

    fn all_gather(&mut self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>> {
        let started = Instant::now();
        let gathered = self.inner.all_gather(local, counts);
        self.spent += started.elapsed();
        gathered
    }

    fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()> {
        let started = Instant::now();
        let reduced = self.inner.all_reduce_sum(data);
        let elapsed = started.elapsed();
        self.spent += elapsed;
        self.last_all_reduce = ((data.len() * 4) as u64, elapsed);
        reduced
    }
}

/// Rows `[start, end)` of a global batch of `batch_size` rows that `rank` of
/// `world_size` computes: contiguous slices in rank order, the first
/// `batch_size % world_size` ranks taking one row more.
pub fn shard_rows(batch_size: usize, rank: usize, world_size: usize) -> Range<usize> {
    let base = batch_size / world_size;
    let extra = batch_size % world_size;
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

#[cfg(test)]
mod tests {
    use super::shard_rows;

    #[test]
    fn shards_cover_the_batch_in_order() {
        for batch in [1, 2, 7, 256, 257] {
            for world in 1..=5 {
                let shards: Vec<_> = (0..world).map(|rank| shard_rows(batch, rank, world)).collect();
                assert_eq!(shards[0].start, 0);
                assert_eq!(shards[world - 1].end, batch);
                for pair in shards.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                    assert!(pair[0].len() >= pair[1].len(), "batch {batch}, world {world}: {pair:?}");
                    assert!(pair[0].len() <= pair[1].len() + 1, "batch {batch}, world {world}: {pair:?}");
                }
            }
        }
        assert_eq!(shard_rows(10, 1, 3), 4..7);
    }
}
