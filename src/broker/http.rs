//! HTTP Push ingest: Sensor Logger (and any app or board that POSTs JSON) publishing into the
//! broker through the WebSocket port (SENSORS.md §1.4 and §8).
//!
//! The listener hands over every request on a ws:// or wss:// port that is not a WebSocket
//! upgrade; this module answers it and the following requests on the same connection
//! (HTTP/1.1 keep-alive: the app reuses its connection). One task per connection handles its
//! requests one after another, so publishes keep their arrival order per connection.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

use super::auth::Auth;
use super::listener::{HeadError, HttpHead, HttpStart, Refusal, read_head, reason_phrase, refuse};
use super::push_body::{Envelope, SplitError, level, split};
use super::push_stats::PushStats;
use super::router::{Published, Shared};
use crate::cli::HttpArgs;
use crate::conn::transport::Io;
use crate::exit::usage;
use crate::topic;

/// How long a kept-alive connection may wait for (and take to send) its next request head.
/// Sensor Logger pushes every 0.2 to 1 s, so a minute of silence means it stopped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest wait for the next bytes of a body: a slow phone link still makes progress within
/// this, a client that stopped sending (slowloris) loses its connection.
const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest a whole request body may take: a 16 MiB camera frame over a poor phone link
/// takes well under this, and a client trickling bytes just fast enough to beat
/// [`BODY_STALL_TIMEOUT`] still loses its connection.
const BODY_TIMEOUT: Duration = Duration::from_secs(300);

/// A chunk-size line (hex digits and extensions) longer than this is not a real client.
const MAX_CHUNK_LINE: usize = 1024;

/// The longest an answer may take to be written: a client that sends requests and never
/// reads the answers loses its connection instead of holding its task forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bodies in flight at once, as multiples of `--http-max-body`; `--split`'s messages from one
/// body are capped at the same multiple. Memory for pushes stays a small multiple of this.
const IN_FLIGHT_BODIES: usize = 4;

/// Bodies larger than this are parsed (and split) on a blocking thread: a 16 MiB body takes
/// tens of milliseconds, which would stall every connection on the same runtime worker.
const PARSE_INLINE: usize = 64 * 1024;

/// HTTP Push options, checked (`--http-*`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Only this path takes pushes; any path when None.
    pub path: Option<String>,
    pub topic: TopicTemplate,
    pub qos: u8,
    pub token: Option<String>,
    pub max_body: usize,
    pub split: bool,
    /// Keep per-device counts for the status line on stderr.
    pub status_line: bool,
}

impl HttpConfig {
    /// None without `--http`.
    pub fn from_args(args: &HttpArgs, status_line: bool) -> anyhow::Result<Option<HttpConfig>> {
        if !args.http {
            return Ok(None);
        }
        let path = match &args.http_path {
            None => None,
            Some(p) if p.starts_with('/') && !p.contains(['?', '#', ' ']) => Some(p.clone()),
            Some(p) => {
                return Err(usage(format!(
                    "--http-path '{p}': give a path starting with '/', e.g. /data"
                )));
            }
        };
        let max_body = usize::try_from(args.http_max_body)
            .map_err(|_| usage("--http-max-body is larger than this machine can hold"))?;
        Ok(Some(HttpConfig {
            path,
            topic: TopicTemplate::parse(&args.http_topic)?,
            qos: args.http_qos,
            token: args.http_token.clone(),
            max_body,
            split: args.split,
            status_line,
        }))
    }

    /// The path to type into the app: the configured one, or the official sample's `/data`.
    pub fn suggested_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/data")
    }
}

/// `--http-topic`: literal text with `{deviceId}`, `{sessionId}` and `{path}` filled in per
/// request.
#[derive(Debug, Clone)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    DeviceId,
    SessionId,
    Path,
}

