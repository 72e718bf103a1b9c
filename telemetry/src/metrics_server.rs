//! The HTTP listener that serves `GET /metrics` in the Prometheus text format.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::Encoder;
use prometheus::proto::MetricFamily;
use tokio::net::TcpListener;

/// Content type of the Prometheus text exposition format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Encodes `families` in the Prometheus text exposition format.
pub fn encode_metrics(families: &[MetricFamily]) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec fails only for a malformed family, such as one without a
    // name, and the collectors of this workspace register none.
    if let Err(error) = prometheus::TextEncoder::new().encode(families, &mut buffer) {
        tracing::error!(error = %error, "cannot encode the metrics");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves. Each scrape calls
/// `render` for the body, so it can read current values such as database counts.
/// Other paths get 404 and other methods 405.
pub async fn serve_metrics<R, F>(listener: TcpListener, render: R, shutdown: impl Future<Output = ()>)
where
    R: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = String> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Such as too many open files; the next accept may succeed.
                tracing::warn!(error = %error, "metrics listener cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(request, render.clone()));
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, %peer, "metrics connection ended with an error");
            }
        });
    }
}

async fn respond<R, F>(request: Request<Incoming>, render: R) -> Result<Response<Full<Bytes>>, Infallible>
where
    R: Fn() -> F,
    F: Future<Output = String>,
{
    let response = if request.uri().path() != "/metrics" {
        plain(StatusCode::NOT_FOUND, "not found; metrics are served on /metrics\n")
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        response.headers_mut().insert(ALLOW, "GET, HEAD".parse().expect("a valid header value"));
        response
    } else {
        let mut response = Response::new(Full::new(Bytes::from(render().await)));
        response.headers_mut().insert(CONTENT_TYPE, TEXT_FORMAT.parse().expect("a valid header value"));
        response
    };
    Ok(response)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use prometheus::{IntCounter, Registry};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(address: std::net::SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn metrics_path_serves_rendered_text() {
        let registry = Registry::new();
        let counter = IntCounter::new("ssl_test_events_total", "Events seen by the test.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let render = move || {
            let registry = registry.clone();
            async move { encode_metrics(&registry.gather()) }
        };
        let server = tokio::spawn(serve_metrics(listener, render, std::future::pending()));

        let ok = get(address, "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
        assert!(ok.contains("ssl_test_events_total 3"), "{ok}");

        let missing = get(address, "GET /other HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        let post = get(address, "POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        server.abort();
    }
}
