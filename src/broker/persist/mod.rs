//! `--persist DIR`: retained messages, persistent sessions and pending wills, kept in an
//! append-only log (`DIR/smq.log`) so they survive a restart and a crash.
//!
//! Every change is a record appended by the task that makes it (cheap: encode into a buffer
//! under a mutex). One writer thread takes whatever has piled up, writes it and fsyncs it:
//! a group commit, so one fsync covers every connection's records since the last one. A
//! connection that owes an acknowledgement for a persisted message waits for the fsync that
//! covers it before the acknowledgement goes out (`synced`).
//!
//! A log with checksums rather than an embedded database: the state is small and mostly
//! transient (a queued message lives until it is acknowledged), the access pattern is pure
//! append plus a full read at start, and group commit across connections falls out of one
//! writer thread. The store keeps its own copy of the persistent state (`Model`, sharing the
//! message bytes), so compaction writes a snapshot of it without touching the router.
//!
//! - `mod.rs`: the `Store`, its writer thread, group commit and compaction
//! - `log.rs`: the file: frames, checksums, torn tails, atomic replacement
//! - `record.rs`: what the log says, one change to the state per `Record`
//! - `codec.rs`: the bytes of each record
//! - `model.rs`: the state the records add up to (`Model`)
//! - (`broker/restore.rs` puts that state back into the router at start)

mod codec;
mod log;
pub mod model;
pub mod record;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::{Context, anyhow, bail};
use tokio::sync::watch;

use super::state::Published;
use model::Model;
use record::Record;

const LOG: &str = "smq.log";
/// Held locked (flock) while a broker uses the directory: two writers would corrupt the log.
const LOCK: &str = "smq.lock";
/// Compact once the log passes this size and four times what the last compaction left.
const COMPACT_MIN: u64 = 64 << 20;

pub struct Store {
    core: Arc<Core>,
    /// Released when the store is dropped or the process ends, however it ends.
    _lock: File,
}

/// What the writer thread shares with the store.
pub struct Core {
    dir: PathBuf,
    inner: Mutex<Inner>,
    wake: Condvar,
    /// How far (in bytes appended) the log is on disk.
    durable: watch::Sender<u64>,
    pub stats: Stats,
}

/// Upper bounds of the fsync latency buckets, in microseconds (Prometheus' `le`).
pub const FSYNC_BUCKETS_US: [u64; 10] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000,
];

/// What the writer thread did, for `/metrics`: the file's size and how long fsyncs take.
#[derive(Default)]
pub struct Stats {
    pub log_bytes: AtomicU64,
    /// fsyncs by the first bucket they fit in; the last counts the slower ones.
    pub fsync_buckets: [AtomicU64; FSYNC_BUCKETS_US.len() + 1],
    pub fsync_micros: AtomicU64,
    pub fsyncs: AtomicU64,
}

