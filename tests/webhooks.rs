//! Webhook delivery end to end: a journal written with berth's own writer,
//! the notifier run as the real `berth _notify` process, and receivers
//! written here (a tiny HTTP/1.1 server that can be down, fail with 500,
//! hang, or be slow). No root needed.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth::supervisor::events::journal::{Journal, JournalLimits};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    /// Not listening: connections are refused.
    Down = 0,
    Fail = 1,
    Ok = 2,
    /// Reads requests and never answers.
    Hang = 3,
}

#[derive(Clone, Debug)]
struct Request {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn seqs(&self) -> Vec<u64> {
        let events: Vec<Value> = serde_json::from_slice(&self.body).unwrap_or_default();
        events.iter().filter_map(|e| e["seq"].as_u64()).collect()
    }
}

#[derive(Default)]
struct Shared {
    mode: AtomicU8,
    delay_ms: AtomicU64,
    stop: AtomicBool,
    requests: Mutex<Vec<Request>>,
}

/// A webhook receiver on a fixed 127.0.0.1 port, listening or not as its
/// mode says.
struct Receiver {
    port: u16,
    shared: Arc<Shared>,
}

impl Receiver {
    fn start(mode: Mode) -> Receiver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("reserve a port")
            .port();
        let shared = Arc::new(Shared::default());
        shared.mode.store(mode as u8, Ordering::SeqCst);
        let s = shared.clone();
        std::thread::spawn(move || listen(port, s));
        Receiver { port, shared }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook/secret-path", self.port)
    }

    fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// Seqs in acknowledged requests, in the order they arrived.
    fn acked(&self) -> Vec<u64> {
        let reqs = self.requests();
        reqs.iter()
            .filter(|r| r.status == 200)
            .flat_map(Request::seqs)
            .collect()
    }

    fn distinct_acked(&self) -> usize {
        self.acked().into_iter().collect::<HashSet<_>>().len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn mode_of(shared: &Shared) -> Mode {
    match shared.mode.load(Ordering::SeqCst) {
        0 => Mode::Down,
        1 => Mode::Fail,
        2 => Mode::Ok,
        _ => Mode::Hang,
    }
}

fn listen(port: u16, shared: Arc<Shared>) {
    let mut listener: Option<TcpListener> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        if mode_of(&shared) == Mode::Down {
            listener = None;
        } else if listener.is_none() {
            listener = TcpListener::bind(("127.0.0.1", port)).ok();
            if let Some(l) = &listener {
                l.set_nonblocking(true).expect("nonblocking");
            }
        }
        match listener.as_ref().map(TcpListener::accept) {
            Some(Ok((stream, _))) => {
                let s = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &s);
                });
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Serves one keep-alive connection, request by request.
fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nonblocking(false)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut headers = BTreeMap::new();
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let Some((k, v)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let len: usize = headers.get("content-length").context("length")?.parse()?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let status = match mode_of(shared) {
            Mode::Down => return Ok(()),
            Mode::Hang => {
                std::thread::sleep(Duration::from_secs(3600));
                return Ok(());
            }
            Mode::Fail => 500,
            Mode::Ok => 200,
        };
        std::thread::sleep(Duration::from_millis(
            shared.delay_ms.load(Ordering::SeqCst),
        ));
        let response = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
        writer.write_all(response.as_bytes())?;
        let request = Request {
            status,
            headers,
            body,
        };
        shared.requests.lock().expect("lock").push(request);
    }
}

/// A `berth _notify` process; killed when dropped.
struct Notifier {
    child: Child,
    log: PathBuf,
}

