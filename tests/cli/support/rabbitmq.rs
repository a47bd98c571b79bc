//! A 3-node RabbitMQ 3.10 cluster with the MQTT plugin (MQTT 3.1.1 only), on 127.0.0.1, started
//! once per test binary run for all the tests that need it (about 20 s).
//!
//! Everything lives in a temp dir: HOME and its Erlang cookie, each node's MNESIA_BASE, config
//! and logs. The cluster has its own epmd on a free port (ERL_EPMD_PORT), so it never meets
//! another RabbitMQ on this machine; every node has its own free AMQP, distribution and MQTT
//! ports. Three nodes, because the MQTT plugin needs a majority: with one node stopped, the
//! other two keep serving MQTT.
//!
//! A static is never dropped, so the cluster cannot be stopped by a destructor. A watchdog
//! does it: a shell whose stdin is a pipe that only this test process holds. When the process
//! exits, however it exits, the pipe closes; the watchdog then sends SIGTERM to each node's
//! process group and to epmd, by PID, waits for them, kills what is left and removes the temp
//! dir.
//!
//! The tests that use the cluster take [`Cluster::lock`], so that one test stopping a node
//! never surprises another; the guard starts every stopped node again.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::free_port;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// The CLI without the /usr/sbin wrapper, which switches to the rabbitmq user and its HOME.
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
const NODES: usize = 3;
/// Starting three Erlang nodes on a loaded 2-core machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Node {
    pub name: String,
    pub mqtt_port: u16,
    dir: PathBuf,
    /// The rabbitmq-server shell, leader of the node's process group.
    shell: Mutex<Child>,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    home: PathBuf,
    epmd_port: u16,
    ctl_port: u16,
    /// Held open for the life of the process: closing it tells the watchdog to stop everything.
    _watchdog: Mutex<ChildStdin>,
    turn: Mutex<()>,
    /// Which nodes a test stopped, to start them again.
    stopped: Mutex<Vec<usize>>,
}

/// The cluster, or why it could not start: tried once, so a failure is not repeated (with
/// another three nodes) by every test that wants it.
static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The shared cluster, started on first use. Fails the test (never skips it) when RabbitMQ is
/// not installed.
pub fn cluster() -> &'static Cluster {
    let started = CLUSTER.get_or_init(|| {
        std::panic::catch_unwind(Cluster::start).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "starting the RabbitMQ cluster panicked".to_owned())
        })
    });
    match started {
        Ok(cluster) => cluster,
        Err(why) => panic!("{why}"),
    }
}

/// What a test holds while it uses the cluster: it may stop nodes; dropping it starts them
/// again.
pub struct Turn<'a> {
    cluster: &'a Cluster,
    _lock: MutexGuard<'a, ()>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let stopped = std::mem::take(&mut *lock(&self.cluster.stopped));
        for i in stopped {
            self.cluster.ctl(i, "start_app");
        }
    }
}

impl Turn<'_> {
    /// `rabbitmqctl stop_app` on node `i`: its MQTT listener closes and its clients are dropped.
    pub fn stop_app(&self, i: usize) {
        self.cluster.ctl(i, "stop_app");
        lock(&self.cluster.stopped).push(i);
    }

    /// `rabbitmqctl start_app` on node `i`; returns once its MQTT listener is up again.
    pub fn start_app(&self, i: usize) {
        self.cluster.ctl(i, "start_app");
        lock(&self.cluster.stopped).retain(|&n| n != i);
        self.cluster.wait_for_mqtt(i);
    }

    pub fn port(&self, i: usize) -> u16 {
        self.cluster.nodes[i].mqtt_port
    }
}

impl Cluster {
    /// One test at a time.
    pub fn lock(&self) -> Turn<'_> {
        Turn {
            cluster: self,
            _lock: self.turn.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    fn start() -> Cluster {
        for tool in [SERVER, CTL] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: these tests need RabbitMQ 3.10 with its MQTT plugin; .ci/run installs it (apt-get install rabbitmq-server)"
            );
        }
        let base = tempfile::Builder::new()
            .prefix("smq-rabbitmq-")
            .tempdir()
            .expect("creating a temp dir for RabbitMQ")
            .keep();
        let home = base.join("home");
        fs::create_dir_all(&home).expect("creating RabbitMQ's HOME");
        let cookie = home.join(".erlang.cookie");
        fs::write(&cookie, format!("SMQTEST{}", std::process::id())).expect("writing the cookie");
        fs::set_permissions(&cookie, fs::Permissions::from_mode(0o400))
            .expect("making the cookie private");
        let epmd_port = free_port();
        let ctl_port = free_port().min(65535 - 10);
        let mut dog = watchdog(&base);