impl Stats {
    fn fsync_took(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = FSYNC_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(FSYNC_BUCKETS_US.len());
        self.fsync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.fsync_micros.fetch_add(us, Ordering::Relaxed);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
}

struct Inner {
    model: Model,
    /// Framed records not yet handed to the writer.
    pending: Vec<u8>,
    /// How much of `pending` the writer may take: all of it but an open group.
    sealed: usize,
    /// Where the open group's frame starts in `pending`, and how many guards hold it open.
    group: Option<(usize, usize)>,
    scratch: Vec<u8>,
    appended: u64,
    closed: bool,
}

impl Store {
    /// Reads the log in `dir` (creating `dir` if needed), rewrites it compacted (which also
    /// cuts off a record torn by a crash) and starts the writer thread.
    pub fn open(dir: &Path) -> anyhow::Result<Arc<Store>> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating persistence directory {}", dir.display()))?;
        let lock = lock(dir)?;
        let path = dir.join(LOG);
        let data = log::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let (bodies, _) = log::parse(&data).map_err(|e| match e {
            log::Unreadable::Foreign => anyhow!(
                "{}: not an smq persistence log; give --persist a directory of its own",
                path.display()
            ),
            log::Unreadable::Damaged(at) => anyhow!(
                "{}: damaged at byte {at}, with intact records after it; move the file aside \
                 to start with an empty state (smq will not drop acknowledged data unasked)",
                path.display()
            ),
        })?;
        let mut model = Model::default();
        let last = bodies.len().saturating_sub(1);
        for (i, body) in bodies.into_iter().enumerate() {
            match codec::decode_each(body, |r| model.apply(&r)) {
                Ok(()) => {}
                // Nothing after it: a write torn in a way the checksum did not catch.
                Err(_) if i == last => {}
                Err(_) => bail!(
                    "{}: a record this version of smq cannot read; was it written by a newer one?",
                    path.display()
                ),
            }
        }
        drop(data);
        let mut snapshot = Vec::new();
        model.snapshot(&mut snapshot);
        let (file, len) = log::replace(dir, LOG, &snapshot)
            .with_context(|| format!("writing {}", path.display()))?;
        let core = Arc::new(Core {
            dir: dir.to_owned(),
            inner: Mutex::new(Inner {
                model,
                pending: Vec::new(),
                sealed: 0,
                group: None,
                scratch: Vec::new(),
                appended: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            durable: watch::Sender::new(0),
            stats: Stats::default(),
        });
        core.stats.log_bytes.store(len, Ordering::Relaxed);
        let writer = core.clone();
        std::thread::Builder::new()
            .name("smq-persist".into())
            .spawn(move || {
                // A panic would leave every client waiting for a durable position that never
                // comes: stop the broker instead, as for a write error.
                let run = std::panic::AssertUnwindSafe(|| writer.write_loop(file, len));
                if std::panic::catch_unwind(run).is_err() {
                    writer.fail(&"the writer thread panicked");
                }
            })
            .context("starting the persistence writer thread")?;
        Ok(Arc::new(Store { core, _lock: lock }))
    }

    /// Appends a record; returns the log position to wait for (`synced`) before anything
    /// that depends on it is acknowledged.
    pub fn append(&self, r: Record) -> u64 {
        let mut g = self.lock();
        if g.push(&r) {
            self.wake.notify_one();
        }
        g.appended
    }

    /// Persists a message queued for persistent sessions; returns its id.
    pub fn add_message(&self, msg: &Arc<Published>) -> u64 {
        let mut g = self.lock();
        let id = g.model.next_id;
        if g.push(&Record::Msg {
            id,
            msg: msg.clone(),
        }) {
            self.wake.notify_one();
        }
        id
    }

    /// Queues message `id` for `client`; returns the entry's id and the log position.
    pub fn enqueue(
        &self,
        client: Arc<str>,
        id: u64,
        qos: u8,
        retain: bool,
        sub_ids: Vec<u32>,
    ) -> (u64, u64) {
        let mut g = self.lock();
        let entry = g.model.next_id;
        if g.push(&Record::Enqueue {
            client,
            id,
            entry,
            qos,
            retain,
            sub_ids,
        }) {
            self.wake.notify_one();
        }
        (entry, g.appended)
    }

    /// Records appended until the guard drops reach the disk in one frame, under one
    /// checksum: after a crash either all of them are there or none. Callers hold the router
    /// lock, so groups stay short; appends from other tasks meanwhile join the group.
    pub fn group(&self) -> Group<'_> {
        self.lock().enter_group();
        Group(self)
    }

    /// The log position of everything appended so far.
    pub fn position(&self) -> u64 {
        self.lock().appended
    }

    /// How far the log is on disk.
    pub fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Waits until the log is on disk up to `pos`.
    pub async fn synced(&self, pos: u64) {
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|&d| d >= pos).await;
    }

    /// Lets the writer finish what is pending and waits for it.
    pub async fn close(&self) {
        let pos = {
            let mut g = self.lock();
            g.closed = true;
            g.appended
        };
        self.wake.notify_one();
        self.synced(pos).await;
    }

    /// A look at what the log holds, for restoring it at start.
    pub fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self.lock().model)
    }
}

