//! The command line's client of the daemon's local API: used when the daemon has the store, so
//! that every command works the same whether or not the daemon runs.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::config::{Api, Listen};
use crate::wire::ErrorBody;

/// The header a client names itself with, for the daemon's log.
const USER_AGENT: &str = concat!("border-release/", env!("CARGO_PKG_VERSION"));

/// A connection to the daemon's API, as the config describes it.
pub struct Client {
    /// Why the command goes through the daemon, for a connection error.
    why: String,
    listen: Listen,
    token: String,
    runtime: tokio::runtime::Runtime,
}

/// A response, its body still arriving.
pub struct Response {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    body: hyper::body::Incoming,
}

impl Client {
    /// Reads the token and prepares a connection; nothing is sent yet.
    pub fn new(api: &Api, why: String) -> anyhow::Result<Client> {
        let token = read_token(&api.token_file)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the API client")?;
        Ok(Client {
            why,
            listen: api.listen.clone(),
            token,
            runtime,
        })
    }

    /// Sends one request; an error status comes back as a response, not as an error.
    pub fn send(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Response> {
        let request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::USER_AGENT, USER_AGENT)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .context("building the API request")?;
        let listen = &self.listen;
        self.runtime
            .block_on(async move {
                let mut sender = match listen {
                    Listen::Tcp(address) => {
                        let stream = tokio::net::TcpStream::connect(address).await?;
                        handshake(stream).await?
                    }
                    Listen::Unix(path) => {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        handshake(stream).await?
                    }
                };
                let response = sender.send_request(request).await?;
                Ok::<_, anyhow::Error>(Response {
                    status: response.status(),
                    headers: response.headers().clone(),
                    body: response.into_body(),
                })
            })
            .with_context(|| {
                format!(
                    "{}; so the command goes through the daemon's API at {}, which did not answer",
                    self.why,
                    describe(listen)
                )
            })
    }

    /// A GET whose answer must be a success; an error answer's message is the error.
    pub fn get(&self, path_and_query: &str) -> anyhow::Result<Response> {
        let response = self.send(Method::GET, path_and_query, "text/plain", vec![])?;
        if response.status.is_success() {
            Ok(response)
        } else {
            Err(self.error(response))
        }
    }

    /// The whole body.
    pub fn body(&self, response: Response) -> anyhow::Result<Bytes> {
        self.runtime
            .block_on(response.body.collect())
            .map(|collected| collected.to_bytes())
            .context("reading the daemon's answer")
    }

    /// The body, chunk by chunk as it arrives, into `out`.
    pub fn copy_body(&self, response: Response, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut body = response.body;
        self.runtime.block_on(async {
            while let Some(frame) = body.frame().await {
                let frame = frame.context("reading the daemon's answer")?;
                if let Some(data) = frame.data_ref() {
                    out.write_all(data)?;
                }
            }
            Ok(())
        })
    }

    /// The body of a success as JSON; the message of an error response as an error.
    pub fn json<T: serde::de::DeserializeOwned>(&self, response: Response) -> anyhow::Result<T> {
        let status = response.status;
        let body = self.body(response)?;
        if !status.is_success() {
            bail!("{}", error_message(status, &body));
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("the daemon answered with unexpected JSON ({status})"))
    }

    /// The message of an error response.
    pub fn error(&self, response: Response) -> anyhow::Error {
        let status = response.status;
        match self.body(response) {
            Ok(body) => anyhow::anyhow!("{}", error_message(status, &body)),
            Err(error) => error,
        }
    }
}

async fn handshake<S>(
    stream: S,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn error_message(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => error.error.message,
        Err(_) => format!(
            "the daemon answered {status}: {}",
            String::from_utf8_lossy(body).trim()
        ),
    }
}

fn describe(listen: &Listen) -> String {
    match listen {
        Listen::Tcp(address) => address.to_string(),
        Listen::Unix(path) => format!("unix:{}", path.display()),
    }
}

/// The API token: the file's first line, without surrounding whitespace.
pub fn read_token(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "api.token_file {}: cannot read the API token",
            file.display()
        )
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.len() < TOKEN_CHARS_MIN {
        bail!(
            "api.token_file {}: the token must be at least {TOKEN_CHARS_MIN} characters",
            file.display()
        );
    }
    Ok(token)
}

/// Shortest token accepted.
pub const TOKEN_CHARS_MIN: usize = 16;