impl TopicTemplate {
    pub fn parse(text: &str) -> anyhow::Result<TopicTemplate> {
        let bad = |why: String| usage(format!("--http-topic '{text}': {why}"));
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| bad("a '{' has no closing '}'".into()))?;
            parts.push(match &rest[open + 1..open + close] {
                "deviceId" => Part::DeviceId,
                "sessionId" => Part::SessionId,
                "path" => Part::Path,
                other => {
                    return Err(bad(format!(
                        "unknown placeholder {{{other}}}: use {{deviceId}}, {{sessionId}} or {{path}}"
                    )));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let template = TopicTemplate { parts };
        // Placeholders filled with a plain word: what is left is the template's own text.
        let sample = template.render_with(|_| Some("x"))?;
        if let Some(why) = topic::name_error(&sample) {
            return Err(bad(format!("not a topic to publish to: {why}")));
        }
        if sample.starts_with('$') {
            return Err(bad("$ topics belong to the broker: choose another".into()));
        }
        Ok(template)
    }

    /// The topic for one request; the error is the short text for a 400 answer. Values from
    /// the request fill one level each (`{path}` one per path segment), made safe as
    /// `--split`'s levels are: no wildcard, `/`, NUL or leading `$` gets through.
    fn render(&self, envelope: &Envelope<'_>, path: &str) -> Result<String, String> {
        let path = path
            .trim_start_matches('/')
            .split('/')
            .map(|segment| match segment {
                "" => String::new(),
                s => level(s),
            })
            .collect::<Vec<_>>()
            .join("/");
        let topic = self
            .render_with(|part| match part {
                Part::DeviceId => envelope.device_id.as_deref().map(level),
                Part::SessionId => envelope.session_id.as_deref().map(level),
                Part::Path => Some(path.clone()),
                Part::Text(_) => None,
            })
            .map_err(|e| e.to_string())?;
        if topic.starts_with('$') {
            return Err("smq: pushes cannot publish to $ topics".into());
        }
        match topic::name_error(&topic) {
            None => Ok(topic),
            Some(why) => Err(format!(
                "smq: the topic '{}' is not valid: {why}",
                topic.chars().take(64).collect::<String>()
            )),
        }
    }

    fn render_with<V: AsRef<str>>(
        &self,
        mut fill: impl FnMut(&Part) -> Option<V>,
    ) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                placeholder => {
                    let name = match placeholder {
                        Part::DeviceId => "deviceId",
                        Part::SessionId => "sessionId",
                        _ => "path",
                    };
                    let value = fill(placeholder).ok_or_else(|| {
                        anyhow::anyhow!("smq: the body has no {name} for the topic")
                    })?;
                    out.push_str(value.as_ref());
                }
            }
        }
        Ok(out)
    }
}

/// The receiver's shared state: options, the broker's rules for anonymous clients (a push is
/// one), the bound on bodies in flight and, with the status line, per-device counts.
pub struct Ingest {
    pub config: HttpConfig,
    pub stats: Mutex<PushStats>,
    auth: Arc<Auth>,
    /// mosquitto's `message_size_limit`, for each published message.
    max_payload: Option<usize>,
    /// Bytes of request bodies being read or processed, as permits.
    in_flight: Semaphore,
    in_flight_max: usize,
}

impl Ingest {
    /// Fails when pushes would let in the anonymous clients the broker refuses.
    pub fn new(
        config: HttpConfig,
        auth: Arc<Auth>,
        max_payload: Option<usize>,
    ) -> anyhow::Result<Ingest> {
        if config.token.is_none() && !auth.anonymous_allowed() {
            return Err(usage(
                "--http takes pushes without a login, but this broker refuses anonymous clients: add --http-token SECRET (the app's auth token), or --allow-anonymous",
            ));
        }
        let in_flight_max = config
            .max_body
            .saturating_mul(IN_FLIGHT_BODIES)
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Ok(Ingest {
            config,
            stats: Mutex::new(PushStats::default()),
            auth,
            max_payload,
            in_flight: Semaphore::new(in_flight_max),
            in_flight_max,
        })
    }

    /// The start-up line on who may push.
    pub fn summary(&self) -> String {
        format!(
            "HTTP Push: pushes are anonymous clients, {}",
            if self.config.token.is_some() {
                "each needing the --http-token"
            } else {
                "open to anyone who reaches the port"
            }
        )
    }
}