impl std::ops::Deref for Store {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Core {
    /// The store's state. A panic while it was held may have left the model and the log
    /// apart: nothing more may be acknowledged, so the broker stops.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(_) => self.fail(&"a panic interrupted an update of the log"),
        }
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        match self.wake.wait(g) {
            Ok(g) => g,
            Err(_) => self.fail(&"a panic interrupted an update of the log"),
        }
    }

    fn write_loop(&self, mut file: File, mut len: u64) {
        let mut batch = Vec::new();
        let mut mark = Vec::new();
        let mut compacted = len;
        loop {
            let pos = {
                let mut g = self.lock();
                while g.sealed == 0 && !(g.closed && g.group.is_none()) {
                    g = self.wait(g);
                }
                if g.sealed == 0 {
                    return;
                }
                g.take_sealed(&mut batch)
            };
            mark.clear();
            log::checkpoint(len, &mut mark);
            let written = file.write_all(&mark).and_then(|()| file.write_all(&batch));
            let synced_at = std::time::Instant::now();
            if let Err(e) = written.and_then(|()| file.sync_data()) {
                self.fail(&e);
            }
            self.stats.fsync_took(synced_at.elapsed());
            len += (mark.len() + batch.len()) as u64;
            batch.clear();
            if batch.capacity() > 16 << 20 {
                batch = Vec::new();
            }
            self.durable.send_replace(pos);
            if len > COMPACT_MIN.max(compacted.saturating_mul(4)) {
                match self.compact() {
                    Ok((f, l)) => {
                        file = f;
                        len = l;
                        compacted = l;
                    }
                    Err(e) => self.fail(&e),
                }
            }
            self.stats.log_bytes.store(len, Ordering::Relaxed);
        }
    }

    /// Replaces the log with a snapshot of the state, which includes everything pending.
    fn compact(&self) -> io::Result<(File, u64)> {
        let (snapshot, pos) = {
            let mut g = self.lock();
            // An open group's records are in the model already, the rest of it not yet.
            while g.group.is_some() {
                g = self.wait(g);
            }
            let mut s = Vec::new();
            g.model.snapshot(&mut s);
            g.pending.clear();
            g.sealed = 0;
            (s, g.appended)
        };
        let done = log::replace(&self.dir, LOG, &snapshot)?;
        self.durable.send_replace(pos);
        Ok(done)
    }

    /// A broker that cannot write its log must not acknowledge anything more: stop.
    fn fail(&self, e: &dyn std::fmt::Display) -> ! {
        let _ = writeln!(
            io::stderr(),
            "smq: error: writing {}: {e}",
            self.dir.join(LOG).display()
        );
        std::process::exit(1);
    }
}

/// With a log, a panic anywhere in the broker stops it at the panic, before anything more is
/// acknowledged. A connection task that panics halfway through an update may leave the router,
/// the store's model and the log apart, and tokio would carry on with the other tasks; the log
/// is what the next start trusts, and it holds everything acknowledged so far.
pub fn stop_on_panic(dir: &Path) {
    let log = dir.join(LOG);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let _ = writeln!(
            io::stderr(),
            "smq: error: stopping after the panic above, before anything more is acknowledged; \
             start the broker again: {} holds what was acknowledged",
            log.display()
        );
        std::process::exit(1);
    }));
}

/// Takes the directory's lock, or says who has it.
fn lock(dir: &Path) -> anyhow::Result<File> {
    use rustix::fs::{FlockOperation, flock};
    let path = dir.join(LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(
            "{} is in use by another smq serve-broker; give each broker a directory of its own",
            dir.display()
        ),
        Err(e) => Err(io::Error::from(e)).with_context(|| format!("locking {}", path.display())),
    }
}

/// Holds a group open (`Store::group`); dropping it closes the group's frame.
pub struct Group<'a>(&'a Store);

impl Drop for Group<'_> {
    fn drop(&mut self) {
        // Unwinding from a panic halfway through the group: sealing it would write half of
        // what was meant to reach the disk whole.
        if std::thread::panicking() {
            self.0.fail(&"a panic interrupted a group of log records");
        }
        if self.0.lock().leave_group() {
            // The writer may be waiting for records, or a compaction for the group to close.
            self.0.wake.notify_one();
        }
    }
}

impl Inner {
    /// Applies and buffers a record; true when the writer may be asleep waiting for one.
    fn push(&mut self, r: &Record) -> bool {
        self.model.apply(r);
        self.scratch.clear();
        codec::encode(r, &mut self.scratch);
        let before = self.pending.len();
        if self.group.is_some() {
            codec::put_member(&self.scratch, &mut self.pending);
        } else {
            log::frame(&self.scratch, &mut self.pending);
        }
        self.appended += (self.pending.len() - before) as u64;
        self.group.is_none() && self.seal()
    }

