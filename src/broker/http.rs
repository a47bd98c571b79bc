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
use super::http_head::{HeadError, HttpHead, Refusal, read_head, reason_phrase, refuse};
use super::listener::HttpStart;
use super::push_body::{Envelope, SplitError, level, split};
use super::push_budget::{Budget, Busy, Charge};
use super::push_stats::PushStats;
use super::router::Shared;
use super::state::Published;
use crate::exit::usage;
use crate::topic;
use crate::transport::Io;

/// How long a kept-alive connection may wait for (and take to send) its next request head.
/// Sensor Logger pushes every 0.2 to 1 s, so a minute of silence means it stopped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest wait for the next bytes of a body: a slow phone link still makes progress within
/// this, a client that stopped sending (slowloris) loses its connection.
const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A body arrives at [`BODY_MIN_RATE`] bytes/s on average once [`BODY_GRACE`] has passed:
/// each byte that arrives moves its deadline on by 1/rate s (Apache's mod_reqtimeout default,
/// `body=20,MinRate=500`). A client trickling a byte every few seconds, just often enough to
/// beat [`BODY_STALL_TIMEOUT`], is dropped after about 20 s, not [`BODY_TIMEOUT`]; a poor
/// 2G link (a few KB/s) is far above the rate.
const BODY_GRACE: Duration = Duration::from_secs(20);
const BODY_MIN_RATE: u64 = 500;

/// The longest a whole request body may take, at any rate: a 16 MiB camera frame over a poor
/// phone link takes well under this.
const BODY_TIMEOUT: Duration = Duration::from_secs(300);

/// A chunk-size line (hex digits and extensions) longer than this is not a real client.
const MAX_CHUNK_LINE: usize = 1024;