impl Notifier {
    fn start(dir: &Path) -> Notifier {
        let log = dir.join("notify.log");
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let child = Command::new(BERTH)
            .arg("_notify")
            .arg("--journal")
            .arg(dir.join("journal"))
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--config")
            .arg(dir.join("webhooks.json"))
            .stdin(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start berth _notify");
        Notifier { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.kill();
    }
}

fn write_config(dir: &Path, hooks: Value) {
    let text = json!({ "webhooks": hooks }).to_string();
    std::fs::write(dir.join("webhooks.json"), text).expect("config");
}

fn limits() -> JournalLimits {
    JournalLimits {
        segment_bytes: 64 << 10,
        max_segments: 64,
    }
}

fn append(dir: &Path, range: std::ops::RangeInclusive<u64>) -> Result<()> {
    let mut j = Journal::open(&dir.join("journal"), limits())?;
    for i in range {
        let kind = if i % 2 == 0 {
            "container.started"
        } else {
            "config.reloaded"
        };
        let e = j.append(kind, Some("web"), json!({ "i": i }))?;
        assert_eq!(e.seq, i);
        if i % 100 == 0 {
            j.sync()?;
        }
    }
    j.sync()?;
    Ok(())
}

fn wait_for(
    what: &str,
    limit: Duration,
    notifier: &Notifier,
    done: impl Fn() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            bail!(
                "timed out waiting for {what}; notifier log:\n{}",
                notifier.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Every seq from 1 to `n` arrived, and none before all earlier ones had
/// (duplicates are allowed: at-least-once); returns the duplicate count.
fn check_no_gaps(acked: &[u64], n: u64) -> Result<usize> {
    let mut max = 0;
    for &s in acked {
        if s > max + 1 {
            bail!("seq {s} arrived before {} (gap)", max + 1);
        }
        max = max.max(s);
    }
    let distinct: HashSet<u64> = acked.iter().copied().collect();
    if distinct.len() as u64 != n || max != n {
        bail!(
            "got {} distinct seqs up to {max}, expected 1..={n}",
            distinct.len()
        );
    }
    Ok(acked.len() - distinct.len())
}

#[test]
fn an_outage_then_errors_then_every_event_once_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = Receiver::start(Mode::Down);
    write_config(
        dir.path(),
        json!([{"name": "fleet", "url": hook.url(), "bearer_token": "t0ken",
                "hmac_secret": "s3cret", "timeout": "2s"}]),
    );
    append(dir.path(), 1..=500)?;
    let notifier = Notifier::start(dir.path());
    // The rest from a "restarted daemon", while the endpoint is down.
    append(dir.path(), 501..=1000)?;
    std::thread::sleep(Duration::from_secs(2));
    hook.set(Mode::Fail);
    // 500s for a second at least, and until one was actually served.
    let failing = Instant::now();
    wait_for("a 500", Duration::from_secs(30), &notifier, || {
        hook.requests().iter().any(|r| r.status == 500)
    })?;
    std::thread::sleep(Duration::from_secs(1).saturating_sub(failing.elapsed()));
    hook.set(Mode::Ok);
    wait_for("1000 events", Duration::from_secs(60), &notifier, || {
        hook.distinct_acked() == 1000
    })?;

    let acked = hook.acked();
    assert_eq!(
        acked,
        (1..=1000).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let requests = hook.requests();
    for r in requests.iter().filter(|r| r.status == 200) {
        let seqs = r.seqs();
        assert!(
            !seqs.is_empty() && seqs.len() <= 50,
            "{} events",
            seqs.len()
        );
        let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
        assert_eq!(r.headers["x-berth-event-seq"], format!("{first}-{last}"));
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["authorization"], "Bearer t0ken");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret")?;
        mac.update(&r.body);
        let sig = r.headers["x-berth-signature"]
            .strip_prefix("sha256=")
            .context("prefix")?;
        let sig: Vec<u8> = (0..sig.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&sig[i..i + 2], 16))
            .collect::<Result<_, _>>()?;
        mac.verify_slice(&sig).context("the signature verifies")?;
    }
    // Cursor persisted; failing and recovered reported for the daemon.
    let cursor = std::fs::read_to_string(dir.path().join("state/fleet.cursor"))?;
    assert_eq!(cursor.trim(), "1000");
    let log = notifier.log();
    assert!(
        log.contains("berth-notify: event webhook.failing {"),
        "{log}"
    );
    assert!(
        log.contains("berth-notify: event webhook.recovered {"),
        "{log}"
    );
    assert!(
        !log.contains("secret-path"),
        "the URL is never logged: {log}"
    );
    Ok(())
}

#[test]
fn a_notifier_killed_mid_stream_resumes_without_gaps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = Receiver::start(Mode::Ok);
    hook.shared.delay_ms.store(20, Ordering::SeqCst);
    write_config(dir.path(), json!([{"name": "fleet", "url": hook.url()}]));
    append(dir.path(), 1..=1000)?;
    let mut notifier = Notifier::start(dir.path());
    wait_for("300 events", Duration::from_secs(30), &notifier, || {
        hook.distinct_acked() >= 300
    })?;
    notifier.kill();
    let before = hook.distinct_acked();
    assert!(before < 1000, "killed mid-stream ({before} delivered)");
    let notifier = Notifier::start(dir.path());
    wait_for("1000 events", Duration::from_secs(30), &notifier, || {
        hook.distinct_acked() == 1000
    })?;
    let duplicates = check_no_gaps(&hook.acked(), 1000)?;
    println!("killed after {before} delivered: {duplicates} sent again");
    // At most the batch in flight at the kill (and one the receiver
    // answered into a dead socket) comes again.
    assert!(duplicates <= 100, "{duplicates} duplicates");
    Ok(())
}

#[test]
fn a_dead_endpoint_does_not_slow_the_others() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hanging = Receiver::start(Mode::Hang);
    let live = Receiver::start(Mode::Ok);
    let filtered = Receiver::start(Mode::Ok);
    write_config(
        dir.path(),
        json!([
            {"name": "hanging", "url": hanging.url(), "timeout": "10s"},
            {"name": "refused", "url": "http://127.0.0.1:1/"},
            {"name": "live", "url": live.url()},
            {"name": "filtered", "url": filtered.url(), "events": ["container.*"]},
        ]),
    );
    append(dir.path(), 1..=1000)?;
    let started = Instant::now();
    let notifier = Notifier::start(dir.path());
    wait_for("1000 events", Duration::from_secs(10), &notifier, || {
        live.distinct_acked() == 1000
    })?;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(live.acked(), (1..=1000).collect::<Vec<_>>());
    wait_for(
        "the filtered events",
        Duration::from_secs(10),
        &notifier,
        || filtered.distinct_acked() == 500,
    )?;
    assert_eq!(
        filtered.acked(),
        (1..=500).map(|i| i * 2).collect::<Vec<_>>()
    );
    // The cursor of the endpoints that get nothing stays at 0.
    assert!(!dir.path().join("state/hanging.cursor").exists());
    Ok(())
}

