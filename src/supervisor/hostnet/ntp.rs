//! The SNTP client (RFC 4330): asks the servers of berth.json, then
//! DHCP's, in turn; at the first answer it steps the clock to the server's
//! time, after that it slews small offsets and steps only large ones; each
//! answer marks the kernel clock synchronized (kernel::clock), which the
//! daemon's clock gates and retries see. Polls every `poll_min`, doubling
//! to `poll_max` while the clock stays close.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::sntp_packet::{Answer, PACKET_LEN, parse_answer, request, to_ntp};
use super::{Note, log};
use crate::kernel::clock;

/// Past this offset a synchronized clock is stepped again, not slewed
/// (slewing 0.5 s takes the kernel over 15 minutes).
const STEP_THRESHOLD_NS: i128 = 500_000_000;
const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// Before the first sync: retries from 1 s doubling to a minute.
const RETRY_MAX: Duration = Duration::from_secs(60);

pub struct NtpConfig {
    /// berth.json's servers: host and port.
    pub servers: Vec<(String, u16)>,
    pub poll_min: Duration,
    pub poll_max: Duration,
}

/// The Unix time in nanoseconds (negative before 1970).
pub fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// One question to one server: its checked answer.
pub fn query(server: SocketAddr) -> Result<Answer, String> {
    let local: SocketAddr = match server.ip() {
        IpAddr::V4(_) => "0.0.0.0:0".parse().map_err(|_| "address")?,
        IpAddr::V6(_) => "[::]:0".parse().map_err(|_| "address")?,
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("connect: {e}"))?;
    let t1 = now_ns();
    let sent = to_ntp(t1);
    socket
        .send(&request(sent))
        .map_err(|e| format!("send: {e}"))?;
    let deadline = Instant::now() + ANSWER_WAIT;
    let mut buf = [0u8; PACKET_LEN * 4];
    let mut last = String::from("no answer");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last);
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(last);
            }
            Err(e) => return Err(format!("receive: {e}")),
        };
        // A forged or stale answer does not end the wait for the real one.
        match parse_answer(&buf[..n], sent, t1, now_ns()) {
            Ok(a) => return Ok(a),
            Err(e) => last = e,
        }
    }
}

/// What to do with an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjust {
    Step,
    Slew,
}

pub fn decide(first: bool, offset_ns: i128) -> Adjust {
    if first || offset_ns.abs() > STEP_THRESHOLD_NS {
        Adjust::Step
    } else {
        Adjust::Slew
    }
}

/// Refuses a server whose time is before berth was built: it would send
/// the clock back past the floor the daemon keeps (clock_floor.rs).
fn plausible(a: &Answer) -> Result<(), String> {
    let floor = crate::kernel::clock::build_time();
    let floor_ns = floor
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128;
    if a.server_ns < floor_ns {
        return Err("its time is earlier than berth's build".into());
    }
    Ok(())
}

/// The client's state between polls.
struct State {
    synced: bool,
    interval: Duration,
    dhcp: Vec<IpAddr>,
}

