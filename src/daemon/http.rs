//! The local HTTP API: every command of the command line, for the command line itself (when the
//! daemon has the store) and for integrations. `/healthz` and `/metrics` are open; everything
//! under `/v1/` needs the bearer token, compared in constant time. Errors are JSON of one shape
//! (`wire::ErrorBody`). README.md ("Local API") lists the endpoints. The status pages for a
//! browser (`/`, `/orders/ID`, made by `page`) take the token as the password of HTTP Basic too
//! (README.md, "Status page").

use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use hyper::body::Frame;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use super::engine::Queue;
use super::metrics::Metrics;
use super::page;
use super::JobError;
use crate::clock::Clock;
use crate::operations::{
    self, CancelError, InputKind, IntakeReport, ReferError, Source, StateFilter, VoidError,
    WriteError,
};
use crate::wire::{ErrorBody, ErrorDetail, PlanRecord, DAY_HEADER};

/// Largest request body: an input file sent by the command line, or orders posted.
pub const BODY_BYTES_MAX: usize = 512 << 20;
/// How long the engine waits for a client to take the next chunk of a streamed answer.
const READER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
/// Bytes of a streamed answer gathered before they are sent.
const CHUNK_BYTES: usize = 256 << 10;

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub queue: Queue,
    pub metrics: Arc<Metrics>,
    pub token: Arc<RwLock<String>>,
    pub clock: Clock,
    /// Kibibytes of request bodies the daemon may hold at once (`BODIES_KIB_MAX`).
    pub bodies: Arc<tokio::sync::Semaphore>,
}

/// Request bodies held at once, at most, in KiB: a request waits for its share before its body
/// is read, so that many large requests at once slow down instead of exhausting memory.
pub const BODIES_KIB_MAX: usize = 1 << 20;

/// A request's share of the body budget: its declared length, or the largest body when it
/// declares none.
pub fn body_share(content_length: Option<u64>) -> u32 {
    let bytes = content_length
        .unwrap_or(BODY_BYTES_MAX as u64)
        .min(BODY_BYTES_MAX as u64);
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

pub fn router(api: Api) -> Router {
    let v1 = Router::new()
        .route("/orders", post(post_orders).get(list_orders))
        .route("/orders/{order_id}", get(get_order))
        .route("/orders/refer", post(refer_orders))
        .route("/orders/{order_id}/cancel", post(cancel_order))
        .route("/items", post(post_items).get(list_items))
        .route("/duties", post(post_duties).get(list_duties))
        .route("/stock/receive", post(post_receipts))
        .route("/stock/count", post(post_counts))
        .route("/stock", get(list_stock))
        .route("/plan", get(plan))
        .route("/batch", post(batch))
        .route("/releases/{release_id}/void", post(void_release))
        .route("/releases/write", post(write_releases))
        .route("/store/check", get(check_store))
        .route("/store/dump", get(dump_store))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .route_layer(middleware::from_fn_with_state(api.clone(), within_budget))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize));
    // The status pages, for a browser: the token as the password of HTTP Basic, or as a bearer.
    let pages = Router::new()
        .route("/", get(status_page))
        .route("/orders/{order_id}", get(order_page))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize_page));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(pages)
        .nest("/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

/// An error answer: a status and `{"error": {"code", "message"}}`.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }
}

impl JobError {
    fn into_api_error(self) -> ApiError {
        self.into()
    }
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> ApiError {
        let (status, code) = match &error {
            JobError::Refused(_) => (StatusCode::BAD_REQUEST, "rejected-file"),
            JobError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            JobError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            JobError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            JobError::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

async fn authorize(
    State(api): State<Api>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = api
        .token
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let matches: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if !matches || expected.is_empty() {
        let path = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or_else(
                || request.uri().path().to_owned(),
                |uri| uri.path().to_owned(),
            );
        tracing::warn!(%path, "API request without a valid token refused");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is needed (api.token_file)",
        )
        .into_response();
    }
    next.run(request).await
}

/// Holds the request's share of the body budget until its answer is made.
async fn within_budget(State(api): State<Api>, request: Request, next: Next) -> Response {
    let content_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let Ok(_share) = api
        .bodies
        .acquire_many_owned(body_share(content_length))
        .await
    else {
        return JobError::Stopping.into_api_error().into_response();
    };
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not take that method",
    )
}

async fn healthz(State(api): State<Api>) -> Response {
    match api.metrics.failing() {
        None => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "failing", "reason": why})),
        )
            .into_response(),
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        api.metrics.render(api.clock.now()),
    )
        .into_response()
}

