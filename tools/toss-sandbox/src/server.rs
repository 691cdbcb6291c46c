//! The HTTP server: routes, the trace-id layer, and an accept loop that can drop a single
//! connection on demand (the `dropConnection` fault).

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::faults::ConnectionKill;
use crate::state::Sandbox;
use crate::{control, page, routes};

pub const TRACE_ID_HEADER: &str = "x-tosspayments-trace-id";

/// Every route of the sandbox.
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .merge(routes::routes())
        .merge(control::routes())
        .merge(page::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn(trace))
        .with_state(sandbox)
}

/// Adds `X-TossPayments-Trace-Id` and logs one line per request: the route template, never
/// the concrete path (it holds billing keys) nor headers or bodies.
async fn trace(request: Request, next: Next) -> Response {
    let trace_id = ulid::Ulid::new().to_string().to_lowercase();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let started = Instant::now();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        trace_id,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Serve until `shutdown` turns true; then stop accepting and let open connections finish
/// (for at most a few seconds).
pub async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                connections.spawn(connection(stream, router.clone(), shutdown.clone()));
            }
            _ = shutdown.changed() => break,
        }
        // reap finished connection tasks so the set does not grow
        while connections.try_join_next().is_some() {}
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let kill = ConnectionKill::default();
    let handle = kill.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(handle.clone());
        router.clone().oneshot(request)
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = kill.fired() => {
            tracing::info!("fault: connection dropped without an answer");
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = kill.fired() => {}
            }
        }
    }
}
