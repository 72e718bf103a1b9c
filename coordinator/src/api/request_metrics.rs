//! A tower layer that counts finished gRPC requests by method and status code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};

use crate::metrics::CoordinatorMetrics;

/// Counts each request in [`CoordinatorMetrics::count_request`].
#[derive(Clone)]
pub struct RequestMetricsLayer {
    metrics: Arc<CoordinatorMetrics>,
}

impl RequestMetricsLayer {
    pub fn new(metrics: Arc<CoordinatorMetrics>) -> Self {
        RequestMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics { inner, metrics: self.metrics.clone() }
    }
}

/// The service that [`RequestMetricsLayer`] wraps around the server's routes.
#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: Arc<CoordinatorMetrics>,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for RequestMetrics<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if let Ok(response) = &response {
                let code = response_code(response.headers());
                metrics.count_request(method_label(&path, code), code);
            }
            response
        })
    }
}

/// Returns the method label of a request for `path` that ended with `code`. The
/// server returns `UNIMPLEMENTED` to a path that is not one of its methods, and may reject
/// a request without a valid token before it checks the path. Both share the label
/// `other`, so that requests for made-up paths cannot add series.
fn method_label(path: &str, code: tonic::Code) -> &str {
    match code {
        tonic::Code::Unimplemented | tonic::Code::Unauthenticated => "other",
        _ => path,
    }
}

/// Returns the status of a response whose headers carry it: an error returned before any
/// message. A response without `grpc-status` in its headers counts as `OK`.
///
/// NOTE: a stream that fails after its first message sends its status in the
/// trailers, which this layer does not read, so such a failure counts as `OK`.
fn response_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unimplemented_paths_share_one_label() {
        assert_eq!(method_label("/ssl.v1.JobService/GetJob", tonic::Code::NotFound), "/ssl.v1.JobService/GetJob");
        assert_eq!(method_label("/ssl.v1.JobService/MadeUp", tonic::Code::Unimplemented), "other");
        assert_eq!(method_label("/ssl.v1.JobService/MadeUp", tonic::Code::Unauthenticated), "other");
    }

    #[test]
    fn status_header_sets_the_code() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(response_code(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(response_code(&headers), tonic::Code::NotFound);
    }
}