/// `?name=`: how reports name what was sent.
#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

fn name_of(query: Result<Query<Named>, axum::extract::rejection::QueryRejection>) -> PathBuf {
    query
        .ok()
        .and_then(|Query(named)| named.name)
        .filter(|name| !name.is_empty() && name.len() <= 4096)
        .unwrap_or_else(|| "request".to_owned())
        .into()
}

fn body_of(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "too-large",
                format!("the body is larger than {BODY_BYTES_MAX} bytes: drop large files into the spool instead"),
            )
        } else {
            ApiError::new(status, "bad-request", rejection.body_text())
        }
    })
}

/// An intake's answer: 200 when every line was taken in, 422 when some were rejected (the
/// others are committed all the same).
fn intake_answer(report: IntakeReport) -> Response {
    let status = if report.rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(report)).into_response()
}

async fn post_orders(
    State(api): State<Api>,
    query: Result<Query<Named>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(query);
    let bytes = body_of(body)?;
    let report = api.queue.post_orders(name, bytes).await?;
    Ok(intake_answer(report))
}

async fn post_items(
    State(api): State<Api>,
    query: Result<Query<Named>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    post_file(api, name_of(query), body_of(body)?, InputKind::Items).await
}

async fn post_duties(
    State(api): State<Api>,
    query: Result<Query<Named>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    post_file(api, name_of(query), body_of(body)?, InputKind::Duties).await
}

async fn post_receipts(
    State(api): State<Api>,
    query: Result<Query<Named>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    post_file(api, name_of(query), body_of(body)?, InputKind::Receipts).await
}

async fn post_counts(
    State(api): State<Api>,
    query: Result<Query<Named>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    post_file(api, name_of(query), body_of(body)?, InputKind::Counts).await
}

/// A catalogue or stock file sent whole, taken in alone.
async fn post_file(
    api: Api,
    name: PathBuf,
    bytes: Bytes,
    kind: InputKind,
) -> Result<Response, ApiError> {
    let report = api
        .queue
        .run(move |engine| {
            let source = Source::Bytes {
                name: &name,
                bytes: &bytes,
            };
            let report = engine.import(source, kind, None)?;
            engine.metrics.intake("api", &report);
            super::log_rejections("api", &report);
            Ok(report)
        })
        .await?;
    Ok(intake_answer(report))
}

/// The order id of the path; one that is not UTF-8 is a bad request.
fn order_id_of(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(order_id)| order_id)
        .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

async fn cancel_order(
    State(api): State<Api>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let order_id = order_id_of(path)?;
    let doc = api
        .queue
        .run(move |engine| {
            let result =
                operations::cancel(&mut engine.store, &order_id).map_err(|error| match error {
                    CancelError::Unknown(_) => JobError::NotFound(error.to_string()),
                    CancelError::Released { .. } | CancelError::Referred { .. } => {
                        JobError::Conflict(error.to_string())
                    }
                    CancelError::Store(_) => JobError::failed(error),
                });
            engine.after(&result);
            result
        })
        .await?;
    Ok(axum::Json(doc).into_response())
}

