//! `smq bench conn|pub|sub|latency`: a load generator in the spirit of emqtt-bench and MQTTX's
//! `bench`, on smq's own client, so every broker smq reaches (TCP, TLS, WebSocket, 3.1.1/5,
//! `-L`, passwords) can be measured.
//!
//! All connections live in one process, one task each, on the current-thread runtime: the
//! bench measured faster than serve-broker can deliver on this machine's cores (see docs/benchmarks.md).

mod clients;
mod meter;
mod payload;
mod report;
mod tally;
mod template;
mod timer;

use std::future::Future;
use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::anyhow;
use futures_util::future::join_all;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use clients::{Connector, PubPlan, Published, Role, SubPlan};
use meter::Meter;
use report::{Config, Live, Mode, Results};
use tally::Tally;
use template::{Kind, Template};

use crate::cli::{BenchArgs, BenchLoad, BenchMode, ConnectArgs};
use crate::conn::{Broker, ConnectOptions, Protocol, Version, props};
use crate::exit::{Failure, usage};
use crate::output::Output;

const PACKETS: &[props::Packet] = &[
    props::Packet::Connect,
    props::Packet::Publish,
    props::Packet::Subscribe,
    props::Packet::Disconnect,
    props::Packet::Will,
];
/// Handshakes in progress at once when connections are not paced by `conn --rate`.
const HANDSHAKES: usize = 100;
/// `latency` without --count or --duration.
const DEFAULT_LATENCY_SECS: f64 = 10.0;
/// `latency` without --rate or -I.
const DEFAULT_LATENCY_RATE: f64 = 1000.0;
/// After the publishers stop: how long subscribers may go without a message before what
/// has not arrived counts as lost.
const RECEIVE_IDLE: Duration = Duration::from_secs(2);
/// How long the connections of a stopped run may take to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
const DEFAULT_TOPIC: &str = "smq-bench/%i";
const DEFAULT_FILTER: &str = "smq-bench/#";