    /// Opens a group, or joins the one open (`Store::group`).
    fn enter_group(&mut self) {
        match &mut self.group {
            Some((_, depth)) => *depth += 1,
            None => {
                let start = self.pending.len();
                self.pending.extend_from_slice(&[0; 8]);
                self.pending.push(codec::GROUP);
                self.appended += 9;
                self.group = Some((start, 1));
            }
        }
    }

    /// Leaves the group; true when that closed it, sealing its frame.
    fn leave_group(&mut self) -> bool {
        let Some((start, depth)) = self.group else {
            return false;
        };
        if depth > 1 {
            self.group = Some((start, depth - 1));
            return false;
        }
        self.group = None;
        log::seal_frame(&mut self.pending[start..]);
        self.seal();
        true
    }

    /// Moves what the writer may take into `batch` (empty); returns the log position that
    /// ends it.
    fn take_sealed(&mut self, batch: &mut Vec<u8>) -> u64 {
        if self.sealed == self.pending.len() {
            std::mem::swap(&mut self.pending, batch);
        } else {
            // An open group follows what is sealed: its frame moves down with it.
            let sealed = self.sealed;
            batch.extend(self.pending.drain(..sealed));
            if let Some((start, _)) = &mut self.group {
                *start -= sealed;
            }
        }
        self.sealed = 0;
        self.appended - self.pending.len() as u64
    }

