//! The ring of TCP links and the collective operations over it.

use std::io::{Read, Write};
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::schedule::Schedule;
use crate::segments::segment_ranges;
use crate::{CollectiveError, handshake};

/// Position of this rank in a generation and the settings of its links to its neighbours.
#[derive(Debug, Clone)]
pub struct RingConfig {
    pub rank: usize,
    /// Data-plane address of every rank, indexed by rank; its length is the world size.
    pub peers: Vec<SocketAddr>,
    /// Generation id; links to peers of another generation are rejected.
    pub generation: u64,
    /// Maximum wait for connecting, or for one read or write on a link.
    pub timeout: Duration,
    /// Bytes per chunk; a chunk is the unit that is sent, added and forwarded.
    pub chunk_bytes: usize,
}

impl RingConfig {
    /// Default chunk size. In one bench run each on loopback with two ranks, 1 MiB chunks
    /// gave 10 to 40% more bandwidth than 64 KiB or 256 KiB chunks at 1 to 64 MiB.
    pub const DEFAULT_CHUNK_BYTES: usize = 1024 * 1024;

    pub fn new(rank: usize, peers: Vec<SocketAddr>, generation: u64) -> Self {
        RingConfig { rank, peers, generation, timeout: Duration::from_secs(30), chunk_bytes: Self::DEFAULT_CHUNK_BYTES }
    }

    pub fn world_size(&self) -> usize {
        self.peers.len()
    }
}

/// Connected ring links of one rank. With a world size of 1 every operation is a
/// no-op and no link exists.
pub struct Ring {
    config: RingConfig,
    /// Link to `rank + 1`; this rank only writes to it.
    right: Option<TcpStream>,
    /// Link from `rank - 1`; this rank only reads from it.
    left: Option<TcpStream>,
    aborted: Arc<AtomicBool>,
}

/// Ends a [`Ring`]'s operation in progress, from any thread.
#[derive(Clone)]
pub struct AbortHandle {
    aborted: Arc<AtomicBool>,
    streams: Arc<Vec<TcpStream>>,
}

impl AbortHandle {
    /// Shuts the ring's links down; the call in progress and every later call fail
    /// with [`CollectiveError::Aborted`].
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        for stream in self.streams.iter() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Operation a rank applies to a received chunk.
#[derive(Clone, Copy)]
enum Combine {
    Add,
    /// Adds, then multiplies by the factor: the last reduce-scatter step of a mean.
    AddThenScale(f32),
    Copy,
}

/// One ring step: the range received from the left into `recv`, combined, and
/// forwarded to the right when `forward` is set.
struct Step {
    recv: Range<usize>,
    combine: Combine,
    forward: bool,
}

impl Ring {
    /// Connects to the right neighbour and accepts the left one on `listener`.
    ///
    /// Connections on `listener` from other generations or ranks are dropped while
    /// waiting, so a late peer of an old generation cannot join.
    ///
    /// # Errors
    ///
    /// [`CollectiveError::Connect`] or [`CollectiveError::AcceptTimeout`] when a
    /// neighbour cannot be reached within `config.timeout`.
    pub fn connect(listener: &TcpListener, config: RingConfig) -> Result<Ring, CollectiveError> {
        let world_size = config.world_size();
        if config.rank >= world_size {
            return Err(CollectiveError::InvalidCall(format!("rank {} outside world size {world_size}", config.rank)));
        }
        if world_size == 1 {
            return Ok(Ring { config, right: None, left: None, aborted: Arc::new(AtomicBool::new(false)) });
        }
        let right_rank = (config.rank + 1) % world_size;
        let left_rank = (config.rank + world_size - 1) % world_size;

        let right = connect_right(&config, right_rank)?;
        let left = accept_left(listener, &config, left_rank)?;
        for stream in [&right, &left] {
            stream.set_nodelay(true).map_err(|source| CollectiveError::Peer { rank: right_rank, source })?;
            stream.set_read_timeout(Some(config.timeout)).map_err(|source| CollectiveError::Peer { rank: left_rank, source })?;
            stream.set_write_timeout(Some(config.timeout)).map_err(|source| CollectiveError::Peer { rank: right_rank, source })?;
        }
        tracing::debug!(rank = config.rank, generation = config.generation, world_size, "ring connected");
        Ok(Ring { config, right: Some(right), left: Some(left), aborted: Arc::new(AtomicBool::new(false)) })
    }