pub async fn run(mut args: BenchArgs) -> anyhow::Result<ExitCode> {
    let prefix = id_prefix(args.mode.conn_mut());
    let conn = args.mode.conn();
    let mut opts = crate::cmd::connect::options(conn, PACKETS)?;
    // As load generators do: Nagle's delay would be measured as the broker's latency.
    for b in &mut opts.brokers {
        b.transport.nodelay = true;
    }
    let quiet = conn.quiet;
    let (mode, run, clients, subscribers) = match &args.mode {
        BenchMode::Conn(a) => (Mode::Conn, &a.run, a.clients, 0),
        BenchMode::Pub(a) => (Mode::Pub, &a.run, a.clients, 0),
        BenchMode::Sub(a) => (Mode::Sub, &a.run, a.clients, 0),
        BenchMode::Latency(a) => (Mode::Latency, &a.run, a.clients, a.subscribers),
    };
    let ifaddr = run
        .ifaddr
        .iter()
        .map(|a| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| usage(format!("--ifaddr: '{a}' is not an IP address")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    raise_fd_limit(u64::from(clients) + u64::from(subscribers), &opts);
    let mut config = Config {
        mode,
        broker: opts
            .brokers
            .iter()
            .map(Broker::describe)
            .collect::<Vec<_>>()
            .join(" "),
        protocol: match opts.version {
            Version::Only(Protocol::V311) if opts.mqtt31 => "3.1",
            Version::Only(Protocol::V311) => "3.1.1",
            Version::Only(Protocol::V5) => "5",
            Version::Auto => "auto",
        },
        clients,
        subscribers: (mode == Mode::Latency).then_some(subscribers),
        qos: None,
        retain: false,
        size: None,
        rate: None,
        interval_ms: None,
        topic: None,
        filter: None,
        count: None,
        duration_s: run.duration,
        ifaddr: run.ifaddr.clone(),
    };
    let url_topic = opts.url_topic.clone();
    let props = opts.props.clone();
    let cap = match &args.mode {
        BenchMode::Conn(a) if a.rate.is_some() => None,
        _ => Some(HANDSHAKES),
    };
    let connector = Arc::new(Connector::new(opts, prefix, ifaddr, cap));
    let bench = Bench {
        meter: Arc::new(Meter::new()),
        connector,
        started: Instant::now(),
    };
    let (json, csv) = (run.json, run.csv);
    match &args.mode {
        BenchMode::Conn(a) => {
            config.rate = a.rate;
            let mut driver = Driver::new(&bench, &config, quiet, csv)?;
            let results = bench
                .conn(&mut driver, a.clients, a.rate, a.run.duration)
                .await?;
            finish(&config, results, &mut driver, json)
        }
        BenchMode::Pub(a) => {
            let plan = pub_plan(
                &a.load,
                url_topic.as_deref(),
                props.publish.clone(),
                &mut config,
                None,
            )?;
            let mut driver = Driver::new(&bench, &config, quiet, csv)?;
            let results = bench
                .publish(&mut driver, a.clients, plan, a.run.duration)
                .await?;
            finish(&config, results, &mut driver, json)
        }
        BenchMode::Sub(a) => {
            let source = a
                .topic
                .clone()
                .or(url_topic)
                .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
            let plan = SubPlan {
                filter: Template::parse(&source, Kind::Filter, "-t")?,
                qos: a.qos,
                props: props.subscribe.clone(),
                count: a.count,
            };
            config.qos = Some(a.qos);
            config.filter = Some(source);
            config.count = a.count;
            let mut driver = Driver::new(&bench, &config, quiet, csv)?;
            let results = bench
                .subscribe(&mut driver, a.clients, plan, a.run.duration)
                .await?;
            finish(&config, results, &mut driver, json)
        }
        BenchMode::Latency(a) => {
            let plan = pub_plan(
                &a.load,
                url_topic.as_deref(),
                props.publish.clone(),
                &mut config,
                Some(DEFAULT_LATENCY_RATE),
            )?;
            let source = a
                .filter
                .clone()
                .unwrap_or_else(|| plan.topic.covering_filter());
            let sub_plan = SubPlan {
                filter: Template::parse(&source, Kind::Filter, "--filter")?,
                qos: a.load.qos,
                props: props.subscribe.clone(),
                count: None,
            };
            config.filter = Some(source);
            let duration =
                a.run
                    .duration
                    .or(a.load.count.is_none().then_some(DEFAULT_LATENCY_SECS));
            config.duration_s = duration;
            let mut driver = Driver::new(&bench, &config, quiet, csv)?;
            let results = bench
                .latency(
                    &mut driver,
                    a.clients,
                    a.subscribers,
                    plan,
                    sub_plan,
                    duration,
                )
                .await?;
            finish(&config, results, &mut driver, json)
        }
    }
}

/// Bench client ids are PREFIX + `pub-N`, `sub-N` or `conn-N`: `-i` or `--id-prefix` gives the
/// prefix, so a persistent session (`--disable-clean-session`) has ids to keep.
fn id_prefix(conn: &mut ConnectArgs) -> String {
    let prefix = conn
        .id
        .take()
        .or_else(|| conn.id_prefix.take())
        .unwrap_or_else(|| format!("smq-bench-{}-", std::process::id()));
    conn.id = Some(prefix.clone());
    prefix
}

fn pub_plan(
    load: &BenchLoad,
    url_topic: Option<&str>,
    props: Option<crate::mqtt::PublishProperties>,
    config: &mut Config,
    default_rate: Option<f64>,
) -> anyhow::Result<Arc<PubPlan>> {
    let source = load
        .topic
        .clone()
        .or_else(|| url_topic.map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
    let topic = Template::parse(&source, Kind::Topic, "-t")?;
    let rate = load
        .rate
        .or(load.interval.is_none().then_some(default_rate).flatten());
    let interval = match (load.interval, rate) {
        (Some(ms), _) => Some(Duration::from_secs_f64(ms / 1000.0)),
        (None, Some(r)) => Some(Duration::from_secs_f64(1.0 / r)),
        (None, None) => None,
    };
    config.qos = Some(load.qos);
    config.retain = load.retain;
    config.size = Some(load.size);
    config.rate = rate.or(load.interval.map(|ms| 1000.0 / ms));
    config.interval_ms = interval.map(|d| d.as_secs_f64() * 1000.0);
    config.topic = Some(source);
    config.count = load.count;
    Ok(Arc::new(PubPlan {
        topic,
        size: load.size as usize,
        qos: load.qos,
        retain: load.retain,
        props,
        interval,
        count: load.count,
        run: fastrand::u32(..),
    }))
}

/// Many connections need many file descriptors: raise the soft limit to the hard one, and
/// say so when even that is too few.
fn raise_fd_limit(connections: u64, opts: &ConnectOptions) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let want = connections + 64;
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < want) {
        limit.current = Some(limit.maximum.map_or(want, |m| m.min(want)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let now = getrlimit(Resource::Nofile).current;
    if let Some(n) = now.filter(|&n| n < want) {
        opts.warn(&format!(
            "{connections} connections need about {want} open files, but the limit is {n}: raise it (ulimit -n) or expect failures"
        ));
    }
}

/// Waiting for the run while the live line ticks and Ctrl-C is watched.
struct Driver {
    meter: Arc<Meter>,
    live: Live,
    tick: tokio::time::Interval,
    sigint: Signal,
    sigterm: Signal,
    interrupted: bool,
    /// For the bar: the run's length in ms, if it has one.
    duration: Option<Duration>,
    started: Instant,
    quiet: bool,
}

enum Wait<T> {
    Done(T),
    /// The deadline passed, or Ctrl-C.
    Stop,
}

impl Driver {
    fn new(bench: &Bench, config: &Config, quiet: bool, csv: bool) -> anyhow::Result<Driver> {
        let duration = config.duration_s.map(Duration::from_secs_f64);
        let total = duration.map(|d| d.as_millis() as u64);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Driver {
            meter: bench.meter.clone(),
            live: Live::new(config, quiet, csv, total)?,
            tick,
            sigint: signal(SignalKind::interrupt())?,
            sigterm: signal(SignalKind::terminate())?,
            interrupted: false,
            duration,
            started: bench.started,
            quiet,
        })
    }

    /// Drives `fut` until it is done, `deadline` passes or Ctrl-C; a second Ctrl-C ends the
    /// process at once.
    async fn until<F: Future + Unpin>(
        &mut self,
        fut: &mut F,
        deadline: Option<Instant>,
    ) -> anyhow::Result<Wait<F::Output>> {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        // The first tick fires at once: skip it, a line at 0 s says nothing.
        loop {
            tokio::select! {
                v = &mut *fut => return Ok(Wait::Done(v)),
                _ = self.tick.tick() => {
                    let elapsed = Instant::now().saturating_duration_since(self.started);
                    if elapsed >= Duration::from_millis(500) {
                        let ms = elapsed.as_millis() as u64;
                        self.live.tick(&self.meter, self.duration.map_or(ms, |d| ms.min(d.as_millis() as u64)))?;
                    }
                }
                _ = self.sigint.recv() => return self.interrupt(),
                _ = self.sigterm.recv() => return self.interrupt(),
                _ = sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => return Ok(Wait::Stop),
            }
        }
    }

    /// A line on stderr, unless --quiet: `smq bench: 2 of 2 subscribers subscribed` tells a
    /// script when to start publishing.
    fn say(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "smq bench: {msg}");
        }
    }

    fn interrupt<T>(&mut self) -> anyhow::Result<Wait<T>> {
        if self.interrupted {
            self.live.finish();
            return Err(Failure::Interrupted("interrupted twice".into()).into());
        }
        self.interrupted = true;
        Ok(Wait::Stop)
    }
}

struct Bench {
    meter: Arc<Meter>,
    connector: Arc<Connector>,
    started: Instant,
}

/// Waits for every task; a task that panicked (a bug) gives nothing.
fn joined<T>(all: Vec<Result<T, tokio::task::JoinError>>) -> Vec<T> {
    all.into_iter().filter_map(Result::ok).collect()
}

impl Bench {
    fn deadline(&self, secs: Option<f64>) -> Option<Instant> {
        secs.map(|s| self.started + Duration::from_secs_f64(s))
    }

    fn results(&self) -> Results {
        let m = &self.meter;
        let counts = m.snapshot();
        Results {
            elapsed: Instant::now().saturating_duration_since(self.started),
            counts,
            foreign: m.foreign.load(Relaxed),
            failures: m.failures(),
            connect: m.connect_latency(),
            connect_rate: m.connect_span().rate(counts.connected),
            latency: m.latency(),
            send_rate: m.send_span().rate(counts.sent),
            receive_rate: m.receive_span().rate(counts.received),
            ..Results::default()
        }
    }

    async fn conn(
        &self,
        driver: &mut Driver,
        n: u32,
        rate: Option<f64>,
        duration: Option<f64>,
    ) -> anyhow::Result<Results> {
        let (close_tx, close_rx) = watch::channel(false);
        let (settled_tx, mut settled_rx) = mpsc::unbounded_channel::<()>();
        let meter = self.meter.clone();
        let connector = self.connector.clone();
        let start = Instant::now();
        let launcher: JoinHandle<Vec<JoinHandle<()>>> = tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(n as usize);
            for i in 1..=n {
                if let Some(r) = rate {
                    sleep_until(start + Duration::from_secs_f64(f64::from(i - 1) / r)).await;
                }
                let (meter, connector, close, settled) = (
                    meter.clone(),
                    connector.clone(),
                    close_rx.clone(),
                    settled_tx.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let client = connector
                        .open(&meter, connector.client_id(Role::Conn, i))
                        .await;
                    let _ = settled.send(());
                    if let Some(c) = client {
                        clients::hold(c, meter, close).await;
                    }
                }));
            }
            tasks
        });
        let mut all_settled = Box::pin(async move {
            for _ in 0..n {
                if settled_rx.recv().await.is_none() {
                    break;
                }
            }
        });
        let deadline = self.deadline(duration);
        let stopped = matches!(driver.until(&mut all_settled, deadline).await?, Wait::Stop);
        if !stopped && deadline.is_some() {
            // Hold the connections until --duration has passed.
            let mut forever = Box::pin(std::future::pending::<()>());
            driver.until(&mut forever, deadline).await?;
        }
        let results = self.results();
        let _ = close_tx.send(true);
        launcher.abort();
        let mut launched = Box::pin(launcher);
        if let Wait::Done(Ok(tasks)) = driver
            .until(&mut launched, Some(Instant::now() + CLOSE_WAIT))
            .await?
        {
            let mut closing = Box::pin(join_all(tasks));
            driver
                .until(&mut closing, Some(Instant::now() + CLOSE_WAIT))
                .await?;
        }
        Ok(results)
    }

    fn spawn_publishers(
        &self,
        n: u32,
        plan: &Arc<PubPlan>,
        start: &watch::Receiver<Option<Instant>>,
        stop: &watch::Receiver<bool>,
        settled: Option<mpsc::UnboundedSender<()>>,
    ) -> Vec<JoinHandle<Option<Published>>> {
        (1..=n)
            .map(|i| {
                let (meter, connector, plan, start, stop, settled) = (
                    self.meter.clone(),
                    self.connector.clone(),
                    plan.clone(),
                    start.clone(),
                    stop.clone(),
                    settled.clone(),
                );
                tokio::spawn(async move {
                    let id = connector.client_id(Role::Pub, i);
                    let client = connector.open(&meter, id.clone()).await;
                    if let Some(s) = settled {
                        let _ = s.send(());
                    }
                    Some(clients::publish(client?, i, id, plan, meter, start, stop).await)
                })
            })
            .collect()
    }

    fn spawn_subscribers(
        &self,
        n: u32,
        plan: &Arc<SubPlan>,
        stop: &watch::Receiver<bool>,
        ready: &mpsc::UnboundedSender<bool>,
    ) -> Vec<JoinHandle<Option<Tally>>> {
        (1..=n)
            .map(|i| {
                let (meter, connector, plan, stop, ready) = (
                    self.meter.clone(),
                    self.connector.clone(),
                    plan.clone(),
                    stop.clone(),
                    ready.clone(),
                );
                tokio::spawn(async move {
                    let id = connector.client_id(Role::Sub, i);
                    let Some(client) = connector.open(&meter, id.clone()).await else {
                        let _ = ready.send(false);
                        return None;
                    };
                    clients::subscribe(client, i, id, plan, meter, ready, stop).await
                })
            })
            .collect()
    }

    async fn publish(
        &self,
        driver: &mut Driver,
        n: u32,
        plan: Arc<PubPlan>,
        duration: Option<f64>,
    ) -> anyhow::Result<Results> {
        let (_start_tx, start_rx) = watch::channel(Some(Instant::now()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let tasks = self.spawn_publishers(n, &plan, &start_rx, &stop_rx, None);
        let mut all = Box::pin(join_all(tasks));
        if let Wait::Stop = driver.until(&mut all, self.deadline(duration)).await? {
            let _ = stop_tx.send(true);
            let wait = Instant::now() + clients_drain();
            driver.until(&mut all, Some(wait)).await?;
        }
        Ok(self.results())
    }

    async fn subscribe(
        &self,
        driver: &mut Driver,
        n: u32,
        plan: SubPlan,
        duration: Option<f64>,
    ) -> anyhow::Result<Results> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let tasks = self.spawn_subscribers(n, &Arc::new(plan), &stop_rx, &ready_tx);
        let mut all = Box::pin(join_all(tasks));
        let deadline = self.deadline(duration);
        let mut all_ready = Box::pin(settle(ready_rx, n));
        if let Wait::Done(ready) = driver.until(&mut all_ready, deadline).await? {
            driver.say(&format!("{ready} of {n} subscribers subscribed"));
        }
        let tallies = match driver.until(&mut all, deadline).await? {
            Wait::Done(t) => joined(t),
            Wait::Stop => {
                let _ = stop_tx.send(true);
                match driver
                    .until(&mut all, Some(Instant::now() + CLOSE_WAIT))
                    .await?
                {
                    Wait::Done(t) => joined(t),
                    Wait::Stop => Vec::new(),
                }
            }
        };
        let mut results = self.results();
        let tallies: Vec<Tally> = tallies.into_iter().flatten().collect();
        results.lost = Some(tallies.iter().map(Tally::gaps).sum());
        results.duplicates = Some(tallies.iter().map(|t| t.duplicates).sum());
        results.reordered = Some(tallies.iter().map(|t| t.reordered).sum());
        results.publishers_heard = Some(
            tallies
                .iter()
                .map(|t| t.publishers() as u64)
                .max()
                .unwrap_or(0),
        );
        Ok(results)
    }

    async fn latency(
        &self,
        driver: &mut Driver,
        pubs: u32,
        subs: u32,
        plan: Arc<PubPlan>,
        sub_plan: SubPlan,
        duration: Option<f64>,
    ) -> anyhow::Result<Results> {
        let (stop_subs_tx, stop_subs_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let sub_tasks = self.spawn_subscribers(subs, &Arc::new(sub_plan), &stop_subs_rx, &ready_tx);
        let mut all_ready = Box::pin(settle(ready_rx, subs));
        let ready = match driver.until(&mut all_ready, None).await? {
            Wait::Done(r) => r,
            Wait::Stop => 0,
        };
        let (start_tx, start_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut pub_tasks = Vec::new();
        if ready > 0 && !driver.interrupted {
            let (settled_tx, mut settled_rx) = mpsc::unbounded_channel();
            pub_tasks = self.spawn_publishers(pubs, &plan, &start_rx, &stop_rx, Some(settled_tx));
            let mut all_settled = Box::pin(async move {
                for _ in 0..pubs {
                    if settled_rx.recv().await.is_none() {
                        break;
                    }
                }
            });
            driver.until(&mut all_settled, None).await?;
        }
        let mut published = Vec::new();
        if !pub_tasks.is_empty() && !driver.interrupted {
            // A common start, a little ahead, so every publisher's schedule begins together.
            let t0 = Instant::now() + Duration::from_millis(20);
            let _ = start_tx.send(Some(t0));
            let mut all = Box::pin(join_all(pub_tasks));
            let deadline = duration.map(|s| t0 + Duration::from_secs_f64(s));
            published = match driver.until(&mut all, deadline).await? {
                Wait::Done(p) => joined(p),
                Wait::Stop => {
                    let _ = stop_tx.send(true);
                    match driver
                        .until(&mut all, Some(Instant::now() + clients_drain()))
                        .await?
                    {
                        Wait::Done(p) => joined(p),
                        Wait::Stop => Vec::new(),
                    }
                }
            };
        } else {
            let _ = stop_tx.send(true);
        }
        let published: Vec<Published> = published.into_iter().flatten().collect();
        let expected: u64 = published.iter().map(|p| p.delivered).sum::<u64>() * u64::from(ready);
        // Let the subscribers catch up: until all is in, or nothing has come for a while.
        let meter = self.meter.clone();
        let mut caught_up = Box::pin(async move {
            loop {
                let got = meter
                    .received
                    .load(Relaxed)
                    .saturating_sub(meter.foreign.load(Relaxed));
                if got >= expected || meter.since_last_received() >= RECEIVE_IDLE {
                    break;
                }
                sleep(Duration::from_millis(20)).await;
            }
        });
        if !driver.interrupted {
            driver.until(&mut caught_up, None).await?;
        }
        let mut results = self.results();
        let _ = stop_subs_tx.send(true);
        let mut all = Box::pin(join_all(sub_tasks));
        let tallies: Vec<Tally> = match driver
            .until(&mut all, Some(Instant::now() + CLOSE_WAIT))
            .await?
        {
            Wait::Done(t) => joined(t).into_iter().flatten().collect(),
            Wait::Stop => Vec::new(),
        };
        let run = plan.run;
        let got: u64 = tallies
            .iter()
            .map(|t| {
                published
                    .iter()
                    .map(|p| t.distinct(run, p.index).min(p.delivered))
                    .sum::<u64>()
            })
            .sum();
        results.expected = Some(expected);
        results.lost = Some(expected.saturating_sub(got));
        results.duplicates = Some(tallies.iter().map(|t| t.duplicates).sum());
        results.reordered = Some(tallies.iter().map(|t| t.reordered).sum());
        results.publishers_heard = Some(
            tallies
                .iter()
                .map(|t| t.publishers() as u64)
                .max()
                .unwrap_or(0),
        );
        Ok(results)
    }
}

/// Counts the subscribers that subscribed, once each of `n` has said how it went.
async fn settle(mut ready: mpsc::UnboundedReceiver<bool>, n: u32) -> u32 {
    let mut subscribed = 0;
    for _ in 0..n {
        match ready.recv().await {
            Some(true) => subscribed += 1,
            Some(false) => {}
            None => break,
        }
    }
    subscribed
}

/// Publishers wait this long for their acknowledgements after the stop, and a little more.
fn clients_drain() -> Duration {
    Duration::from_secs(7)
}

/// Prints the results and turns what went wrong into the exit status.
fn finish(
    config: &Config,
    r: Results,
    driver: &mut Driver,
    json: bool,
) -> anyhow::Result<ExitCode> {
    driver.live.finish();
    let mut out = Output::stdout();
    let body = if json {
        let mut s = report::json(config, &r).to_string();
        s.push('\n');
        s
    } else {
        report::text(config, &r)
    };
    if driver.live.csv() {
        // stdout holds the CSV rows: the summary goes beside them.
        let _ = io::stderr().lock().write_all(body.as_bytes());
    } else {
        out.write(body.as_bytes())?;
        out.flush()?;
    }
    let c = &r.counts;
    if c.connected == 0 {
        let why = r
            .failures
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "no connection was attempted".to_owned());
        return Err(anyhow!("no connection could be made: {why}"));
    }
    let qos = config.qos.unwrap_or(0);
    if let Some(lost) = r.lost.filter(|&l| l > 0 && qos > 0) {
        return Err(anyhow!("{lost} messages lost at QoS {qos}"));
    }
    if c.refused > 0 {
        return Err(anyhow!(
            "the broker refused {} of {} messages",
            c.refused,
            c.sent
        ));
    }
    if c.failed > 0 || c.dropped > 0 {
        return Err(anyhow!(
            "{} of {} connections failed and {} dropped",
            c.failed,
            c.attempted,
            c.dropped
        ));
    }
    Ok(ExitCode::SUCCESS)
}