/// Runs forever: waits for servers, polls, adjusts.
pub fn run(cfg: NtpConfig, dhcp_servers: Receiver<Vec<IpAddr>>, notes: Sender<Note>) {
    let mut st = State {
        synced: false,
        interval: Duration::from_secs(1),
        dhcp: Vec::new(),
    };
    loop {
        let candidates = candidates(&cfg, &st.dhcp);
        let wait = if candidates.is_empty() {
            Duration::from_secs(3600)
        } else {
            poll_once(&cfg, &mut st, &candidates, &notes)
        };
        match dhcp_servers.recv_timeout(wait) {
            Ok(list) => {
                // New servers before the first sync: try them at once.
                st.dhcp = list;
                if st.synced {
                    let _ = sleep_rest(&dhcp_servers, &mut st.dhcp, wait);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Sleeps out `wait`, taking newer server lists meanwhile.
fn sleep_rest(
    rx: &Receiver<Vec<IpAddr>>,
    dhcp: &mut Vec<IpAddr>,
    wait: Duration,
) -> Result<(), ()> {
    let end = Instant::now() + wait;
    loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(list) => *dhcp = list,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => return Err(()),
        }
    }
}

fn candidates(cfg: &NtpConfig, dhcp: &[IpAddr]) -> Vec<(String, u16)> {
    let mut out = cfg.servers.clone();
    out.extend(dhcp.iter().map(|ip| (ip.to_string(), 123)));
    out
}

/// Asks each server in turn until one answers; returns the wait before
/// the next poll.
fn poll_once(
    cfg: &NtpConfig,
    st: &mut State,
    servers: &[(String, u16)],
    notes: &Sender<Note>,
) -> Duration {
    let mut errors = Vec::new();
    for (host, port) in servers {
        let addr = match (host.as_str(), *port)
            .to_socket_addrs()
            .map(|mut a| a.next())
        {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => {
                errors.push(format!("{host}: {e}"));
                continue;
            }
        };
        let answer = query(addr).and_then(|a| plausible(&a).map(|()| a));
        match answer {
            Ok(a) => return adjust(cfg, st, addr, &a, notes),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    if !st.synced {
        log(format_args!("NTP: no answer ({})", errors.join("; ")));
        let wait = st.interval;
        st.interval = (st.interval * 2).min(RETRY_MAX);
        return wait;
    }
    cfg.poll_min
}

fn adjust(
    cfg: &NtpConfig,
    st: &mut State,
    server: SocketAddr,
    a: &Answer,
    notes: &Sender<Note>,
) -> Duration {
    let how = decide(!st.synced, a.offset_ns);
    let done = match how {
        Adjust::Step => clock::step(a.offset_ns),
        Adjust::Slew => clock::slew(a.offset_ns),
    };
    if let Err(e) = done {
        log(format_args!("NTP: {e}"));
        return cfg.poll_min;
    }
    // The error bound: half the round trip plus the server's own.
    let max_error_us = ((a.delay_ns / 2 + a.root_ns) / 1000 + 1000) as i64;
    if let Err(e) = clock::mark_synchronized(max_error_us, (a.delay_ns / 2000) as i64) {
        log(format_args!("NTP: {e}"));
    }
    let first = !st.synced;
    st.synced = true;
    st.interval = if first || how == Adjust::Step {
        cfg.poll_min
    } else {
        (st.interval * 2).clamp(cfg.poll_min, cfg.poll_max)
    };
    if first || how == Adjust::Step {
        let _ = notes.send(Note::Synced {
            server: server.to_string(),
            offset_ns: a.offset_ns,
            delay_ns: a.delay_ns,
            stratum: a.stratum,
            stepped: how == Adjust::Step,
        });
    }
    st.interval
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback answering one request with `ahead_ns` added.
    fn server(ahead_ns: i128, garbage_first: bool) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 48];
            let (_, from) = s.recv_from(&mut buf).unwrap();
            if garbage_first {
                s.send_to(b"not ntp", from).unwrap();
            }
            let now = to_ntp(now_ns() + ahead_ns);
            let mut p = [0u8; 48];
            p[0] = 0x24;
            p[1] = 1;
            p[24..32].copy_from_slice(&buf[40..48]);
            p[32..40].copy_from_slice(&now.to_be_bytes());
            p[40..48].copy_from_slice(&now.to_be_bytes());
            s.send_to(&p, from).unwrap();
        });
        addr
    }

    #[test]
    fn a_loopback_server_is_asked_and_its_offset_measured() {
        let day: i128 = 86_400 * 1_000_000_000;
        let a = query(server(day, true)).unwrap();
        assert!((a.offset_ns - day).abs() < 1_000_000_000, "{}", a.offset_ns);
        assert!(plausible(&a).is_ok());
        let past = query(server(-40 * 365 * day, false)).unwrap();
        assert!(plausible(&past).is_err(), "before the build");
    }

    #[test]
    fn steps_first_and_when_far_then_slews() {
        assert_eq!(decide(true, 1), Adjust::Step);
        assert_eq!(decide(false, 1_000), Adjust::Slew);
        assert_eq!(decide(false, -600_000_000), Adjust::Step);
    }
}