/// The longest an answer may take to be written: a client that sends requests and never
/// reads the answers loses its connection instead of holding its task forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What pushes in flight may hold at once (bodies as they arrive, their gzip decoding, their
/// `--split` messages), as a multiple of `--http-max-body`; one push may hold all of it.
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
    /// The bytes requests in flight hold, charged as they arrive and are made.
    budget: Budget,
    /// Bodies being decoded or parsed off the network threads, at most one per core: more
    /// would not finish sooner, and each blocking thread's allocator keeps what it freed for
    /// a while, so hundreds of gzip bodies decoding at once kept hundreds of MiB after the
    /// budget had them back. The others wait their turn (fairly), their bodies already read.
    parsers: Semaphore,
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
        let budget = Budget::new(config.max_body.saturating_mul(IN_FLIGHT_BODIES));
        Ok(Ingest {
            config,
            stats: Mutex::new(PushStats::default()),
            auth,
            max_payload,
            budget,
            parsers: Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
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
    let mut conn = Conn::new(tail, ingest.config.max_body);
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
        conn = Conn::new(tail, ingest.config.max_body);
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

impl From<Refusal> for Reply {
    /// The refusal answered without closing: the request was read whole.
    fn from(refusal: Refusal) -> Reply {
        Reply {
            status: refusal.status,
            body: format!("{}\n", refusal.why),
            headers: refusal.headers,
            keep_alive: true,
        }
    }
}

/// The push budget is spent (by other pushes: one push alone never exceeds it).
fn busy() -> Refusal {
    Refusal {
        status: 503,
        headers: "Retry-After: 1\r\n",
        why: "smq: too many pushes at once: try again in a second".into(),
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
    // Charged as the bytes arrive and are made, not from the length announced; given back
    // once the messages are routed.
    let mut charge = ingest.budget.charge();
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
    conn.pace = Pace::new(tokio::time::Instant::now());
    let mut body = Vec::new();
    match framing {
        Framing::Length(n) => conn.read_into(io, &mut body, n, n, &mut charge).await?,
        Framing::Chunked => conn.read_chunked(io, &mut body, &mut charge).await?,
    }
    let (messages, _held) = if gzip || body.len() > PARSE_INLINE {
        // A gzip body may decode to --http-max-body from a few KiB, which takes as long as
        // parsing a large body does.
        let Ok(_parser) = ingest.parsers.acquire().await else {
            return Err(End::Gone);
        };
        let (ingest, path) = (ingest.clone(), path.to_owned());
        let work = tokio::task::spawn_blocking(move || {
            let messages = decode(&ingest, body, gzip, &mut charge)
                .and_then(|body| digest(&ingest, body, &path, &mut charge));
            (messages, charge)
        });
        match work.await {
            Ok((messages, charge)) => (messages, Some(charge)),
            // Its charge was given back as the task unwound.
            Err(_) => (
                Err(Reply::text(500, "smq: the body could not be read\n")),
                None,
            ),
        }
    } else {
        let messages = digest(ingest, Bytes::from(body), path, &mut charge);
        (messages, Some(charge))
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

/// The body as it is published: a gzip body decoded, its output charged as it grows.
fn decode(ingest: &Ingest, body: Vec<u8>, gzip: bool, charge: &mut Charge) -> Result<Bytes, Reply> {
    if !gzip {
        return Ok(Bytes::from(body));
    }
    gunzip(&body, ingest.config.max_body, charge)
        .map(Bytes::from)
        .map_err(Reply::from)
}

/// A body's messages, or the answer refusing it: checks the JSON, fills the topic, splits
/// (charging the messages), and holds each message to the broker's rules for anonymous
/// clients.
fn digest(
    ingest: &Ingest,
    body: Bytes,
    path: &str,
    charge: &mut Charge,
) -> Result<Vec<(String, Bytes)>, Reply> {
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
        // With the body: what one push may hold at most on an idle broker.
        let cap = ingest.budget.max().saturating_sub(charge.held());
        match split(text, &envelope, &topic, cap, |n| charge.take(n).is_ok()) {
            Ok(messages) => messages,
            Err(SplitError::Bad(why)) => return Err(Reply::text(400, format!("{why}\n"))),
            Err(SplitError::TooLarge) => {
                return Err(Reply::text(
                    413,
                    format!(
                        "smq: this body and its --split messages would take more than {}\n",
                        size_text(ingest.budget.max())
                    ),
                ));
            }
            Err(SplitError::Busy) => return Err(Reply::from(busy())),
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
/// gigabytes); the output is charged as it grows.
fn gunzip(body: &[u8], max_body: usize, charge: &mut Charge) -> Result<Vec<u8>, Refusal> {
    let bad =
        |e: std::io::Error| Refusal::new(400, format!("smq: the body is not valid gzip ({e})"));
    // The body is already in memory: read it in place, with no buffer of the decoder's own.
    let mut decoder = flate2::bufread::MultiGzDecoder::new(body);
    let mut out = Vec::new();
    // The trailer's ISIZE (the last member's length, mod 4 GiB) is the client's word: taken as
    // the first allocation when the budget has room for it, so that a body is decoded into
    // one allocation rather than a doubling series, which the allocator would keep a while.
    let hint = body
        .last_chunk::<4>()
        .map_or(0, |&size| u32::from_le_bytes(size) as usize)
        .min(max_body);
    if charge.take(hint).is_ok() {
        out.reserve_exact(hint);
    }
    loop {
        let start = out.len();
        let step = (max_body - start).min(64 * 1024);
        if step == 0 {
            // Full: one more byte says whether the body is too large.
            return match read_full(&mut decoder, &mut [0u8]).map_err(bad)? {
                0 => Ok(out),
                _ => Err(Refusal::new(
                    413,
                    format!(
                        "smq: the decoded body exceeds {} (--http-max-body)",
                        size_text(max_body)
                    ),
                )),
            };
        }
        charge
            .grow(&mut out, step, max_body)
            .map_err(|Busy| busy())?;
        out.resize(start + step, 0);
        let n = read_full(&mut decoder, &mut out[start..]).map_err(bad)?;
        out.truncate(start + n);
        if n < step {
            return Ok(out);
        }
    }
}

/// Fills `buf` unless the reader ends first; how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The bytes of a connection read past the current request head.
struct Conn {
    buf: Vec<u8>,
    pos: usize,
    max_body: usize,
    /// The body being read: how slow it may still be.
    pace: Pace,
}

/// The deadlines of the body being read ([`BODY_MIN_RATE`], [`BODY_TIMEOUT`]); tokio's clock,
/// so that paused time tests them.
struct Pace {
    started: tokio::time::Instant,
    received: u64,
}

impl Pace {
    fn new(started: tokio::time::Instant) -> Pace {
        Pace {
            started,
            received: 0,
        }
    }

    /// When the body is too slow: by its rate, or at the latest by [`BODY_TIMEOUT`].
    fn deadline(&self) -> tokio::time::Instant {
        self.started + self.by_rate().min(BODY_TIMEOUT)
    }

    fn by_rate(&self) -> Duration {
        let earned = Duration::from_millis(self.received.saturating_mul(1000) / BODY_MIN_RATE);
        BODY_GRACE.saturating_add(earned)
    }

    /// What the client is told at the deadline.
    fn too_slow(&self) -> String {
        if self.by_rate() < BODY_TIMEOUT {
            format!("smq: the request body arrived slower than {BODY_MIN_RATE} bytes/s")
        } else {
            format!(
                "smq: the request body took longer than {} s",
                BODY_TIMEOUT.as_secs()
            )
        }
    }
}

impl Conn {
    fn new(tail: Vec<u8>, max_body: usize) -> Conn {
        Conn {
            buf: tail,
            pos: 0,
            max_body,
            pace: Pace::new(tokio::time::Instant::now()),
        }
    }

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

    /// Reads more bytes; a stalled, too slow or closed client ends the request.
    async fn fill(&mut self, io: &mut Box<dyn Io>) -> Result<(), End> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let stalled = tokio::time::Instant::now() + BODY_STALL_TIMEOUT;
        let slow = self.pace.deadline();
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(stalled.min(slow), io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(End::Gone),
            Ok(Ok(n)) => {
                self.pace.received = self.pace.received.saturating_add(n as u64);
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(_) if slow < stalled => Err(End::Refuse(Refusal::new(408, self.pace.too_slow()))),
            Err(_) => Err(End::Refuse(Refusal::new(
                408,
                format!(
                    "smq: the request body stalled for {} s",
                    BODY_STALL_TIMEOUT.as_secs()
                ),
            ))),
        }
    }

    /// Appends the next `n` bytes of the body to `body`, charging its growth as they arrive
    /// (never past `limit`, the most the body can be): a declared length reserves nothing.
    async fn read_into(
        &mut self,
        io: &mut Box<dyn Io>,
        body: &mut Vec<u8>,
        n: usize,
        limit: usize,
        charge: &mut Charge,
    ) -> Result<(), End> {
        let mut left = n;
        loop {
            let take = left.min(self.available().len());
            if take > 0 {
                charge
                    .grow(body, take, limit)
                    .map_err(|Busy| End::Refuse(busy()))?;
                body.extend_from_slice(&self.available()[..take]);
                self.pos += take;
                left -= take;
            }
            if left == 0 {
                return Ok(());
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

    async fn read_chunked(
        &mut self,
        io: &mut Box<dyn Io>,
        body: &mut Vec<u8>,
        charge: &mut Charge,
    ) -> Result<(), End> {
        let bad = |why: &str| End::Refuse(Refusal::new(400, format!("smq: {why}")));
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
                        return Ok(());
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
            self.read_into(io, body, size, self.max_body, charge)
                .await?;
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
    fn gzip_is_bounded_and_charged_as_it_decodes() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 100_000]).expect("compress");
        let zipped = enc.finish().expect("compress");
        let budget = Budget::new(1 << 20);
        let mut charge = budget.charge();
        let decoded = gunzip(&zipped, 100_000, &mut charge).expect("fits");
        assert_eq!(decoded.len(), 100_000);
        assert_eq!(
            (decoded.capacity(), charge.held()),
            (100_000, 100_000),
            "one allocation, sized by the trailer, charged"
        );
        let mut charge = budget.charge();
        assert_eq!(
            gunzip(&zipped, 99_999, &mut charge)
                .expect_err("bomb")
                .status,
            413
        );
        assert_eq!(
            gunzip(b"not gzip", 10, &mut charge)
                .expect_err("garbage")
                .status,
            400
        );
        // The decoded bytes, not the compressed ones, are what must fit.
        let small = Budget::new(50_000);
        let busy = gunzip(&zipped, 100_000, &mut small.charge()).expect_err("over the budget");
        assert_eq!((busy.status, busy.headers), (503, "Retry-After: 1\r\n"));
    }

    fn test_ingest(max_body: usize) -> Arc<Ingest> {
        let config = HttpConfig {
            path: None,
            topic: TopicTemplate::parse("t").expect("valid"),
            qos: 0,
            token: None,
            max_body,
            split: false,
            status_line: false,
        };
        Arc::new(Ingest::new(config, Arc::new(Auth::open()), None).expect("open broker"))
    }

    /// A byte every 10 s never stalls for BODY_STALL_TIMEOUT; the rate drops it after the
    /// grace period, long before BODY_TIMEOUT (paused time: no real wait).
    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_is_dropped_for_its_rate() {
        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let head = HttpHead::parse(b"POST /data HTTP/1.1\r\nContent-Length: 1000\r\n\r\n")
            .expect("a head");
        let start = HttpStart {
            io: Box::new(server),
            head,
            tail: Vec::new(),
        };
        let (_stop, stopped) = watch::channel(false);
        let began = tokio::time::Instant::now();
        let served = tokio::spawn(serve(
            start,
            Arc::new(Shared::new()),
            test_ingest(1 << 20),
            stopped,
        ));
        let mut answer = Vec::new();
        for _ in 0..1000 {
            if client.write_all(b" ").await.is_err() {
                break;
            }
            let wait = tokio::time::timeout(Duration::from_secs(10), client.read_buf(&mut answer));
            if matches!(wait.await, Ok(Ok(_))) {
                break;
            }
        }
        let _ = client.read_to_end(&mut answer).await;
        served.await.expect("served");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(
            answer.ends_with("\r\n\r\nsmq: the request body arrived slower than 500 bytes/s\n"),
            "{answer}"
        );
        let took = began.elapsed();
        assert!(took >= BODY_GRACE && took < BODY_TIMEOUT, "{took:?}");
    }

    /// Slow but steady bodies are not dropped: 1 KiB/s, twice the minimum rate, for 100 s.
    #[tokio::test(start_paused = true)]
    async fn a_slow_steady_body_gets_through() {
        let (server, mut client) = tokio::io::duplex(64 * 1024);
        let body = format!("[{}0]", "0,".repeat(50 * 1024 - 1));
        let head = format!(
            "POST /data HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let start = HttpStart {
            io: Box::new(server),
            head: HttpHead::parse(head.as_bytes()).expect("a head"),
            tail: Vec::new(),
        };
        let (_stop, stopped) = watch::channel(false);
        let served = tokio::spawn(serve(
            start,
            Arc::new(Shared::new()),
            test_ingest(1 << 20),
            stopped,
        ));
        for piece in body.as_bytes().chunks(1024) {
            client.write_all(piece).await.expect("sending");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut status = [0u8; 17];
        client.read_exact(&mut status).await.expect("an answer");
        assert_eq!(&status, b"HTTP/1.1 200 OK\r\n");
        drop(client);
        served.await.expect("served");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size_text(16 << 20), "16 MiB");
        assert_eq!(size_text(64 << 10), "64 KiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }
}
