//! All-reduce algorithm and bus bandwidth on loopback, as nccl-tests defines them:
//! algbw = bytes / time, busbw = algbw × 2(n−1)/n. Ranks run as threads of this
//! process, each with its own TCP links, so the traffic is real loopback TCP.
//! Also measures one plain TCP stream over loopback as the ceiling.
//!
//! ```text
//! cargo bench -p ssl-collective --bench all_reduce
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ssl_collective::{Ring, RingConfig};

const MIB: usize = 1024 * 1024;

fn main() {
    println!("loopback TCP, one stream: {:.2} GB/s", loopback_gbps());
    println!();
    println!("| ranks | size | time (median) | algbw | busbw |");
    println!("|---|---|---|---|---|");
    for world_size in [2, 4] {
        for size_mib in [1, 4, 16, 64] {
            let seconds = median_all_reduce_seconds(world_size, size_mib * MIB);
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
fn median_all_reduce_seconds(world_size: usize, bytes: usize) -> f64 {
    let iterations = (256 * MIB / bytes).clamp(10, 100);
    let listeners: Vec<TcpListener> = (0..world_size).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    let per_rank: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .iter()
            .enumerate()
            .map(|(rank, listener)| {
                let config = RingConfig::new(rank, peers.clone(), 1);
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

/// Throughput of one TCP stream over loopback, in GB/s, for 2 GiB in 1 MiB writes.
fn loopback_gbps() -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let total = 2048 * MIB;
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = vec![0u8; MIB];
        let mut received = 0;
        while received < total {
            received += stream.read(&mut buffer).unwrap();
        }
    });
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let buffer = vec![1u8; MIB];
    let started = Instant::now();
    for _ in 0..total / MIB {
        stream.write_all(&buffer).unwrap();
    }
    reader.join().unwrap();
    total as f64 / started.elapsed().as_secs_f64() / 1e9
}