/// `{"order_ids": ["..."], "note": "..."}`; the note may be left out.
#[derive(Deserialize)]
struct ReferBody {
    order_ids: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn refer_orders(
    State(api): State<Api>,
    body: Result<axum::Json<ReferBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let ReferBody { order_ids, note } =
        json_body(body, r#"{"order_ids": ["..."], "note": "..."}"#)?;
    let doc = api
        .queue
        .run(move |engine| {
            let config = engine.config.clone();
            let result = operations::refer(
                &mut engine.store,
                &config,
                &engine.clock,
                &order_ids,
                note.as_deref(),
            )
            .map_err(|error| match error {
                ReferError::Unknown(_) => JobError::NotFound(error.to_string()),
                ReferError::NoOrders | ReferError::Twice(_) => JobError::Refused(error.to_string()),
                ReferError::NotHeld { .. }
                | ReferError::Unvalued { .. }
                | ReferError::Short { .. } => JobError::Conflict(error.to_string()),
                ReferError::Store(_) => JobError::failed(error),
            });
            engine.after(&result);
            result
        })
        .await?;
    Ok(axum::Json(doc).into_response())
}

async fn get_order(
    State(api): State<Api>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let order_id = order_id_of(path)?;
    let row = api
        .queue
        .run(move |engine| {
            let config = engine.config.clone();
            match operations::order(&mut engine.store, &config, &engine.clock, &order_id) {
                Ok(Some(row)) => Ok(row),
                Ok(None) => Err(JobError::NotFound(format!("order {order_id} is not known"))),
                Err(error) => Err(JobError::failed(error)),
            }
        })
        .await?;
    Ok(axum::Json(row).into_response())
}

/// `?state=`.
#[derive(Deserialize)]
struct StateQuery {
    state: Option<String>,
}

async fn list_orders(
    State(api): State<Api>,
    query: Result<Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let filter = match query.state.as_deref() {
        None => None,
        Some(word) => Some(StateFilter::from_word(word).ok_or_else(|| {
            ApiError::bad_request(format!(
                "state must be one of pending, held, released, cancelled, referred; found {word:?}"
            ))
        })?),
    };
    stream(api.queue, "application/x-ndjson", move |engine, out| {
        let config = engine.config.clone();
        let (store, clock) = (&engine.store, &engine.clock);
        operations::for_each_order(store, &config, clock, filter, |row| -> anyhow::Result<()> {
            serde_json::to_writer(&mut *out, &row)?;
            out.write_all(b"\n")?;
            Ok(())
        })
        .map_err(|error| JobError::Failed(format!("{error:#}")))
    })
    .await
}

async fn list_items(State(api): State<Api>) -> Result<Response, ApiError> {
    list_rows(api, operations::item_rows).await
}

/// The duty rows in force on `?day=` (default today), as JSON Lines, the day in the
/// `border-release-day` header.
async fn list_duties(
    State(api): State<Api>,
    query: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let day = day_of(query)?;
    let (day, rows) = api
        .queue
        .run(move |engine| {
            operations::duty_rows(&engine.store, &engine.config, &engine.clock, day)
                .map_err(JobError::failed)
        })
        .await?;
    let mut body = Vec::new();
    for row in &rows {
        serde_json::to_writer(&mut body, row)
            .map_err(|error| ApiError::from(JobError::Failed(error.to_string())))?;
        body.push(b'\n');
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (header::HeaderName::from_static(DAY_HEADER), day.to_string()),
        ],
        body,
    )
        .into_response())
}

async fn list_stock(State(api): State<Api>) -> Result<Response, ApiError> {
    list_rows(api, operations::stock_rows).await
}

/// Rows of a listing as JSON Lines.
async fn list_rows<T: serde::Serialize + 'static>(
    api: Api,
    rows: fn(&crate::store::Store) -> Result<Vec<T>, crate::store::StoreError>,
) -> Result<Response, ApiError> {
    stream(api.queue, "application/x-ndjson", move |engine, out| {
        let failed = |error: serde_json::Error| JobError::Failed(error.to_string());
        for row in rows(&engine.store).map_err(JobError::failed)? {
            serde_json::to_writer(&mut *out, &row).map_err(failed)?;
            out.write_all(b"\n")
                .map_err(|error| JobError::Failed(error.to_string()))?;
        }
        Ok(())
    })
    .await
}

/// `?day=`.
#[derive(Deserialize)]
struct DayQuery {
    day: Option<NaiveDate>,
}