#[test]
fn events_dropped_by_the_bound_are_logged_as_lost() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = Receiver::start(Mode::Ok);
    write_config(dir.path(), json!([{"name": "late", "url": hook.url()}]));
    let small = JournalLimits {
        segment_bytes: 4096,
        max_segments: 2,
    };
    let mut j = Journal::open(&dir.path().join("journal"), small)?;
    for i in 0..500 {
        j.append("container.started", None, json!({ "i": i }))?;
    }
    j.sync()?;
    let oldest = j.first_seq();
    assert!(oldest > 1);
    let notifier = Notifier::start(dir.path());
    wait_for(
        "the kept events",
        Duration::from_secs(10),
        &notifier,
        || hook.acked().last() == Some(&500),
    )?;
    assert_eq!(hook.acked(), (oldest..=500).collect::<Vec<_>>());
    let log = notifier.log();
    let lost = format!(
        "events 1 to {} are lost (dropped by the journal's size bound",
        oldest - 1
    );
    assert!(log.contains(&lost), "{log}");
    Ok(())
}

/// Measurements for the report (printed; run with --nocapture): journal
/// appends with an fdatasync per 100 events, and delivery to one local
/// endpoint in batches of 50.
#[test]
fn throughput() -> Result<()> {
    const N: u64 = 20_000;
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("journal");
    let big = JournalLimits {
        segment_bytes: 1 << 20,
        max_segments: 16,
    };
    let mut j = Journal::open(&journal, big)?;
    let started = Instant::now();
    for i in 1..=N {
        j.append(
            "container.started",
            Some("web"),
            json!({ "i": i, "image": "alpine:3" }),
        )?;
        if i % 100 == 0 {
            j.sync()?;
        }
    }
    let append_rate = N as f64 / started.elapsed().as_secs_f64();
    let hook = Receiver::start(Mode::Ok);
    write_config(
        dir.path(),
        json!([{"name": "fast", "url": hook.url(), "hmac_secret": "k"}]),
    );
    let started = Instant::now();
    let notifier = Notifier::start(dir.path());
    wait_for("all events", Duration::from_secs(120), &notifier, || {
        hook.acked().last() == Some(&N)
    })?;
    let deliver_rate = N as f64 / started.elapsed().as_secs_f64();
    println!("journal append, fdatasync per 100: {append_rate:.0} events/s");
    println!("delivery to one local endpoint (batches of 50): {deliver_rate:.0} events/s");
    // Sanity only: the numbers are for the report, and CI machines vary.
    assert!(append_rate > 100.0 && deliver_rate > 100.0);
    Ok(())
}
