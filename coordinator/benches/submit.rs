//! `SubmitJob` latency and throughput over loopback against PostgreSQL.
//!
//! Starts the release `ssl-coordinator` binary on a fresh database, then runs 16
//! concurrent clients (one HTTP/2 connection each) that submit jobs back to back.
//! Prints p50/p99 latency and sustained submissions per second.
//!
//! ```text
//! cargo bench -p ssl-coordinator --bench submit
//! SSL_BENCH_SECONDS=30 SSL_BENCH_CLIENTS=16 cargo bench -p ssl-coordinator --bench submit
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{TOKEN, TestDatabase, client, spec, submit_request};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not use.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let clients = env_number("SSL_BENCH_CLIENTS", 16) as usize;
    let measure = Duration::from_secs(env_number("SSL_BENCH_SECONDS", 10));
    let warm_up = Duration::from_secs(2);

    let database = TestDatabase::postgres().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut coordinator = tokio::process::Command::new(env!("CARGO_BIN_EXE_ssl-coordinator"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--database-url", &database.url])
        .env("SSL_API_TOKENS", TOKEN)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start ssl-coordinator");
    let endpoint = format!("http://127.0.0.1:{port}");

    let mut connections = Vec::new();
    for _ in 0..clients {
        connections.push(client(&endpoint).await);
    }

    let started = Instant::now();
    let warm_until = started + warm_up;
    let stop_at = warm_until + measure;
    let mut tasks = Vec::new();
    for (index, mut connection) in connections.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sequence = 0u64;
            loop {
                let now = Instant::now();
                if now >= stop_at {
                    return latencies;
                }
                sequence += 1;
                let request = submit_request(&format!("bench-{index}-{sequence}"), spec("bench"));
                let sent = Instant::now();
                connection.submit_job(request).await.expect("submit succeeds");
                if sent >= warm_until {
                    latencies.push(sent.elapsed());
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort();

    let count = latencies.len();
    println!("clients:                {clients}");
    println!("measured for:           {} s after {} s warm-up", measure.as_secs(), warm_up.as_secs());
    println!("submissions:            {count}");
    println!("throughput:             {:.0} submissions/s", count as f64 / measure.as_secs_f64());
    println!("latency p50:            {:.2} ms", percentile(&latencies, 0.50).as_secs_f64() * 1e3);
    println!("latency p99:            {:.2} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3);
    println!("latency max:            {:.2} ms", latencies[count - 1].as_secs_f64() * 1e3);

    coordinator.kill().await.ok();
}
