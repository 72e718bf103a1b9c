//! The `WatchJob` stream: a job's stored history, then live events until it ends.

use std::time::Duration;

use futures::Stream;
use ssl_proto::v1;
use tokio::sync::{broadcast, mpsc, watch as shutdown_watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert::event_to_proto;
use crate::store::{EventKind, JobStore};

/// How often a watcher reads the store for events that another coordinator wrote.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Streams the events of `job_id` after `after_sequence`, ending after the event
/// that moves the job to a terminal state, when the client goes away, or when the
/// server shuts down.
pub(crate) fn watch_events(
    store: JobStore,
    job_id: String,
    after_sequence: i64,
    mut shutdown: shutdown_watch::Receiver<bool>,
) -> impl Stream<Item = Result<v1::JobEvent, Status>> {
    let (sender, receiver) = mpsc::channel(64);
    // Subscribe before the first read so no event slips between read and wait.
    let mut appended = store.subscribe();

    tokio::spawn(async move {
        let mut last_sequence = after_sequence;
        loop {
            let events = match store.events_after(&job_id, last_sequence).await {
                Ok(events) => events,
                Err(error) => {
                    let _ = sender.send(Err(Status::from(error))).await;
                    return;
                }
            };
            for event in &events {
                last_sequence = event.sequence;
                if sender.send(Ok(event_to_proto(event))).await.is_err() {
                    return;
                }
                if let EventKind::StateChange { to, .. } = &event.kind
                    && to.is_terminal()
                {
                    return;
                }
            }
            if !events.is_empty() {
                // A full page may have more behind it; read again at once.
                continue;
            }

            tokio::select! {
                _ = wait_for_job(&mut appended, &job_id) => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = sender.closed() => return,
                _ = shutdown.changed() => {
                    let _ = sender.send(Err(Status::unavailable("coordinator is shutting down; watch again to resume"))).await;
                    return;
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Waits until this process appends an event to `job_id`.
async fn wait_for_job(appended: &mut broadcast::Receiver<String>, job_id: &str) {
    loop {
        match appended.recv().await {
            Ok(id) if id == job_id => return,
            Ok(_) => {}
            // Missed notifications may include ours; read the store to find out.
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
