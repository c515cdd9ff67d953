//! Several `sundial serve` nodes on one PostgreSQL database (cluster mode), for the
//! cluster tests and benchmarks: each with its own data directory, all with the first
//! node's admin token and secret key (as docs/cluster.md tells operators).

use crate::{Daemon, pg};

/// Nodes on one database; a node is `None` while killed.
pub struct Cluster {
    /// The database's URL.
    pub url: String,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Option<Daemon>>,
    args: Vec<String>,
}

impl Cluster {
    /// Start `n` nodes on a fresh database of the test server, each with `args`.
    pub fn start(n: usize, args: &[&str]) -> Cluster {
        Cluster::start_on(pg::fresh_database("cluster"), n, args)
    }

    /// Start `n` nodes on the database at `url`, each with `args`; the first makes the
    /// admin token and the secret key, which the others get in their data directories.
    pub fn start_on(url: String, n: usize, args: &[&str]) -> Cluster {
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut cluster = Cluster {
            url,
            dirs,
            nodes: Vec::new(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let first = cluster.spawn(0);
        for dir in &cluster.dirs[1..] {
            for file in ["admin.token", "secret.key"] {
                std::fs::copy(first.data.join(file), dir.path().join(file)).unwrap();
            }
        }
        cluster.nodes.push(Some(first));
        for i in 1..n {
            let node = cluster.spawn(i);
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Daemon {
        let mut args: Vec<&str> = vec!["--store", &self.url];
        args.extend(self.args.iter().map(String::as_str));
        Daemon::start(self.dirs[i].path(), &args)
    }

    /// How many nodes (alive or not).
    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// True with no nodes.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Node `i` (alive).
    pub fn node(&self, i: usize) -> &Daemon {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Any live node.
    pub fn any(&self) -> &Daemon {
        self.nodes.iter().flatten().next().expect("a live node")
    }

    /// The live nodes.
    pub fn live(&self) -> impl Iterator<Item = &Daemon> {
        self.nodes.iter().flatten()
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(d) = self.nodes[i].take() {
            d.kill9();
        }
    }

    /// SIGKILL node `i` (if alive) and start it again on its data directory.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.nodes[i] = Some(self.spawn(i));
    }

    /// The node name of node `i` (its `node.id`).
    pub fn name(&self, i: usize) -> String {
        std::fs::read_to_string(self.dirs[i].path().join("node.id"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Which node owns run `id` now (from the database), by index.
    pub fn owner(&self, id: &str) -> Option<usize> {
        let owner = pg::psql_at(
            &self.url,
            &format!("SELECT coalesce(owner, '') FROM runs WHERE id = '{id}'"),
        );
        (0..self.dirs.len()).find(|&i| self.name(i) == owner)
    }
}

/// What a benchmark runs against: one node on redb (the default), or
/// `SUNDIAL_BENCH_NODES` nodes (default 1) on a fresh PostgreSQL database when
/// `SUNDIAL_BENCH_STORE=postgres`.
pub enum Bench {
    /// One node on redb, in its temporary data directory.
    Redb(Daemon, tempfile::TempDir),
    /// Nodes on PostgreSQL.
    Postgres(Cluster),
}

impl Bench {
    /// Start what the environment asks for, every node with `args`.
    pub fn start(args: &[&str]) -> Bench {
        let nodes: usize = std::env::var("SUNDIAL_BENCH_NODES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        match std::env::var("SUNDIAL_BENCH_STORE").as_deref() {
            Ok("postgres") => {
                let cluster = Cluster::start(nodes.max(1), args);
                eprintln!("bench: {} node(s) on PostgreSQL {}", cluster.len(), cluster.url);
                Bench::Postgres(cluster)
            }
            _ => {
                assert!(nodes <= 1, "several nodes need SUNDIAL_BENCH_STORE=postgres");
                let dir = tempfile::tempdir().expect("temp dir");
                let mut all = vec!["--store", "redb"];
                all.extend_from_slice(args);
                eprintln!("bench: one node on redb");
                Bench::Redb(Daemon::start(dir.path(), &all), dir)
            }
        }
    }

    /// The first node.
    pub fn first(&self) -> &Daemon {
        self.nodes()[0]
    }

    /// Every node.
    pub fn nodes(&self) -> Vec<&Daemon> {
        match self {
            Bench::Redb(d, _) => vec![d],
            Bench::Postgres(c) => c.live().collect(),
        }
    }

    /// Every node's `/metrics`, each series summed over the nodes, as
    /// `name{labels} value` lines.
    pub fn metrics_sum(&self) -> String {
        let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
        for d in self.nodes() {
            let (_, text) = d.call("GET", "/metrics", None);
            for line in text.as_str().unwrap_or_default().lines() {
                if line.starts_with('#') {
                    continue;
                }
                if let Some((key, value)) = line.rsplit_once(' ')
                    && let Ok(v) = value.parse::<f64>()
                {
                    *sums.entry(key.to_string()).or_default() += v;
                }
            }
        }
        sums.iter().map(|(k, v)| format!("{k} {v}\n")).collect()
    }

    /// CPU seconds used so far: (the nodes together, PostgreSQL's processes).
    pub fn cpu(&self) -> (f64, f64) {
        let nodes = self.nodes().iter().map(|d| crate::cpu_seconds(d.pid())).sum();
        let pg = match self {
            Bench::Redb(..) => 0.0,
            Bench::Postgres(_) => crate::postgres_cpu_seconds(),
        };
        (nodes, pg)
    }
}