    pub fn rank(&self) -> usize {
        self.config.rank
    }

    pub fn world_size(&self) -> usize {
        self.config.world_size()
    }

    /// Returns a handle that aborts this ring from another thread.
    pub fn abort_handle(&self) -> AbortHandle {
        let streams = [&self.right, &self.left].into_iter().flatten().filter_map(|stream| stream.try_clone().ok()).collect();
        AbortHandle { aborted: self.aborted.clone(), streams: Arc::new(streams) }
    }

    /// Replaces `data` on every rank by the element-wise mean over all ranks.
    ///
    /// Every rank must pass a buffer of the same length. The result is bit-identical
    /// on all ranks.
    pub fn all_reduce_mean(&mut self, data: &mut [f32]) -> Result<(), CollectiveError> {
        let scale = 1.0 / self.world_size() as f32;
        self.all_reduce(data, Combine::AddThenScale(scale))
    }

    /// Replaces `data` on every rank by the element-wise sum over all ranks, with
    /// the same guarantees as [`Ring::all_reduce_mean`].
    pub fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<(), CollectiveError> {
        self.all_reduce(data, Combine::Add)
    }

    /// Ring all-reduce; `finish` combines the last reduce-scatter step.
    fn all_reduce(&mut self, data: &mut [f32], finish: Combine) -> Result<(), CollectiveError> {
        let n = self.world_size();
        if n == 1 {
            return Ok(());
        }
        let rank = self.config.rank;
        let segments = segment_ranges(data.len(), n);
        let segment = |offset: usize| segments[(rank + n - offset % n) % n].clone();

        // Reduce-scatter: at step s, send segment (rank - s) and add the received
        // segment (rank - s - 1). After n - 1 steps this rank has the complete sum
        // of segment (rank + 1), which it finishes (scales, for a mean) and forwards.
        let mut steps = Vec::with_capacity(2 * (n - 1));
        for step in 0..n - 1 {
            let combine = if step == n - 2 { finish } else { Combine::Add };
            steps.push(Step { recv: segment(step + 1), combine, forward: true });
        }
        // All-gather: at step s, receive segment (rank - s) and pass it on, except
        // after the last step, when it has reached every rank.
        for step in 0..n - 1 {
            steps.push(Step { recv: segment(step), combine: Combine::Copy, forward: step < n - 2 });
        }
        self.run(data, Some(segment(0)), &steps)
    }

