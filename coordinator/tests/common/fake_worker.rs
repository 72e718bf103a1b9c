//! A worker agent reduced to its gRPC calls: registers, heartbeats on a timer
//! and reads its assignment stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ssl_proto::v1::worker_service_client::WorkerServiceClient;
use ssl_proto::v1::{
    Assignment, AssignmentProgress, AssignmentUpdate, HeartbeatRequest, RegisterWorkerRequest, Release,
    WatchAssignmentsRequest, WorkerCapabilities, assignment_update,
};
use tonic::Streaming;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{BearerToken, JOIN_TOKEN};

pub type WorkerClient = WorkerServiceClient<InterceptedService<Channel, BearerToken>>;

/// How long a fake worker waits for one stream message.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the worker API with `token`.
pub async fn worker_client(endpoint: &str, token: Option<&str>) -> WorkerClient {
    let channel = Channel::from_shared(endpoint.to_owned()).unwrap().connect_timeout(Duration::from_secs(5));
    for _ in 0..50 {
        if let Ok(channel) = channel.connect().await {
            return WorkerServiceClient::with_interceptor(channel, BearerToken(token.map(str::to_owned)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {endpoint}");
}

pub fn register_request(name: &str, data_address: &str) -> RegisterWorkerRequest {
    RegisterWorkerRequest {
        name: name.to_owned(),
        data_address: data_address.to_owned(),
        capabilities: Some(WorkerCapabilities { backend: "cpu".to_owned(), devices: 1, memory_bytes: 8 << 30 }),
    }
}

pub struct FakeWorker {
    pub id: String,
    pub name: String,
    pub data_address: String,
    pub client: WorkerClient,
    stream: Streaming<AssignmentUpdate>,
    progress: Arc<Mutex<Option<AssignmentProgress>>>,
    heartbeats: Option<tokio::task::JoinHandle<()>>,
}

impl FakeWorker {
    /// Registers `name` with a made-up data address, opens the assignment
    /// stream and heartbeats at the interval the coordinator returned.
    pub async fn start(endpoint: &str, name: &str) -> FakeWorker {
        let mut client = worker_client(endpoint, Some(JOIN_TOKEN)).await;
        let data_address = format!("{name}.test:7070");
        let registered = tokio::time::timeout(UPDATE_TIMEOUT, client.register_worker(register_request(name, &data_address)))
            .await
            .expect("register within 10 s")
            .expect("register")
            .into_inner();
        let id = registered.worker_id;
        let stream = tokio::time::timeout(UPDATE_TIMEOUT, client.watch_assignments(WatchAssignmentsRequest { worker_id: id.clone() }))
            .await
            .expect("watch within 10 s")
            .expect("watch assignments")
            .into_inner();

        let progress: Arc<Mutex<Option<AssignmentProgress>>> = Arc::default();
        let interval = Duration::from_millis(registered.heartbeat_interval_ms as u64);
        let heartbeats = {
            let mut client = client.clone();
            let progress = progress.clone();
            let worker_id = id.clone();
            tokio::spawn(async move {
                loop {
                    let request = HeartbeatRequest { worker_id: worker_id.clone(), progress: progress.lock().unwrap().clone() };
                    if let Ok(Err(status)) = tokio::time::timeout(interval * 4, client.heartbeat(request)).await
                        && status.code() == tonic::Code::FailedPrecondition
                    {
                        return;
                    }
                    tokio::time::sleep(interval).await;
                }
            })
        };
        FakeWorker {
            id,
            name: name.to_owned(),
            data_address,
            client,
            stream,
            progress,
            heartbeats: Some(heartbeats),
        }
    }

    /// Stops heartbeating, as a worker that crashed or lost its network would.
    pub fn stop_heartbeats(&mut self) {
        if let Some(task) = self.heartbeats.take() {
            task.abort();
        }
    }

    /// Sends progress of `assignment` with every heartbeat from now on.
    pub fn report_progress(&self, assignment: &Assignment, step: i64) {
        *self.progress.lock().unwrap() = Some(AssignmentProgress {
            job_id: assignment.job_id.clone(),
            generation: assignment.generation,
            rank: assignment.rank,
            epoch: 1,
            step,
            total_steps: 1000,
            loss: 0.75,
            samples_per_second: 2048.0,
            allreduce_bytes_per_second: 1e9,
        });
    }

    /// Returns the next stream message, or the status that ended the stream.
    pub async fn next_update(&mut self) -> Result<AssignmentUpdate, tonic::Status> {
        tokio::time::timeout(UPDATE_TIMEOUT, self.stream.message())
            .await
            .unwrap_or_else(|_| panic!("worker `{}` got no assignment update within 10 s", self.name))
            .map(|update| update.unwrap_or_else(|| panic!("stream of worker `{}` ended without a status", self.name)))
    }

    /// Waits for the next message and expects an assignment.
    pub async fn next_assignment(&mut self) -> Assignment {
        match self.next_update().await.expect("stream open").kind {
            Some(assignment_update::Kind::Assignment(assignment)) => assignment,
            other => panic!("worker `{}` expected an assignment, got {other:?}", self.name),
        }
    }

    /// Waits for the next message and expects a release.
    pub async fn next_release(&mut self) -> Release {
        match self.next_update().await.expect("stream open").kind {
            Some(assignment_update::Kind::Release(release)) => release,
            other => panic!("worker `{}` expected a release, got {other:?}", self.name),
        }
    }

    /// Expects no stream message for `quiet`.
    pub async fn expect_quiet(&mut self, quiet: Duration) {
        if let Ok(update) = tokio::time::timeout(quiet, self.stream.message()).await {
            panic!("worker `{}` expected no update, got {update:?}", self.name);
        }
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.stop_heartbeats();
    }
}