/// Serves one HTTP connection until the client closes it, goes idle, or the broker stops.
pub async fn serve(
    start: HttpStart,
    shared: Arc<Shared>,
    ingest: Arc<Ingest>,
    mut stop: watch::Receiver<bool>,
) {
    let HttpStart {
        mut io,
        mut head,
        tail,
    } = start;
    let mut conn = Conn {
        buf: tail,
        pos: 0,
        max_body: ingest.config.max_body,
    };
    loop {
        if !handle(&mut io, &head, &mut conn, &shared, &ingest).await {
            return;
        }
        let pending = conn.take_pending();
        let read = tokio::select! {
            r = tokio::time::timeout(IDLE_TIMEOUT, read_head(&mut io, pending)) => r,
            _ = stop.changed() => return,
        };
        let (bytes, tail) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(HeadError::Refuse(refusal))) => {
                refuse_within(&mut io, refusal).await;
                return;
            }
            // Closed, broken or idle: nothing is owed to a client that sent no request.
            Ok(Err(HeadError::Closed | HeadError::Io(_))) | Err(_) => return,
        };
        head = match HttpHead::parse(&bytes) {
            Ok(head) => head,
            Err(refusal) => {
                refuse_within(&mut io, refusal).await;
                return;
            }
        };
        conn = Conn {
            buf: tail,
            pos: 0,
            max_body: ingest.config.max_body,
        };
    }
}

/// Answers one request; returns whether the connection stays open for another.
async fn handle(
    io: &mut Box<dyn Io>,
    head: &HttpHead,
    conn: &mut Conn,
    shared: &Shared,
    ingest: &Arc<Ingest>,
) -> bool {
    match answer(io, head, conn, shared, ingest).await {
        Ok(reply) => {
            let keep_alive = reply.keep_alive && wants_keep_alive(head);
            send(io, &reply, head.method == "HEAD", keep_alive).await && keep_alive
        }
        Err(End::Refuse(refusal)) => {
            refuse_within(io, refusal).await;
            false
        }
        Err(End::Gone) => false,
    }
}

/// [`refuse`], given up after [`WRITE_TIMEOUT`] when the client does not read.
async fn refuse_within(io: &mut Box<dyn Io>, refusal: Refusal) {
    let _ = tokio::time::timeout(WRITE_TIMEOUT, refuse(io, refusal)).await;
}

/// A response that leaves the connection usable (the request was read whole).
struct Reply {
    status: u16,
    body: String,
    headers: &'static str,
    keep_alive: bool,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            headers: "",
            keep_alive: true,
        }
    }
}

/// Why a request ends its connection.
enum End {
    /// Answered with this refusal, then closed: the rest of the request was not read.
    Refuse(Refusal),
    /// The client went away mid-request: nobody to answer.
    Gone,
}

fn wants_keep_alive(head: &HttpHead) -> bool {
    if head.version == "HTTP/1.0" {
        head.has_token("Connection", "keep-alive")
    } else {
        !head.has_token("Connection", "close")
    }
}

async fn send(io: &mut Box<dyn Io>, reply: &Reply, head_only: bool, keep_alive: bool) -> bool {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}{}\r\n",
        reply.status,
        reason_phrase(reply.status),
        reply.body.len(),
        reply.headers,
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        },
    );
    if !head_only {
        out.push_str(&reply.body);
    }
    let write = async { io.write_all(out.as_bytes()).await.is_ok() && io.flush().await.is_ok() };
    let sent = tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or(false);
    if sent && !keep_alive {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, io.shutdown()).await;
    }
    sent
}

