//! Ring collectives between ranks on threads, over real TCP on 127.0.0.1.

use std::net::TcpListener;
use std::time::Duration;

use ssl_collective::{CollectiveError, Ring, RingConfig};

fn listeners(world_size: usize) -> Vec<TcpListener> {
    (0..world_size).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect()
}

/// Runs `body` on every rank of a freshly connected ring and returns the results by rank.
fn on_ring<T: Send>(world_size: usize, chunk_bytes: usize, body: impl Fn(&mut Ring) -> T + Sync) -> Vec<T> {
    let listeners = listeners(world_size);
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .iter()
            .enumerate()
            .map(|(rank, listener)| {
                let mut config = RingConfig::new(rank, peers.clone(), 7);
                config.chunk_bytes = chunk_bytes;
                config.timeout = Duration::from_secs(10);
                let body = &body;
                scope.spawn(move || {
                    let mut ring = Ring::connect(listener, config).expect("ring connects");
                    body(&mut ring)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    })
}

/// Rank-dependent values with a fractional part, so that addition order shows in the bits.
fn rank_values(rank: usize, len: usize) -> Vec<f32> {
    (0..len).map(|index| ((index * 31 + rank * 17) % 1000) as f32 * 0.013 + rank as f32 / 3.0).collect()
}

#[test]
fn all_reduce_mean_matches_reference() {
    for world_size in [1, 2, 3, 4] {
        for len in [0, 1, 5, 1000, 100_003] {
            let results = on_ring(world_size, 4096, |ring| {
                let mut data = rank_values(ring.rank(), len);
                ring.all_reduce_mean(&mut data).unwrap();
                data
            });
            let inputs: Vec<Vec<f32>> = (0..world_size).map(|rank| rank_values(rank, len)).collect();
            for index in 0..len {
                let expected: f64 = inputs.iter().map(|values| f64::from(values[index])).sum::<f64>() / world_size as f64;
                let got = f64::from(results[0][index]);
                assert!((got - expected).abs() <= 1e-4 * expected.abs().max(1.0), "n={world_size} len={len} [{index}]: {got} vs {expected}");
            }
            for rank in 1..world_size {
                let identical = results[rank].iter().zip(&results[0]).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(identical, "n={world_size} len={len}: rank {rank} differs from rank 0 in some bit");
            }
        }
    }
}

#[test]
fn all_reduce_repeats_on_one_ring() {
    let results = on_ring(3, 1024, |ring| {
        let mut sums = Vec::new();
        for round in 0..5 {
            let mut data = vec![(ring.rank() + round) as f32; 777];
            ring.all_reduce_mean(&mut data).unwrap();
            sums.push(data[776]);
        }
        sums
    });
    for sums in results {
        assert_eq!(sums, [1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}

#[test]
fn all_gather_orders_by_rank() {
    let counts = [3, 0, 5, 1];
    let results = on_ring(4, 8, |ring| {
        let local: Vec<f32> = (0..counts[ring.rank()]).map(|index| (ring.rank() * 10 + index) as f32).collect();
        ring.all_gather(&local, &counts).unwrap()
    });
    let expected = [0.0, 1.0, 2.0, 20.0, 21.0, 22.0, 23.0, 24.0, 30.0];
    for gathered in results {
        assert_eq!(gathered, expected);
    }
}

#[test]
fn all_gather_rejects_wrong_counts() {
    let results = on_ring(2, 1024, |ring| ring.all_gather(&[1.0, 2.0], &[1, 1]).map(|_| ()));
    for result in results {
        assert!(matches!(result, Err(CollectiveError::InvalidCall(_))), "{result:?}");
    }
}

#[test]
fn broadcast_copies_root_buffer() {
    let results = on_ring(3, 64, |ring| {
        let mut data = if ring.rank() == 0 { rank_values(5, 1001) } else { vec![0.0; 1001] };
        ring.broadcast_from_root(&mut data).unwrap();
        data
    });
    for data in results {
        assert_eq!(data, rank_values(5, 1001));
    }
}

#[test]
fn all_reduce_sum_adds_every_rank() {
    let results = on_ring(3, 64, |ring| {
        let mut data: Vec<f32> = (0..301).map(|index| (index * (ring.rank() + 1)) as f32).collect();
        ring.all_reduce_sum(&mut data).unwrap();
        data
    });
    let expected: Vec<f32> = (0..301).map(|index| (index * 6) as f32).collect();
    for data in results {
        assert_eq!(data, expected);
    }
}

#[test]
fn broadcast_from_any_root() {
    for root in 0..4 {
        let results = on_ring(4, 64, |ring| {
            let mut data = if ring.rank() == root { rank_values(root, 517) } else { vec![-1.0; 517] };
            ring.broadcast(root, &mut data).unwrap();
            data
        });
        for data in results {
            assert_eq!(data, rank_values(root, 517), "root {root}");
        }
    }
}

#[test]
fn byte_collectives_keep_lengths_and_bits() {
    let results = on_ring(3, 16, |ring| {
        // Lengths that are not multiples of four, and bytes that form NaN patterns.
        let local: Vec<u8> = (0..ring.rank() * 5 + 3).map(|index| 0xff - index as u8).collect();
        let gathered = ring.all_gather_bytes(&local).unwrap();
        let mut state = if ring.rank() == 1 { b"state of rank one".to_vec() } else { Vec::new() };
        ring.broadcast_bytes(1, &mut state).unwrap();
        (gathered, state)
    });
    for (gathered, state) in results {
        let expected: Vec<Vec<u8>> = (0..3).map(|rank| (0..rank * 5 + 3).map(|index| 0xff - index as u8).collect()).collect();
        assert_eq!(gathered, expected);
        assert_eq!(state, b"state of rank one");
    }
}

#[test]
fn other_generation_rejected() {
    let listeners = listeners(2);
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    let results: Vec<Result<Ring, CollectiveError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = listeners
            .iter()
            .enumerate()
            .map(|(rank, listener)| {
                let mut config = RingConfig::new(rank, peers.clone(), 1 + rank as u64);
                config.timeout = Duration::from_secs(1);
                scope.spawn(move || Ring::connect(listener, config))
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for (rank, result) in results.into_iter().enumerate() {
        let error = result.err().expect("no ring across generations");
        assert!(matches!(error, CollectiveError::AcceptTimeout { rank: left, .. } if left == 1 - rank), "rank {rank}: {error}");
    }
}

#[test]
fn silent_peer_times_out() {
    let listeners = listeners(2);
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    std::thread::scope(|scope| {
        let (connected, wait) = std::sync::mpsc::channel();
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let mut silent_config = RingConfig::new(1, peers.clone(), 3);
        silent_config.timeout = Duration::from_secs(1);
        let silent_listener = &listeners[1];
        scope.spawn(move || {
            let _ring = Ring::connect(silent_listener, silent_config).unwrap();
            connected.send(()).unwrap();
            // Holds the links open without taking part until rank 0 is done.
            let _ = finish.recv();
        });

        let mut config = RingConfig::new(0, peers.clone(), 3);
        config.timeout = Duration::from_secs(1);
        let mut ring = Ring::connect(&listeners[0], config).unwrap();
        wait.recv().unwrap();
        let error = ring.all_reduce_mean(&mut vec![1.0; 1 << 20]).unwrap_err();
        assert!(matches!(error, CollectiveError::Timeout { rank: 1, seconds: 1 }), "{error}");
        assert_eq!(error.failed_rank(), Some(1));
        done.send(()).unwrap();
    });
}

#[test]
fn dead_peer_names_its_rank() {
    let listeners = listeners(2);
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    std::thread::scope(|scope| {
        let peer_config = RingConfig::new(1, peers.clone(), 4);
        let peer_listener = &listeners[1];
        scope.spawn(move || {
            // Connects, then goes away as a killed process would.
            drop(Ring::connect(peer_listener, peer_config).unwrap());
        });
        let mut ring = Ring::connect(&listeners[0], RingConfig::new(0, peers.clone(), 4)).unwrap();
        let error = ring.all_reduce_mean(&mut vec![1.0; 1 << 20]).unwrap_err();
        assert!(matches!(error, CollectiveError::Peer { rank: 1, .. }), "{error}");
    });
}

#[test]
fn abort_ends_a_blocked_call() {
    let listeners = listeners(2);
    let peers: Vec<_> = listeners.iter().map(|listener| listener.local_addr().unwrap()).collect();
    std::thread::scope(|scope| {
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let peer_config = RingConfig::new(1, peers.clone(), 5);
        let peer_listener = &listeners[1];
        scope.spawn(move || {
            let _ring = Ring::connect(peer_listener, peer_config).unwrap();
            let _ = finish.recv();
        });
        let mut ring = Ring::connect(&listeners[0], RingConfig::new(0, peers.clone(), 5)).unwrap();
        let abort = ring.abort_handle();
        scope.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            abort.abort();
        });
        let error = ring.all_reduce_mean(&mut vec![1.0; 1 << 20]).unwrap_err();
        assert!(matches!(error, CollectiveError::Aborted), "{error}");
        assert!(matches!(ring.all_reduce_mean(&mut [1.0]), Err(CollectiveError::Aborted)));
        done.send(()).unwrap();
    });
}