fn day_of(
    query: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Option<NaiveDate>, ApiError> {
    query
        .map(|Query(query)| query.day)
        .map_err(|_| ApiError::bad_request("day must be a date, YYYY-MM-DD"))
}

async fn plan(
    State(api): State<Api>,
    query: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let day = day_of(query)?;
    stream(api.queue, "application/json", move |engine, out| {
        let config = engine.config.clone();
        let planned =
            operations::plan(&mut engine.store, &config, &engine.clock, day).map_err(|error| {
                if error.is_refusal() {
                    JobError::Conflict(error.to_string())
                } else {
                    JobError::failed(error)
                }
            })?;
        let summary = operations::summarise(&planned);
        let write = |out: &mut ChunkWriter| -> std::io::Result<()> {
            serde_json::to_writer(&mut *out, &PlanRecord::new(&planned, &summary, &config))?;
            out.write_all(b"\n")
        };
        write(out).map_err(|error| JobError::Failed(error.to_string()))
    })
    .await
}

async fn batch(
    State(api): State<Api>,
    query: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let day = day_of(query)?;
    let doc = api
        .queue
        .run(move |engine| {
            let doc = engine.batch(day, None);
            if doc.is_err() {
                engine.metrics.batch_failed();
            }
            let doc = doc?;
            super::log_batch("api", &doc);
            Ok(doc)
        })
        .await?;
    Ok(axum::Json(doc).into_response())
}

/// A JSON body, or a bad request that shows its `shape`.
fn json_body<T>(
    body: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    body.map(|axum::Json(body)| body).map_err(|rejection| {
        ApiError::bad_request(format!(
            "the body must be {shape}: {}",
            rejection.body_text()
        ))
    })
}

/// `{"reason": "..."}`.
#[derive(Deserialize)]
struct VoidBody {
    reason: String,
}

async fn void_release(
    State(api): State<Api>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Result<axum::Json<VoidBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let release_id = path
        .map(|Path(release_id)| release_id)
        .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let VoidBody { reason } = json_body(body, r#"{"reason": "..."}"#)?;
    let doc = api
        .queue
        .run(move |engine| {
            let config = engine.config.clone();
            let result = operations::void_release(
                &mut engine.store,
                &config,
                &engine.clock,
                &release_id,
                &reason,
            )
            .map_err(|error| match error {
                VoidError::Unknown(_) => JobError::NotFound(error.to_string()),
                VoidError::Already { .. } => JobError::Conflict(error.to_string()),
                VoidError::NoReason => JobError::Refused(error.to_string()),
                VoidError::Store(_) => JobError::failed(error),
            });
            if let Ok(doc) = &result {
                engine.metrics.release_voided(doc);
            }
            engine.after(&result);
            result
        })
        .await?;
    Ok(axum::Json(doc).into_response())
}

/// `?day=`, required.
#[derive(Deserialize)]
struct RequiredDay {
    day: NaiveDate,
}

async fn write_releases(
    State(api): State<Api>,
    query: Result<Query<RequiredDay>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(RequiredDay { day }) =
        query.map_err(|_| ApiError::bad_request("day must be a date, YYYY-MM-DD"))?;
    let doc = api
        .queue
        .run(move |engine| {
            let config = engine.config.clone();
            operations::write_releases(&mut engine.store, &config, day).map_err(|error| match error
            {
                WriteError::NoReleases(_) => JobError::NotFound(error.to_string()),
                _ => JobError::failed(error),
            })
        })
        .await?;
    Ok(axum::Json(doc).into_response())
}

async fn check_store(State(api): State<Api>) -> Result<Response, ApiError> {
    let doc = api
        .queue
        .run(|engine| {
            let config = engine.config.clone();
            operations::check_store(&engine.store, &config).map_err(JobError::failed)
        })
        .await?;
    Ok(axum::Json(doc).into_response())
}

/// The store's dump, from a view the engine takes at once and hands over: the dump is written
/// on a thread of its own while the engine goes on with other jobs, and shows the store as it
/// was when it was asked for.
async fn dump_store(State(api): State<Api>) -> Result<Response, ApiError> {
    let view = api
        .queue
        .run(|engine| operations::dump_view(&engine.store).map_err(JobError::failed))
        .await?;
    let clock = api.clock.clone();
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            started: None,
        };
        match operations::dump(&view, &clock, &mut out) {
            Ok(counts) => {
                let _ = out.finish();
                tracing::info!(
                    orders = counts.orders,
                    releases = counts.releases,
                    "store dump written"
                );
            }
            // The body ends without its end line, which the reader takes for a failure.
            Err(error) => tracing::error!(
                error = %format!("{:#}", anyhow::Error::from(error)),
                "the store dump failed"
            ),
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::new(ChannelBody(receiver)),
    )
        .into_response())
}