async fn answer(
    io: &mut Box<dyn Io>,
    head: &HttpHead,
    conn: &mut Conn,
    shared: &Shared,
    ingest: &Arc<Ingest>,
) -> Result<Reply, End> {
    let config = &ingest.config;
    if head.version != "HTTP/1.1" && head.version != "HTTP/1.0" {
        return Err(End::Refuse(Refusal::new(
            505,
            format!("smq: {} is not supported: use HTTP/1.1", head.version),
        )));
    }
    let path = request_path(&head.target);
    if let Some(want) = &config.path {
        if path != want {
            return Err(End::Refuse(Refusal::new(
                404,
                format!("smq: no HTTP Push receiver at {path}: use {want}"),
            )));
        }
    }
    match head.method.as_str() {
        "POST" => {}
        "GET" | "HEAD" => {
            let mut reply = Reply::text(200, help_page(head, path, config));
            // A body on a GET is unexpected and not read: the connection cannot be reused.
            reply.keep_alive = head.header("Content-Length").is_none_or(|v| v == "0")
                && head.header("Transfer-Encoding").is_none();
            return Ok(reply);
        }
        other => {
            return Err(End::Refuse(Refusal {
                status: 405,
                headers: "Allow: GET, HEAD, POST\r\n",
                why: format!("smq: {other} is not accepted here: POST a JSON body"),
            }));
        }
    }
    if let Some(token) = &config.token {
        if !authorized(head.header("Authorization"), token) {
            return Err(End::Refuse(Refusal::new(499, "smq: bad token")));
        }
    }
    let gzip = match head.header("Content-Encoding").map(str::trim) {
        None | Some("") => false,
        Some(e) if e.eq_ignore_ascii_case("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => true,
        Some(other) => {
            return Err(End::Refuse(Refusal::new(
                415,
                format!("smq: Content-Encoding {other} is not supported: send gzip or plain JSON"),
            )));
        }
    };
    let framing = framing(head, config.max_body).map_err(End::Refuse)?;
    // Reserved before the body is read, held until its messages are routed.
    let want = match framing {
        Framing::Length(n) => n,
        Framing::Chunked => config.max_body,
    }
    .min(ingest.in_flight_max);
    let _permit = match u32::try_from(want) {
        Ok(0) => None,
        Ok(n) => Some(ingest.in_flight.try_acquire_many(n).map_err(|_| {
            End::Refuse(Refusal {
                status: 503,
                headers: "Retry-After: 1\r\n",
                why: "smq: too many pushes at once: try again in a second".into(),
            })
        })?),
        Err(_) => None,
    };
    if head.has_token("Expect", "100-continue") && !conn.holds_whole(&framing) {
        // The client waits for this before sending the body (curl does for large bodies).
        let sent = tokio::time::timeout(
            WRITE_TIMEOUT,
            io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n"),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return Err(End::Gone);
        }
    }
    let read = async {
        match framing {
            Framing::Length(n) => conn.read_exact(io, n).await,
            Framing::Chunked => conn.read_chunked(io).await,
        }
    };
    let body = tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| {
            End::Refuse(Refusal::new(
                408,
                format!(
                    "smq: the request body took longer than {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        })??;
    let body = if gzip {
        gunzip(&body, config.max_body).map_err(End::Refuse)?
    } else {
        body
    };
    let body = Bytes::from(body);
    let messages = if body.len() > PARSE_INLINE {
        let (ingest, path) = (ingest.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || digest(&ingest, body, &path))
            .await
            .unwrap_or_else(|_| Err(Reply::text(500, "smq: the body could not be read\n")))
    } else {
        digest(ingest, body, path)
    };
    let messages = match messages {
        Ok(messages) => messages,
        Err(reply) => return Ok(reply),
    };
    let counters = &shared.counters;
    let mut synced = None;
    for (topic, payload) in messages {
        counters
            .messages_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (_, _, pos) = shared.publish(&Arc::new(Published {
            topic: Bytes::from(topic),
            payload,
            qos: config.qos,
            retain: false,
            props: None,
            received: Instant::now(),
            from: None,
        }));
        synced = synced.max(pos);
    }
    // At QoS 1/2 the 200 is the acknowledgement: with --persist, what a persistent session
    // queued must be on disk first, as for a PUBACK.
    if config.qos > 0 {
        let store = shared.lock().store.clone();
        super::session::synced(store.as_deref(), synced).await;
    }
    Ok(Reply::text(200, "ok\n"))
}

/// A body's messages, or the answer refusing it: checks the JSON, fills the topic, splits,
/// and holds each message to the broker's rules for anonymous clients.
fn digest(ingest: &Ingest, body: Bytes, path: &str) -> Result<Vec<(String, Bytes)>, Reply> {
    let config = &ingest.config;
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(Reply::text(400, "smq: the body is not JSON (not UTF-8)\n"));
    };
    let envelope = match Envelope::read(text) {
        Ok(envelope) => envelope,
        Err(e) => {
            return Err(Reply::text(
                400,
                format!("smq: the body is not JSON ({e})\n"),
            ));
        }
    };
    if config.status_line {
        record_stats(ingest, &envelope);
    }
    let topic = config
        .topic
        .render(&envelope, path)
        .map_err(|why| Reply::text(400, format!("{why}\n")))?;
    // None: the body goes out whole (no --split, or not a Sensor Logger batch).
    let pieces = if config.split {
        let cap = config.max_body.saturating_mul(IN_FLIGHT_BODIES);
        match split(text, &envelope, &topic, cap) {
            Ok(messages) => messages,
            Err(SplitError::Bad(why)) => return Err(Reply::text(400, format!("{why}\n"))),
            Err(SplitError::TooLarge) => {
                return Err(Reply::text(
                    413,
                    format!(
                        "smq: --split would make more than {} of messages from this body\n",
                        size_text(cap)
                    ),
                ));
            }
        }
    } else {
        None
    };
    let messages = pieces.unwrap_or_else(|| vec![(topic, body.clone())]);
    if let Some(max) = ingest.max_payload {
        if messages.iter().any(|(_, payload)| payload.len() > max) {
            return Err(Reply::text(
                413,
                format!(
                    "smq: a message exceeds the broker's message_size_limit of {}\n",
                    size_text(max)
                ),
            ));
        }
    }
    if let Some((topic, _)) = messages
        .iter()
        .find(|(topic, _)| !ingest.auth.anonymous_may_write(topic))
    {
        return Err(Reply::text(
            403,
            format!("smq: the ACL does not let anonymous clients publish to {topic}\n"),
        ));
    }
    Ok(messages)
}

/// The path of a request target, without the query; an absolute-form target
/// (`http://host/path`) gives its path.
fn request_path(target: &str) -> &str {
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    target.split(['?', '#']).next().unwrap_or("/")
}

/// `Authorization: TOKEN` or `Authorization: Bearer TOKEN` (Sensor Logger sends the app's
/// "auth token" field as the header's value).
fn authorized(header: Option<&str>, token: &str) -> bool {
    let Some(value) = header.map(str::trim) else {
        return false;
    };
    let bearer = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let is = |given: &str| bool::from(given.as_bytes().ct_eq(token.as_bytes()));
    // Both compared every time, in constant time: the answer's timing tells nothing.
    is(value) | bearer.is_some_and(is)
}

/// What a person checking the URL from the phone's browser reads.
fn help_page(head: &HttpHead, path: &str, config: &HttpConfig) -> String {
    let host = head.header("Host").unwrap_or("this-computer");
    let url_path = config.path.as_deref().unwrap_or(path);
    let paths = match &config.path {
        Some(p) => format!("to {p}"),
        None => "to any path".to_owned(),
    };
    format!(
        "smq HTTP Push receiver: it works.\n\
         POST JSON {paths} and it is published on MQTT topic {} (QoS {}).\n\
         Sensor Logger: Settings > Data Streaming > HTTP Push, URL http://{host}{url_path}\n\
         To watch the messages arrive, on the computer running smq: smq sub -t '#' -v\n",
        config.topic.display(),
        config.qos,
    )
}

impl TopicTemplate {
    /// The template as given, for messages.
    fn display(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::DeviceId => "{deviceId}",
                Part::SessionId => "{sessionId}",
                Part::Path => "{path}",
            })
            .collect()
    }
}

enum Framing {
    Length(usize),
    Chunked,
}

fn framing(head: &HttpHead, max_body: usize) -> Result<Framing, Refusal> {
    let too_large = || {
        Refusal::new(
            413,
            format!(
                "smq: body exceeds {} (--http-max-body)",
                size_text(max_body)
            ),
        )
    };
    let lengths: Vec<&str> = head.tokens("Content-Length").collect();
    if head.header("Transfer-Encoding").is_some() {
        // Both framings at once is how requests are smuggled past proxies (RFC 9112 §6.3).
        if !lengths.is_empty() {
            return Err(Refusal::new(
                400,
                "smq: send Content-Length or Transfer-Encoding, not both",
            ));
        }
        let codings: Vec<&str> = head.tokens("Transfer-Encoding").collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(Refusal::new(
                501,
                format!(
                    "smq: Transfer-Encoding {} is not supported: use chunked",
                    codings.join(", ")
                ),
            )),
        };
    }
    let Some(first) = lengths.first() else {
        if head.header("Content-Length").is_some() {
            return Err(Refusal::new(400, "smq: Content-Length is empty"));
        }
        return Ok(Framing::Length(0));
    };
    if lengths.iter().any(|l| l != first) {
        return Err(Refusal::new(400, "smq: conflicting Content-Length values"));
    }
    if !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::new(400, "smq: Content-Length is not a number"));
    }
    match first.parse::<usize>() {
        Ok(n) if n <= max_body => Ok(Framing::Length(n)),
        _ => Err(too_large()),
    }
}

