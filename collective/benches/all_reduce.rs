//! All-reduce algorithm and bus bandwidth on loopback, as nccl-tests defines them:
//! algbw = bytes / time, busbw = algbw × 2(n−1)/n. Ranks run as threads of this
//! process, each with its own TCP links, so the traffic is real loopback TCP.
//! Also measures plain TCP over loopback: one stream, and two streams in opposite
//! directions sending from 64 MiB buffers, which is what two ranks exchange.
//!
//! ```text
//! cargo bench -p ssl-collective --bench all_reduce
//! SSL_BENCH_CHUNK_BYTES=262144 cargo bench -p ssl-collective --bench all_reduce
//! SSL_BENCH_RANKS=2 cargo bench -p ssl-collective --bench all_reduce
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ssl_collective::{Ring, RingConfig};

const MIB: usize = 1024 * 1024;

fn main() {
    let chunk_bytes = match std::env::var("SSL_BENCH_CHUNK_BYTES") {
        Ok(value) => value.parse().expect("SSL_BENCH_CHUNK_BYTES is a number of bytes"),
        Err(_) => RingConfig::DEFAULT_CHUNK_BYTES,
    };
    let world_sizes: Vec<usize> = match std::env::var("SSL_BENCH_RANKS") {
        Ok(value) => value
            .split(',')
            .map(|ranks| ranks.trim().parse().expect("SSL_BENCH_RANKS is a list of rank counts, such as 2,4"))
            .collect(),
        Err(_) => vec![2, 4],
    };
    println!("loopback TCP, one stream from a 1 MiB buffer: {:.2} GB/s", loopback_gbps(1, MIB));
    println!(
        "loopback TCP, two opposite streams from 64 MiB buffers: {:.2} GB/s each",
        loopback_gbps(2, 64 * MIB)
    );
    println!("chunk: {} KiB", chunk_bytes / 1024);
    println!();
    println!("| ranks | size | time (median) | algbw | busbw |");
    println!("|---|---|---|---|---|");
    for &world_size in &world_sizes {
        for size_mib in [1, 4, 16, 64] {
            let seconds = median_all_reduce_seconds(world_size, size_mib * MIB, chunk_bytes);
            let algbw = (size_mib * MIB) as f64 / seconds / 1e9;
            let busbw = algbw * 2.0 * (world_size - 1) as f64 / world_size as f64;
            println!(
                "| {world_size} | {size_mib} MiB | {:.2} ms | {algbw:.2} GB/s | {busbw:.2} GB/s |",
                seconds * 1e3
            );
        }
    }
}

/// Median over iterations of the slowest rank's time for one all-reduce of `bytes`.
fn median_all_reduce_seconds(world_size: usize, bytes: usize, chunk_bytes: usize) -> f64 {
    let iterations = (256 * MIB / bytes).clamp(10, 100);
    let listeners: Vec<TcpListener> = (0..world_size).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    let per_rank: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .iter()
            .enumerate()
            .map(|(rank, listener)| {
                let mut config = RingConfig::new(rank, peers.clone(), 1);
                config.chunk_bytes = chunk_bytes;
                scope.spawn(move || {
                    let mut ring = Ring::connect(listener, config).unwrap();
                    let mut data = vec![rank as f32; bytes / 4];
                    for _ in 0..3 {
                        ring.all_reduce_mean(&mut data).unwrap();
                    }
                    (0..iterations)
                        .map(|_| {
                            let started = Instant::now();
                            ring.all_reduce_mean(&mut data).unwrap();
                            started.elapsed().as_secs_f64()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    let mut slowest: Vec<f64> =
        (0..iterations).map(|index| per_rank.iter().map(|times| times[index]).fold(0.0, f64::max)).collect();
    slowest.sort_by(f64::total_cmp);
    slowest[iterations / 2]
}

/// Measures the throughput of each of `streams` TCP streams over loopback, in GB/s.
/// Every stream carries 2 GiB, written from and read into buffers of `buffer_bytes`
/// in 1 MiB calls. Buffers larger than the caches make the copies go to memory, as
/// an all-reduce of that size does.
fn loopback_gbps(streams: usize, buffer_bytes: usize) -> f64 {
    let total = 2048 * MIB;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..streams {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut reader, _) = listener.accept().unwrap();
            writer.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
            scope.spawn(move || {
                let buffer = vec![1u8; buffer_bytes];
                for call in 0..total / MIB {
                    let offset = call * MIB % buffer_bytes;
                    writer.write_all(&buffer[offset..offset + MIB]).unwrap();
                }
            });
            scope.spawn(move || {
                let mut buffer = vec![0u8; buffer_bytes];
                let mut received = 0;
                while received < total {
                    let offset = received % buffer_bytes;
                    let end = (offset + MIB).min(buffer_bytes);
                    received += reader.read(&mut buffer[offset..end]).unwrap();
                }
            });
        }
    });
    total as f64 / started.elapsed().as_secs_f64() / 1e9
}