    /// Lets the writer take everything pending; true when it had nothing before.
    fn seal(&mut self) -> bool {
        let was_idle = self.sealed == 0;
        self.sealed = self.pending.len();
        was_idle && self.sealed > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use bytes::Bytes;

    /// `Store::open` for a directory whose last store was just dropped. Another test may be
    /// forking a child at that moment: until it execs, the child shares the lock file's open
    /// description, so the flock is briefly still held (and the product rightly refuses).
    fn reopen(dir: &Path) -> Arc<Store> {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir) {
                Ok(store) => return store,
                Err(e) if e.to_string().contains("is in use") && Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("{e:#}"),
            }
        }
    }

    fn retained(topic: &str, payload: &str) -> Record {
        Record::Retain {
            msg: Arc::new(Published {
                topic: Bytes::copy_from_slice(topic.as_bytes()),
                payload: Bytes::copy_from_slice(payload.as_bytes()),
                qos: 1,
                retain: true,
                props: None,
                received: Instant::now(),
                from: None,
            }),
        }
    }

    fn topics(store: &Store) -> Vec<String> {
        let mut t: Vec<String> = store.with_model(|m| {
            m.retained
                .values()
                .map(|p| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(&p.topic),
                        String::from_utf8_lossy(&p.payload)
                    )
                })
                .collect()
        });
        t.sort();
        t
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn what_was_synced_is_there_after_a_reopen_even_with_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        store.append(retained("a", "1"));
        store.append(retained("b", "2"));
        let pos = store.append(retained("a", "3"));
        block_on(store.synced(pos));
        assert!(Store::open(dir.path()).is_err(), "the directory is locked");
        drop(store);
        // A crash in the middle of the next write: half a record at the end.
        let mut half = Vec::new();
        let mut body = Vec::new();
        codec::encode(&retained("c", "torn"), &mut body);
        log::frame(&body, &mut half);
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG))
            .unwrap();
        f.write_all(&half[..half.len() / 2]).unwrap();
        drop(f);
        let again = reopen(dir.path());
        assert_eq!(topics(&again), ["a=3", "b=2"]);
        // Reopening rewrote the log without the torn record, so appends land cleanly.
        let pos = again.append(retained("d", "4"));
        block_on(again.close());
        assert!(pos > 0);
        drop(again);
        assert_eq!(topics(&reopen(dir.path())), ["a=3", "b=2", "d=4"]);
    }

    #[test]
    fn a_group_reaches_the_disk_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let pos = store.append(retained("before", "0"));
        block_on(store.synced(pos));
        let group = store.group();
        store.append(retained("g", "1"));
        // Another task's record while the group is open joins it.
        store.append(retained("h", "2"));
        assert_eq!(
            store.lock().sealed,
            0,
            "the writer may not take half a group"
        );
        drop(group);
        let pos = store.position();
        block_on(store.synced(pos));
        drop(store);
        let whole = fs::read(dir.path().join(LOG)).unwrap();
        let group_at = log::parse(&whole).unwrap().1 - {
            let (bodies, _) = log::parse(&whole).unwrap();
            bodies.last().unwrap().len() + 8
        };
        for cut in group_at..whole.len() {
            fs::write(dir.path().join(LOG), &whole[..cut]).unwrap();
            assert_eq!(topics(&reopen(dir.path())), ["before=0"], "cut at {cut}");
        }
        fs::write(dir.path().join(LOG), &whole).unwrap();
        assert_eq!(topics(&reopen(dir.path())), ["before=0", "g=1", "h=2"]);
    }

    #[test]
    fn publish_then_writes_the_message_and_the_record_in_one_frame() {
        use crate::broker::router::Shared;
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let shared = Shared::new();
        shared.lock().store = Some(store.clone());
        let Record::Retain { msg } = retained("w", "will") else {
            unreachable!()
        };
        let (_, _, pos) = shared.publish_then(
            &msg,
            Some(Record::WillDone {
                client: Arc::from("c"),
            }),
        );
        block_on(store.synced(pos.unwrap()));
        let data = fs::read(dir.path().join(LOG)).unwrap();
        let (bodies, _) = log::parse(&data).unwrap();
        let mut last = Vec::new();
        codec::decode_each(bodies.last().unwrap(), |r| last.push(format!("{r:?}"))).unwrap();
        assert_eq!(last.len(), 2, "{last:?}");
        assert!(last[0].starts_with("Retain") && last[1].starts_with("WillDone"));
    }

    #[test]
    fn the_writer_taking_records_while_a_group_is_open_leaves_the_group_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        // The writer's part done by hand, at the moment that raced: records sealed ahead of
        // a group that is still open when the writer takes them.
        // Held throughout, so the real writer thread takes nothing meanwhile.
        let mut g = store.lock();
        for i in 0..3 {
            g.push(&retained(&format!("before/{i}"), "x"));
        }
        g.enter_group();
        g.push(&retained("in/group", "1"));
        let mut batch = Vec::new();
        let taken_to = g.take_sealed(&mut batch);
        assert_eq!(taken_to, g.appended - g.pending.len() as u64);
        g.push(&retained("in/group", "2"));
        assert!(g.leave_group());
        let mut rest = Vec::new();
        let end = g.take_sealed(&mut rest);
        assert_eq!(end, g.appended);
        drop(g);
        let mut data = log::MAGIC.to_vec();
        data.extend_from_slice(&batch);
        data.extend_from_slice(&rest);
        let (bodies, good) = log::parse(&data).unwrap();
        assert_eq!(good, data.len(), "every frame intact");
        let mut records = Vec::new();
        for b in bodies {
            codec::decode_each(b, |r| records.push(format!("{r:?}"))).unwrap();
        }
        assert_eq!(records.len(), 5, "{records:#?}");
        assert!(records[3].contains("in/group") && records[4].contains("in/group"));
    }

    /// Set in the child processes of the panic test: how the child stops, and its directory.
    const PANIC_CHILD: &str = "SMQ_TEST_PERSIST_PANIC_CHILD";
    const PANIC_TEST: &str = "broker::persist::tests::a_panic_halfway_through_an_update_stops_before_anything_more_is_acknowledged";

    /// The child: a store with something synced, then a task that panics halfway through a
    /// group, then another record waited for as an acknowledgement would be.
    fn panicking_child(hook: bool, dir: &Path) {
        if hook {
            stop_on_panic(dir);
        }
        let store = Store::open(dir).unwrap();
        let pos = store.append(retained("before", "1"));
        block_on(store.synced(pos));
        let s = store.clone();
        let _ = std::thread::spawn(move || {
            let _group = s.group();
            s.append(retained("half", "2"));
            panic!("injected: a bug halfway through a group");
        })
        .join();
        let pos = store.append(retained("after", "3"));
        block_on(store.synced(pos));
        let _ = writeln!(io::stdout(), "acknowledged after the panic");
    }

    #[test]
    fn a_panic_halfway_through_an_update_stops_before_anything_more_is_acknowledged() {
        if let Some(child) = std::env::var_os(PANIC_CHILD) {
            let child = child.to_str().unwrap();
            let (how, dir) = child.split_once(':').unwrap();
            return panicking_child(how == "hook", Path::new(dir));
        }
        // With the broker's panic hook, and without it (the store's own guard).
        for how in ["hook", "guard"] {
            let dir = tempfile::tempdir().unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", PANIC_TEST, "--nocapture", "--test-threads=1"])
                .env(
                    PANIC_CHILD,
                    format!("{how}:{}", dir.path().to_str().unwrap()),
                )
                .env("RUST_BACKTRACE", "0")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stdout.contains("acknowledged after the panic"),
                "{how}: {stdout}\n{stderr}"
            );
            assert_eq!(out.status.code(), Some(1), "{how}: {stdout}\n{stderr}");
            assert!(stderr.contains("injected"), "{how}: {stderr}");
            let said = if how == "hook" {
                "before anything more is acknowledged"
            } else {
                "a panic interrupted a group of log records"
            };
            assert!(stderr.contains(said), "{how}: {stderr}");
            // Half a group never reached the disk, nor anything after it.
            assert_eq!(topics(&reopen(dir.path())), ["before=1"], "{how}");
        }
    }

    #[test]
    fn compaction_keeps_the_state_and_shrinks_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        for i in 0..500 {
            store.append(retained("same/topic", &i.to_string()));
        }
        let pos = store.append(retained("other", "x"));
        block_on(store.synced(pos));
        let before = fs::metadata(dir.path().join(LOG)).unwrap().len();
        let (mut file, _) = store.compact().unwrap();
        let after = fs::metadata(dir.path().join(LOG)).unwrap().len();
        assert!(after * 10 < before, "{before} -> {after}");
        // Records appended after a compaction go on the end of the new file.
        let mut more = Vec::new();
        let mut body = Vec::new();
        codec::encode(&retained("late", "y"), &mut body);
        log::frame(&body, &mut more);
        file.write_all(&more).unwrap();
        drop(store);
        assert_eq!(
            topics(&reopen(dir.path())),
            ["late=y", "other=x", "same/topic=499"]
        );
    }

    #[test]
    fn a_zero_filled_or_undecodable_tail_still_opens_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = reopen(dir.path());
        let pos = store.append(retained("a", "1"));
        block_on(store.synced(pos));
        drop(store);
        let good = fs::read(dir.path().join(LOG)).unwrap();
        let mut zeros = good.clone();
        zeros.extend_from_slice(&[0; 4096]);
        fs::write(dir.path().join(LOG), &zeros).unwrap();
        assert_eq!(topics(&reopen(dir.path())), ["a=1"]);
        // A frame whose checksum holds but whose record does not decode, last: torn.
        let mut odd = good.clone();
        log::frame(&[99], &mut odd);
        fs::write(dir.path().join(LOG), &odd).unwrap();
        assert_eq!(topics(&reopen(dir.path())), ["a=1"]);
        // Damage in the middle, with a write after it that was fsync'd: refused, saying where.
        let mut damaged = good.clone();
        let at = damaged.len();
        let mut body = Vec::new();
        codec::encode(&retained("b", "2"), &mut body);
        log::frame(&body, &mut damaged);
        log::checkpoint(damaged.len() as u64, &mut damaged);
        log::frame(&body, &mut damaged);
        damaged[at + 9] ^= 0xFF;
        fs::write(dir.path().join(LOG), &damaged).unwrap();
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&format!("damaged at byte {at}")), "{err}");
        assert!(err.contains("move the file aside"), "{err}");
        assert_eq!(
            fs::read(dir.path().join(LOG)).unwrap(),
            damaged,
            "left as it was"
        );
    }

    #[test]
    fn a_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOG), b"something else entirely").unwrap();
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("not an smq persistence log"), "{err}");
        assert!(err.contains("directory of its own"), "{err}");
    }
}