/// Runs `work` on the engine, writing its answer into a body that is sent as it is written.
/// An error before the first byte is an error answer; one after it cuts the body short.
async fn stream(
    queue: Queue,
    content_type: &'static str,
    work: impl FnOnce(&mut super::engine::Engine, &mut ChunkWriter) -> Result<(), JobError>
        + Send
        + 'static,
) -> Result<Response, ApiError> {
    let (sender, receiver) = mpsc::channel::<Bytes>(4);
    let (started, first) = tokio::sync::oneshot::channel::<Result<(), JobError>>();
    let job = async move {
        queue
            .run(move |engine| {
                let mut out = ChunkWriter {
                    sender,
                    buffer: Vec::with_capacity(CHUNK_BYTES),
                    started: Some(started),
                };
                let result = work(engine, &mut out);
                match result {
                    Ok(()) => {
                        let _ = out.finish();
                        Ok(())
                    }
                    Err(error) => {
                        if let Some(started) = out.started.take() {
                            let _ = started.send(Err(error.clone()));
                        }
                        Err(error)
                    }
                }
            })
            .await
    };
    let job = tokio::spawn(job);
    match first.await {
        Ok(Ok(())) => Ok((
            [(header::CONTENT_TYPE, content_type)],
            Body::new(ChannelBody(receiver)),
        )
            .into_response()),
        Ok(Err(error)) => Err(error.into()),
        // The job ended without starting the body: its own result says why.
        Err(_) => match job.await {
            Ok(Err(error)) => Err(error.into()),
            _ => Err(JobError::Stopping.into()),
        },
    }
}

/// Gathers written bytes into chunks and sends them to the answer's body; the first chunk (or
/// the end) tells the handler the answer has started.
pub struct ChunkWriter {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    started: Option<tokio::sync::oneshot::Sender<Result<(), JobError>>>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if let Some(started) = self.started.take() {
            let _ = started.send(Ok(()));
        }
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        // The engine waits for a slow reader, but not for one that has stopped reading: every
        // other job waits behind it.
        let start = crate::clock::monotonic();
        loop {
            match self.sender.try_send(chunk) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(std::io::Error::other("the client went away"))
                }
                Err(mpsc::error::TrySendError::Full(again)) => {
                    if start.elapsed() > READER_PATIENCE {
                        return Err(std::io::Error::other("the client stopped reading"));
                    }
                    chunk = again;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A body fed from a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(context)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Whether `given` is the API's token, compared in constant time.
fn is_token(api: &Api, given: &str) -> bool {
    let expected = api
        .token
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let matches: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    matches && !expected.is_empty()
}

/// The token a browser or a client gives in `Authorization`: the password of HTTP Basic (any
/// user name), or a bearer token.
fn page_credential(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(rest)?).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    Some(password.to_owned())
}

/// Standard base64 (RFC 4648), padding optional; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut held) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    // A lone sixth of a byte left over is no base64.
    (held < 6).then_some(out)
}

/// The pages want the token, as the password of HTTP Basic (so that a browser asks for it) or
/// as a bearer token; without it, 401 with the Basic challenge.
async fn authorize_page(State(api): State<Api>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let given = header.and_then(page_credential);
    if given.is_some_and(|given| is_token(&api, &given)) {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    if header.is_some() {
        tracing::warn!(%path, "status page request with wrong credentials refused");
    } else {
        // A browser asks without credentials first.
        tracing::debug!(%path, "status page request without credentials: asking for them");
    }
    let mut response = html(
        StatusCode::UNAUTHORIZED,
        page::message_page(
            "Credentials needed",
            "This page shows personal data: give any user name and the API token \
             (the first line of api.token_file) as the password.",
        ),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"border-release\""),
    );
    response
}

/// An HTML answer, not to be stored (it holds personal data) and allowed nothing but its inline
/// style and data images.
fn html(status: StatusCode, text: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                 base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        ],
        text,
    )
        .into_response()
}

/// A job's failure as a page.
fn error_page(error: JobError) -> Response {
    let (status, title) = match &error {
        JobError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        JobError::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "The daemon is stopping"),
        JobError::Refused(_) | JobError::Conflict(_) => (StatusCode::BAD_REQUEST, "Refused"),
        JobError::Failed(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The store cannot be read",
        ),
    };
    html(status, page::message_page(title, &error.to_string()))
}