/// `16 MiB`, `512 KiB`, `100 bytes`.
fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Decodes a gzip body, refusing output past `max_body` (a small body can inflate to
/// gigabytes).
fn gunzip(body: &[u8], max_body: usize) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_body));
    let limit = u64::try_from(max_body)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Refusal::new(400, format!("smq: the body is not valid gzip ({e})")))?;
    if out.len() > max_body {
        return Err(Refusal::new(
            413,
            format!(
                "smq: the decoded body exceeds {} (--http-max-body)",
                size_text(max_body)
            ),
        ));
    }
    Ok(out)
}

/// The bytes of a connection read past the current request head.
struct Conn {
    buf: Vec<u8>,
    pos: usize,
    max_body: usize,
}

impl Conn {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Bytes already read that belong to the next request (pipelining).
    fn take_pending(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.drain(..self.pos);
        self.pos = 0;
        buf
    }

    fn holds_whole(&self, framing: &Framing) -> bool {
        match framing {
            Framing::Length(n) => self.available().len() >= *n,
            Framing::Chunked => false,
        }
    }

    /// Reads more bytes; a stalled or closed client ends the request.
    async fn fill(&mut self, io: &mut Box<dyn Io>) -> Result<(), End> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(BODY_STALL_TIMEOUT, io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(End::Gone),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(_) => Err(End::Refuse(Refusal::new(
                408,
                format!(
                    "smq: the request body stalled for {} s",
                    BODY_STALL_TIMEOUT.as_secs()
                ),
            ))),
        }
    }

    async fn read_exact(&mut self, io: &mut Box<dyn Io>, n: usize) -> Result<Vec<u8>, End> {
        // Grown as bytes arrive: a declared length alone must not reserve memory.
        let mut body = Vec::with_capacity(n.min(64 * 1024));
        loop {
            let take = (n - body.len()).min(self.available().len());
            body.extend_from_slice(&self.available()[..take]);
            self.pos += take;
            if body.len() == n {
                return Ok(body);
            }
            self.fill(io).await?;
        }
    }

    /// One CRLF-terminated line (a chunk size or a trailer), without the CRLF.
    async fn read_line(&mut self, io: &mut Box<dyn Io>) -> Result<String, End> {
        loop {
            if let Some(i) = self.available().iter().position(|&b| b == b'\n') {
                let line = &self.available()[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let line = String::from_utf8_lossy(line).into_owned();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.available().len() > MAX_CHUNK_LINE {
                return Err(End::Refuse(Refusal::new(
                    400,
                    "smq: a chunk-size line is too long",
                )));
            }
            self.fill(io).await?;
        }
    }

    async fn read_chunked(&mut self, io: &mut Box<dyn Io>) -> Result<Vec<u8>, End> {
        let bad = |why: &str| End::Refuse(Refusal::new(400, format!("smq: {why}")));
        let mut body = Vec::new();
        loop {
            let line = self.read_line(io).await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = Some(size)
                .filter(|s| (1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .ok_or_else(|| bad("a chunk size is not a hexadecimal number"))?;
            if size == 0 {
                // Trailer fields, up to the empty line: read and ignored.
                let mut trailer_bytes = 0;
                loop {
                    let trailer = self.read_line(io).await?;
                    if trailer.is_empty() {
                        return Ok(body);
                    }
                    trailer_bytes += trailer.len();
                    if trailer_bytes > MAX_CHUNK_LINE * 16 {
                        return Err(bad("the chunked trailer is too long"));
                    }
                }
            }
            if body.len().saturating_add(size) > self.max_body {
                return Err(End::Refuse(Refusal::new(
                    413,
                    format!(
                        "smq: body exceeds {} (--http-max-body)",
                        size_text(self.max_body)
                    ),
                )));
            }
            let chunk = self.read_exact(io, size).await?;
            body.extend_from_slice(&chunk);
            if !self.read_line(io).await?.is_empty() {
                return Err(bad("a chunk is longer than its size"));
            }
        }
    }
}

fn record_stats(ingest: &Ingest, envelope: &Envelope<'_>) {
    let Some(readings) = envelope.readings() else {
        return;
    };
    let device = envelope.device_id.as_deref().unwrap_or("(no deviceId)");
    let mut stats = ingest.stats.lock().unwrap_or_else(|e| e.into_inner());
    stats.record(
        device,
        envelope.session_id.as_deref(),
        envelope.message_id,
        readings,
        Instant::now(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Envelope<'_> {
        Envelope::read(text).expect("test JSON")
    }

    #[test]
    fn topic_templates_fill_from_the_body_and_the_path() {
        let t = TopicTemplate::parse("phones/{deviceId}/{sessionId}/{path}").expect("valid");
        let body = json(r#"{"deviceId":"d1","sessionId":"s1","payload":[]}"#);
        assert_eq!(t.render(&body, "/sl/x").as_deref(), Ok("phones/d1/s1/sl/x"));
        assert_eq!(t.display(), "phones/{deviceId}/{sessionId}/{path}");

        let missing = t
            .render(&json(r#"{"sessionId":"s1"}"#), "/")
            .expect_err("no deviceId");
        assert_eq!(missing, "smq: the body has no deviceId for the topic");
        // Values from the request stay in their levels and out of $ topics.
        assert_eq!(
            t.render(
                &json(r#"{"deviceId":"a+b/#","sessionId":"$SYS"}"#),
                "/x/+/$y//#"
            )
            .as_deref(),
            Ok("phones/a_b__/_SYS/x/_/_y//_")
        );
        let path = TopicTemplate::parse("{path}").expect("valid");
        assert_eq!(
            path.render(&json("{}"), "/$SYS/broker/version").as_deref(),
            Ok("_SYS/broker/version")
        );
        assert_eq!(
            path.render(&json("{}"), "/"),
            Err("smq: the topic '' is not valid: it is empty".to_owned())
        );
        let long = format!("/{}", "a".repeat(70_000));
        assert!(
            path.render(&json("{}"), &long)
                .expect_err("too long")
                .ends_with("it is longer than 65535 bytes")
        );

        assert_eq!(
            TopicTemplate::parse("sensor-logger")
                .expect("plain")
                .render(&json("[]"), "/data")
                .as_deref(),
            Ok("sensor-logger")
        );
    }

    #[test]
    fn bad_templates_are_usage_errors() {
        for (text, why) in [
            ("a/{device}", "unknown placeholder {device}"),
            ("a/{deviceId", "no closing '}'"),
            ("a/#", "wildcards"),
            ("$SYS/{deviceId}", "$ topics belong to the broker"),
            ("", "it is empty"),
        ] {
            let err = TopicTemplate::parse(text).expect_err(text).to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn paths_and_tokens() {
        assert_eq!(request_path("/data?x=1"), "/data");
        assert_eq!(request_path("http://host:8000/sl/a?b"), "/sl/a");
        assert_eq!(request_path("http://host:8000"), "/");
        assert!(authorized(Some("s3cret"), "s3cret"));
        assert!(authorized(Some("Bearer s3cret"), "s3cret"));
        assert!(authorized(Some("bearer  s3cret "), "s3cret"));
        assert!(!authorized(Some("Bearer other"), "s3cret"));
        assert!(!authorized(Some("Basic s3cret"), "s3cret"));
        assert!(!authorized(None, "s3cret"));
    }

    /// A client that sends requests and never reads the answers: once its receive window is
    /// full, the answer is given up after WRITE_TIMEOUT (paused time: no real wait).
    #[tokio::test(start_paused = true)]
    async fn answers_to_a_client_that_never_reads_time_out() {
        let (server, _client) = tokio::io::duplex(64);
        let mut io: Box<dyn Io> = Box::new(server);
        let reply = Reply::text(200, "x".repeat(1024));
        assert!(!send(&mut io, &reply, false, true).await);
        // Returns (before the fix it waited forever).
        refuse_within(&mut io, Refusal::new(400, "y".repeat(1024))).await;
    }

    #[test]
    fn gzip_is_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 100_000]).expect("compress");
        let zipped = enc.finish().expect("compress");
        assert_eq!(gunzip(&zipped, 100_000).expect("fits").len(), 100_000);
        assert_eq!(gunzip(&zipped, 99_999).expect_err("bomb").status, 413);
        assert_eq!(gunzip(b"not gzip", 10).expect_err("garbage").status, 400);
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_text(16 << 20), "16 MiB");
        assert_eq!(size_text(64 << 10), "64 KiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }
}