    /// Gathers every rank's `local` slice into one buffer ordered by rank.
    ///
    /// `counts[r]` is the number of elements rank `r` contributes; every rank passes
    /// the same `counts`, and `local.len()` must equal `counts[rank]`.
    pub fn all_gather(&mut self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>, CollectiveError> {
        let n = self.world_size();
        let rank = self.config.rank;
        if counts.len() != n || counts[rank] != local.len() {
            return Err(CollectiveError::InvalidCall(format!(
                "all_gather got {} counts for world size {n} and a local slice of {} elements for a count of {:?}",
                counts.len(),
                local.len(),
                counts.get(rank)
            )));
        }
        let mut offsets = Vec::with_capacity(n);
        let mut total = 0;
        for count in counts {
            offsets.push(total..total + count);
            total += count;
        }
        let mut gathered = vec![0.0f32; total];
        gathered[offsets[rank].clone()].copy_from_slice(local);
        if n == 1 {
            return Ok(gathered);
        }
        let block = |offset: usize| offsets[(rank + n - offset % n) % n].clone();
        let steps: Vec<Step> =
            (0..n - 1).map(|step| Step { recv: block(step + 1), combine: Combine::Copy, forward: step < n - 2 }).collect();
        self.run(&mut gathered, Some(block(0)), &steps)?;
        Ok(gathered)
    }

    /// Copies rank 0's `data` into `data` on every other rank.
    pub fn broadcast_from_root(&mut self, data: &mut [f32]) -> Result<(), CollectiveError> {
        self.broadcast(0, data)
    }

    /// Copies rank `root`'s `data` into `data` on every other rank; every rank
    /// passes a buffer of the same length.
    pub fn broadcast(&mut self, root: usize, data: &mut [f32]) -> Result<(), CollectiveError> {
        let n = self.world_size();
        if root >= n {
            return Err(CollectiveError::InvalidCall(format!("broadcast root {root} outside world size {n}")));
        }
        if n == 1 {
            return Ok(());
        }
        let full = 0..data.len();
        // Distance from the root along the ring; the last rank before the root stops.
        let hops = (self.config.rank + n - root) % n;
        if hops == 0 {
            return self.run(data, Some(full), &[]);
        }
        self.run(data, None, &[Step { recv: full, combine: Combine::Copy, forward: hops + 1 < n }])
    }

    /// Gathers every rank's `local` bytes, which may differ in length, indexed by rank.
    pub fn all_gather_bytes(&mut self, local: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError> {
        let n = self.world_size();
        let length = u32::try_from(local.len())
            .map_err(|_| CollectiveError::InvalidCall(format!("all_gather_bytes got {} bytes; the limit is 4 GiB", local.len())))?;
        // Floats only travel as bit patterns here: copies never change them.
        let lengths = self.all_gather(&[f32::from_bits(length)], &vec![1; n])?;
        let lengths: Vec<usize> = lengths.iter().map(|value| value.to_bits() as usize).collect();
        let counts: Vec<usize> = lengths.iter().map(|length| length.div_ceil(4)).collect();
        let gathered = self.all_gather(&bytes_to_words(local), &counts)?;
        let mut offset = 0;
        Ok(lengths
            .iter()
            .zip(&counts)
            .map(|(&length, &count)| {
                let words = &gathered[offset..offset + count];
                offset += count;
                bytemuck::cast_slice::<f32, u8>(words)[..length].to_vec()
            })
            .collect())
    }

    /// Replaces `data` on every rank by rank `root`'s bytes; other ranks may pass
    /// any buffer.
    pub fn broadcast_bytes(&mut self, root: usize, data: &mut Vec<u8>) -> Result<(), CollectiveError> {
        let mut length = [f32::from_bits(u32::try_from(data.len()).unwrap_or(u32::MAX))];
        self.broadcast(root, &mut length)?;
        let length = length[0].to_bits() as usize;
        let mut words = if self.config.rank == root { bytes_to_words(data) } else { vec![0.0; length.div_ceil(4)] };
        self.broadcast(root, &mut words)?;
        *data = bytemuck::cast_slice::<f32, u8>(&words)[..length].to_vec();
        Ok(())
    }

    /// Sends `initial` to the right, then works through `steps`, forwarding each
    /// received chunk as soon as it is combined so that consecutive steps overlap.
    ///
    /// A sender thread writes chunks to the right straight from `data` while this
    /// thread reads from the left into `data`, so nothing is copied into send buffers.
    /// Before this thread writes a range, it waits until every queued send that
    /// overlaps the range has gone out, so the threads never share a range.
    fn run(&mut self, data: &mut [f32], initial: Option<Range<usize>>, steps: &[Step]) -> Result<(), CollectiveError> {
        if self.aborted.load(Ordering::SeqCst) {
            return Err(CollectiveError::Aborted);
        }
        let world_size = self.world_size();
        let rank = self.config.rank;
        let right_rank = (rank + 1) % world_size;
        let left_rank = (rank + world_size - 1) % world_size;
        let timeout_seconds = self.config.timeout.as_secs();
        let chunk_elements = (self.config.chunk_bytes / 4).max(1);
        let aborted = self.aborted.clone();
        let (Some(right), Some(left)) = (self.right.as_mut(), self.left.as_mut()) else {
            return Ok(());
        };
        let buffer = SharedBuffer::new(data);
        let plan = Schedule::plan(
            initial,
            &steps.iter().map(|step| (step.recv.clone(), step.forward)).collect::<Vec<_>>(),
            chunk_elements,
        );

        // The queue of ranges to send is unbounded: if this thread blocked on a full
        // queue instead of reading, every rank could wait on its right neighbour at
        // once and the ring would stall. The sender counts the chunks it has written.
        let (outgoing, to_send) = mpsc::channel::<Range<usize>>();
        let (sent, sent_count) = mpsc::channel::<()>();

        std::thread::scope(|scope| {
            let sender_aborted = aborted.clone();
            let sender = scope.spawn(move || -> Result<(), CollectiveError> {
                for range in to_send {
                    // SAFETY: the receiving thread does not write this range until the
                    // count sent below covers it.
                    let chunk = unsafe { buffer.slice(range) };
                    right.write_all(bytemuck::cast_slice(chunk)).map_err(|error| {
                        CollectiveError::from_io(right_rank, error, timeout_seconds, sender_aborted.load(Ordering::SeqCst))
                    })?;
                    // The receiving side may have finished and gone; the queue still drains.
                    let _ = sent.send(());
                }
                Ok(())
            });

            let received = (|| -> Result<(), CollectiveError> {
                let mut in_flight = SendQueue { outgoing, sent_count, queued: VecDeque::new(), next: 0, done: 0 };
                // Sends leave in plan order, each as soon as the receive it forwards is combined.
                let mut released = 0;
                let mut combined = vec![0usize; steps.len()];
                let mut release = |in_flight: &mut SendQueue, combined: &[usize]| -> bool {
                    while let Some(send) = plan.sends.get(released) {
                        if send.after.is_some_and(|(step, chunk)| combined[step] <= chunk) {
                            break;
                        }
                        if !in_flight.push(send.range.clone()) {
                            return false;
                        }
                        released += 1;
                    }
                    true
                };
                if !release(&mut in_flight, &combined) {
                    return Ok(()); // The sender failed; its error is reported below.
                }
                let mut incoming = Vec::new();
                for receive in &plan.receives {
                    let chunk = receive.range.clone();
                    if !in_flight.wait_for_overlap(&chunk) {
                        return Ok(());
                    }
                    // SAFETY: no queued send overlaps `chunk` any more, the sender reads
                    // only queued ranges, and the plan queues every send of a range
                    // before it receives into that range again.
                    let target = unsafe { buffer.slice_mut(chunk.clone()) };
                    let read = match steps[receive.step].combine {
                        Combine::Copy => left.read_exact(bytemuck::cast_slice_mut(target)),
                        how => {
                            incoming.resize(chunk.len(), 0.0);
                            let read = left.read_exact(bytemuck::cast_slice_mut(&mut incoming));
                            if read.is_ok() {
                                combine(target, &incoming, how);
                            }
                            read
                        }
                    };
                    read.map_err(|error| {
                        CollectiveError::from_io(left_rank, error, timeout_seconds, aborted.load(Ordering::SeqCst))
                    })?;
                    combined[receive.step] += 1;
                    if !release(&mut in_flight, &combined) {
                        return Ok(());
                    }
                }
                Ok(())
            })();
            let sent = sender.join().expect("collective sender thread does not panic");
            received.and(sent)
        })
    }
}

/// The caller's buffer, shared by the receiving and the sending thread of one
/// [`Ring::run`] call, which only ever touch disjoint ranges of it at a time.
#[derive(Clone, Copy)]
struct SharedBuffer {
    start: *mut f32,
    len: usize,
}

// SAFETY: `run` keeps the buffer mutably borrowed until both threads have ended,
// and its bookkeeping keeps their ranges disjoint.
unsafe impl Send for SharedBuffer {}
unsafe impl Sync for SharedBuffer {}

impl SharedBuffer {
    fn new(data: &mut [f32]) -> Self {
        SharedBuffer { start: data.as_mut_ptr(), len: data.len() }
    }

    /// # Safety
    ///
    /// No other thread may write `range` while the slice lives.
    unsafe fn slice<'a>(self, range: Range<usize>) -> &'a [f32] {
        assert!(range.start <= range.end);
        assert!(range.end <= self.len);
        unsafe { std::slice::from_raw_parts(self.start.add(range.start), range.len()) }
    }

    /// # Safety
    ///
    /// No other thread may read or write `range` while the slice lives.
    unsafe fn slice_mut<'a>(self, range: Range<usize>) -> &'a mut [f32] {
        assert!(range.start <= range.end);
        assert!(range.end <= self.len);
        unsafe { std::slice::from_raw_parts_mut(self.start.add(range.start), range.len()) }
    }
}

/// Ranges queued for the sender thread that it may not have written yet.
struct SendQueue {
    outgoing: mpsc::Sender<Range<usize>>,
    /// One message per chunk the sender has written, in queue order.
    sent_count: mpsc::Receiver<()>,
    /// Queued ranges with their sequence numbers, oldest first.
    queued: VecDeque<(u64, Range<usize>)>,
    next: u64,
    /// Number of chunks the sender has written.
    done: u64,
}

impl SendQueue {
    /// Queues `range` for sending; false when the sender has stopped.
    fn push(&mut self, range: Range<usize>) -> bool {
        self.collect_sent();
        self.queued.push_back((self.next, range.clone()));
        self.next += 1;
        self.outgoing.send(range).is_ok()
    }

    /// Blocks until no queued send overlaps `range`; false when the sender has stopped.
    fn wait_for_overlap(&mut self, range: &Range<usize>) -> bool {
        self.collect_sent();
        let overlapping = self
            .queued
            .iter()
            .filter(|(_, queued)| queued.start < range.end && range.start < queued.end)
            .map(|(sequence, _)| *sequence)
            .max();
        let Some(last) = overlapping else { return true };
        while self.done <= last {
            if self.sent_count.recv().is_err() {
                return false;
            }
            self.done += 1;
        }
        self.forget_sent();
        true
    }

    fn collect_sent(&mut self) {
        while self.sent_count.try_recv().is_ok() {
            self.done += 1;
        }
        self.forget_sent();
    }

    fn forget_sent(&mut self) {
        while self.queued.front().is_some_and(|(sequence, _)| *sequence < self.done) {
            self.queued.pop_front();
        }
    }
}

fn combine(target: &mut [f32], incoming: &[f32], how: Combine) {
    match how {
        Combine::Add => target.iter_mut().zip(incoming).for_each(|(value, other)| *value += other),
        Combine::AddThenScale(scale) => {
            target.iter_mut().zip(incoming).for_each(|(value, other)| *value = (*value + other) * scale)
        }
        Combine::Copy => target.copy_from_slice(incoming),
    }
}

/// Packs bytes into floats, zero-padded to a multiple of four bytes.
fn bytes_to_words(bytes: &[u8]) -> Vec<f32> {
    let mut words = vec![0.0f32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<f32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

fn connect_right(config: &RingConfig, right_rank: usize) -> Result<TcpStream, CollectiveError> {
    let address = config.peers[right_rank];
    let deadline = Instant::now() + config.timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(&address, remaining) {
            Ok(mut stream) => {
                handshake::write(&mut stream, address, config.generation, config.rank)?;
                return Ok(stream);
            }
            // The peer may still be starting; retry until the deadline.
            Err(_) if Instant::now() + Duration::from_millis(50) < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(source) => return Err(CollectiveError::Connect { rank: right_rank, address, source }),
        }
    }
}

fn accept_left(listener: &TcpListener, config: &RingConfig, left_rank: usize) -> Result<TcpStream, CollectiveError> {
    let deadline = Instant::now() + config.timeout;
    listener.set_nonblocking(true).map_err(|source| CollectiveError::Peer { rank: left_rank, source })?;
    let result = loop {
        match listener.accept() {
            Ok((mut stream, address)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                match handshake::read(&mut stream, address, config.generation) {
                    Ok(rank) if rank == left_rank => break Ok(stream),
                    Ok(rank) => tracing::warn!(%address, rank, expected = left_rank, "dropping a link from an unexpected rank"),
                    Err(error) => tracing::warn!(%address, error = %error, "dropping a collective link"),
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    break Err(CollectiveError::AcceptTimeout { rank: left_rank, seconds: config.timeout.as_secs() });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => break Err(CollectiveError::Peer { rank: left_rank, source }),
        }
    };
    let _ = listener.set_nonblocking(false);
    result
}