/// `?page=`: a page of the held orders, from 1.
#[derive(Deserialize)]
struct PageQuery {
    page: Option<u64>,
}

/// `GET /`: the status page, from a view of the store the engine hands over at once and read
/// on a thread of its own, so that intake does not wait for it.
async fn status_page(
    State(api): State<Api>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(PageQuery { page: asked })) = query else {
        return html(
            StatusCode::BAD_REQUEST,
            page::message_page("Bad request", "page must be a whole number, from 1"),
        );
    };
    let number = asked.unwrap_or(1).max(1);
    let view = api
        .queue
        .run(|engine| {
            let view = operations::status_view(&engine.store).map_err(JobError::failed)?;
            Ok((view, engine.config.clone()))
        })
        .await;
    let (view, config) = match view {
        Ok(view) => view,
        Err(error) => return error_page(error),
    };
    let (clock, metrics) = (api.clock.clone(), api.metrics.clone());
    let rendered = tokio::task::spawn_blocking(move || {
        let skip = (number - 1).saturating_mul(page::HELD_PER_PAGE as u64);
        let status = operations::status(&view, &config, &clock, skip, page::HELD_PER_PAGE)
            .map_err(JobError::failed)?;
        Ok(page::status_page(&status, &metrics.figures(), number))
    })
    .await
    .unwrap_or_else(|_| Err(JobError::Failed("the status page could not be made".into())));
    match rendered {
        Ok(text) => html(StatusCode::OK, text),
        Err(error) => error_page(error),
    }
}

/// `GET /orders/ID`: one order's page, from what `orders show` gives.
async fn order_page(
    State(api): State<Api>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path(order_id)) = path else {
        return html(
            StatusCode::BAD_REQUEST,
            page::message_page("Bad request", "an order id is UTF-8 text"),
        );
    };
    let found = api
        .queue
        .run(move |engine| {
            let config = engine.config.clone();
            match operations::order(&mut engine.store, &config, &engine.clock, &order_id) {
                Ok(Some(doc)) => Ok(doc),
                Ok(None) => Err(JobError::NotFound(format!("order {order_id} is not known"))),
                Err(error) => Err(JobError::failed(error)),
            }
        })
        .await;
    match found {
        Ok(doc) => html(StatusCode::OK, page::order_page(&doc)),
        Err(error @ JobError::NotFound(_)) => html(
            StatusCode::NOT_FOUND,
            page::message_page("Order not known", &error.to_string()),
        ),
        Err(error) => error_page(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_gives_the_token_as_the_basic_password_with_any_user_name() {
        // "user:token-0123", "x:a:b" (a colon in the password), ":token-0123".
        assert_eq!(
            page_credential("Basic dXNlcjp0b2tlbi0wMTIz").as_deref(),
            Some("token-0123")
        );
        assert_eq!(page_credential("basic eDphOmI=").as_deref(), Some("a:b"));
        assert_eq!(
            page_credential("Basic OnRva2VuLTAxMjM=").as_deref(),
            Some("token-0123")
        );
        assert_eq!(
            page_credential("Bearer token-0123").as_deref(),
            Some("token-0123")
        );
        // No colon, not base64, another scheme.
        assert_eq!(page_credential("Basic dG9rZW4="), None);
        assert_eq!(page_credential("Basic ***"), None);
        assert_eq!(page_credential("Digest x"), None);
        assert_eq!(page_credential(""), None);
        assert_eq!(base64_decode("YQ"), Some(b"a".to_vec()));
        assert_eq!(base64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(base64_decode("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(base64_decode("Y"), None);
    }

    #[test]
    fn a_body_takes_its_kibibytes_of_the_budget_and_one_without_a_length_the_most() {
        assert_eq!(body_share(Some(0)), 1);
        assert_eq!(body_share(Some(1)), 1);
        assert_eq!(body_share(Some(1024)), 1);
        assert_eq!(body_share(Some(1025)), 2);
        assert_eq!(body_share(None), (BODY_BYTES_MAX / 1024) as u32);
        assert_eq!(body_share(Some(u64::MAX)), (BODY_BYTES_MAX / 1024) as u32);
        // The largest body fits the budget, so that it can ever be taken.
        assert!(body_share(None) as usize <= BODIES_KIB_MAX);
    }
}
