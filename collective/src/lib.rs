//! Collective operations between the ranks of one training generation, over TCP.
//!
//! Ranks form a ring: each connects to its right neighbour (`rank + 1`) and accepts
//! its left neighbour (`rank - 1`). [`Ring::all_reduce_mean`] is a ring all-reduce
//! (reduce-scatter, then all-gather), chunked so that sending, receiving and adding
//! overlap. Every element's sum is computed once, by the rank that owns its segment,
//! and then copied to the others, so all ranks end with bit-identical buffers.
//!
//! Calls block the calling thread; run them on a dedicated thread, never on an async
//! runtime's worker. [`AbortHandle::abort`] ends a call in progress from another
//! thread, for example when the coordinator opens a new generation.

mod error;
mod handshake;
mod ring;
mod schedule;
mod segments;

pub use error::CollectiveError;
pub use ring::{AbortHandle, Ring, RingConfig};
pub use segments::segment_ranges;