        let mut epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting epmd (part of RabbitMQ's Erlang): {e}"));
        watch(&mut dog, i64::from(epmd.id()));
        wait_for_port(epmd_port, &mut epmd, "epmd", &base);

        let ports: Vec<(u16, u16, u16)> = (0..NODES)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, &(amqp, dist, mqtt)) in ports.iter().enumerate() {
            let name = format!("smq{}@localhost", i + 1);
            let dir = base.join(format!("n{}", i + 1));
            fs::create_dir_all(&dir).expect("creating a node directory");
            let peers: String = (0..NODES)
                .map(|j| {
                    format!(
                        "cluster_formation.classic_config.nodes.{} = smq{}@localhost\n",
                        j + 1,
                        j + 1
                    )
                })
                .collect();
            fs::write(
                dir.join("rabbitmq.conf"),
                format!(
                    "listeners.tcp.default = 127.0.0.1:{amqp}\n\
                     mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n\
                     mqtt.allow_anonymous = true\n\
                     loopback_users = none\n\
                     cluster_formation.peer_discovery_backend = classic_config\n\
                     {peers}\
                     log.console = true\n\
                     log.console.level = info\n\
                     log.file = false\n"
                ),
            )
            .expect("writing rabbitmq.conf");
            fs::write(dir.join("enabled_plugins"), "[rabbitmq_mqtt].\n")
                .expect("writing enabled_plugins");
            let log = fs::File::create(dir.join("out.log")).expect("creating the node log");
            let shell = Command::new(SERVER)
                .env("HOME", &home)
                .env("ERL_EPMD_PORT", epmd_port.to_string())
                .env("RABBITMQ_NODENAME", &name)
                .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
                .env("RABBITMQ_NODE_PORT", amqp.to_string())
                .env("RABBITMQ_DIST_PORT", dist.to_string())
                .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
                .env("RABBITMQ_LOG_BASE", dir.join("log"))
                .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
                .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
                .env("RABBITMQ_PID_FILE", dir.join("pid"))
                // Busy-waiting schedulers would take the CPU from everything else.
                .env(
                    "RABBITMQ_SERVER_ERL_ARGS",
                    "+sbwt none +sbwtdcpu none +sbwtdio none",
                )
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("sharing the node log"))
                .stderr(log)
                // Its own process group: beam and its helpers go down with one signal.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {SERVER}: {e}"));
            watch(&mut dog, -i64::from(shell.id()));
            nodes.push(Node {
                name,
                mqtt_port: mqtt,
                dir,
                shell: Mutex::new(shell),
            });
        }
        let cluster = Cluster {
            nodes,
            home,
            epmd_port,
            ctl_port,
            _watchdog: Mutex::new(dog),
            turn: Mutex::new(()),
            stopped: Mutex::new(Vec::new()),
        };
        // The watchdog stops epmd; its handle is not needed.
        drop(epmd);
        for i in 0..NODES {
            cluster.wait_for_mqtt(i);
        }
        cluster.wait_for_cluster();
        cluster.settle_client_id_tracking();
        cluster
    }

    /// The MQTT plugin tracks client ids in a Raft cluster (`mqtt_node`). Now and then a node
    /// comes out of the cluster's formation outside it: it never hears of the leader, and a
    /// node restarted later that asks it first waits 100 s (RabbitMQ 3.10's
    /// `mqtt_node:join_peers`) before it serves MQTT again. Such a node is added here, through
    /// a node that knows the leader, before any test runs.
    fn settle_client_id_tracking(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let members = "ra:members({mqtt_node, node()}, 3000).";
        loop {
            let answers: Vec<String> = (0..NODES)
                .map(|i| self.ctl_output(i, &["eval", members]))
                .collect();
            let in_all = |a: &String| self.nodes.iter().all(|n| a.contains(&n.name));
            if answers.iter().all(|a| a.starts_with("{ok,") && in_all(a)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the RabbitMQ nodes' MQTT client id tracking did not settle: {answers:?}"
            );
            let Some(good) = answers.iter().position(|a| a.starts_with("{ok,")) else {
                thread::sleep(Duration::from_millis(500));
                continue;
            };
            for (i, node) in self.nodes.iter().enumerate() {
                if !answers[good].contains(&node.name) {
                    let add = format!(
                        "ra:add_member({{mqtt_node, node()}}, {{mqtt_node, '{}'}}).",
                        node.name
                    );
                    self.ctl_output(good, &["eval", &add]);
                } else if !answers[i].starts_with("{ok,") {
                    self.ctl_output(i, &["eval", "ra:trigger_election({mqtt_node, node()})."]);
                }
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until node `i` takes MQTT connections, failing with its log if it died.
    fn wait_for_mqtt(&self, i: usize) {
        let node = &self.nodes[i];
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", node.mqtt_port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = lock(&node.shell).try_wait() {
                panic!(
                    "RabbitMQ node {} exited ({status})\n{}",
                    node.name,
                    node.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ node {} did not listen on MQTT port {} within {:?}\n{}",
                node.name,
                node.mqtt_port,
                BOOT_TIMEOUT,
                node.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every node is a running member of one cluster.
    fn wait_for_cluster(&self) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let out = self.ctl_output(0, &["cluster_status", "--formatter", "json"]);
            let running = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v["running_nodes"].as_array().map(Vec::len));
            if running == Some(NODES) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the RabbitMQ nodes did not form a cluster of {NODES}: {out}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn ctl(&self, i: usize, what: &str) {
        let out = self
            .ctl_command(i, &[what])
            .output()
            .expect("running rabbitmqctl");
        assert!(
            out.status.success(),
            "rabbitmqctl -n {} {what}: {}{}",
            self.nodes[i].name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_output(&self, i: usize, args: &[&str]) -> String {
        self.ctl_command(i, args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    fn ctl_command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(CTL);
        cmd.env("HOME", &self.home)
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            // The CLI is an Erlang node too; its ports stay clear of any other RabbitMQ's.
            .env("RABBITMQ_CTL_DIST_PORT_MIN", self.ctl_port.to_string())
            .env(
                "RABBITMQ_CTL_DIST_PORT_MAX",
                (self.ctl_port + 10).to_string(),
            )
            .arg("-n")
            .arg(&self.nodes[i].name)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }
}

impl Node {
    fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.join("out.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// Starts the shell that stops the cluster once this process is gone (see the module comment).
/// It reads what to stop from its stdin, one PID (or `-PGID`) a line, until EOF.
fn watchdog(base: &Path) -> ChildStdin {
    let script = format!(
        "pids=''\n\
         while read p; do pids=\"$pids $p\"; done\n\
         for p in $pids; do kill -TERM $p 2>/dev/null; done\n\
         for i in $(seq 100); do\n\
           alive=0\n\
           for p in $pids; do kill -0 $p 2>/dev/null && alive=1; done\n\
           [ $alive = 0 ] && break\n\
           sleep 0.1\n\
         done\n\
         for p in $pids; do kill -KILL $p 2>/dev/null; done\n\
         rm -rf '{}'\n",
        base.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Not in the test's process group: a Ctrl-C of `cargo test` reaches the test process,
        // whose exit then sets the watchdog off, rather than killing the watchdog first.
        .process_group(0)
        .spawn()
        .expect("starting the RabbitMQ watchdog (sh)");
    let stdin = child.stdin.take().expect("the watchdog's stdin is piped");
    // It must outlive this process; init reaps it.
    std::mem::forget(child);
    stdin
}

/// Tells the watchdog to stop `pid` (a negative one is a process group) when we are gone.
fn watch(watchdog: &mut ChildStdin, pid: i64) {
    writeln!(watchdog, "{pid}")
        .and_then(|()| watchdog.flush())
        .expect("telling the RabbitMQ watchdog what to stop");
}

fn wait_for_port(port: u16, child: &mut Child, what: &str, base: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}); files in {}", base.display());
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
