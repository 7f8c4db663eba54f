//! Service mode: sd_notify(3) to the service manager that started berth
//! (systemd's Type=notify): READY=1 once the API socket is bound and the
//! containers were started, STOPPING=1 when a shutdown begins, WATCHDOG=1
//! every WATCHDOG_USEC/2 from the event loop, STATUS= lines for
//! `systemctl status`. A no-op without $NOTIFY_SOCKET. Nothing here blocks:
//! the socket is non-blocking and a lost datagram is only logged.
//!
//! NOTIFY_SOCKET stays in the environment: containers get an environment
//! built from their spec (never berth's), helpers never notify, and with
//! NotifyAccess=main systemd ignores any other sender anyway.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use crate::supervisor::say;

pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
    next_ping: Option<Instant>,
    stopping_sent: bool,
}

impl Notifier {
    /// From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID.
    pub fn from_env() -> Notifier {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let watchdog_pid_ok =
            var("WATCHDOG_PID").is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && watchdog_pid_ok)
            .map(Duration::from_micros);
        Notifier::new(var("NOTIFY_SOCKET").as_deref(), watchdog)
    }

    /// `socket` as $NOTIFY_SOCKET spells it: a path, or `@name` for an
    /// abstract socket. (vsock addresses are not supported.)
    pub fn new(socket: Option<&str>, watchdog: Option<Duration>) -> Notifier {
        let target = socket.and_then(|s| match open_target(s) {
            Ok(t) => Some(t),
            Err(e) => {
                say(format_args!("NOTIFY_SOCKET {s}: {e}; not notifying"));
                None
            }
        });
        let watchdog = watchdog.filter(|_| target.is_some());
        Notifier {
            next_ping: watchdog.map(|w| Instant::now() + w / 2),
            target,
            watchdog,
            stopping_sent: false,
        }
    }

    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// The daemon serves: its socket is bound and the containers started.
    pub fn ready(&mut self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A shutdown began (sent once).
    pub fn stopping(&mut self) {
        if !self.stopping_sent {
            self.stopping_sent = true;
            self.send("STOPPING=1\nSTATUS=stopping containers");
        }
    }

    pub fn status(&mut self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    /// When the loop must wake to ping the watchdog.
    pub fn next_watchdog(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Pings the watchdog if it is due. Called every loop turn: the ping
    /// proves the loop turns, which is what the watchdog is for.
    pub fn tick(&mut self) {
        let (Some(due), Some(interval)) = (self.next_ping, self.watchdog) else {
            return;
        };
        let now = Instant::now();
        if now >= due {
            self.send("WATCHDOG=1");
            self.next_ping = Some(now + interval / 2);
        }
    }

    fn send(&mut self, message: &str) {
        if let Some((socket, addr)) = &self.target
            && let Err(e) = socket.send_to_addr(message.as_bytes(), addr)
        {
            say(format_args!("sd_notify: {e}"));
        }
    }
}

fn open_target(spec: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match spec.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None if spec.starts_with('/') => SocketAddr::from_pathname(spec)?,
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "expected an absolute path or @abstract-name",
            ));
        }
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_stopping_and_watchdog_reach_an_abstract_socket() {
        let name = format!("berth-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut n = Notifier::new(Some(&format!("@{name}")), Some(Duration::from_millis(40)));
        assert!(n.is_active());
        n.ready("2 containers");
        assert_eq!(recv(&server), "READY=1\nSTATUS=2 containers");
        let due = n.next_watchdog().unwrap();
        assert!(due <= Instant::now() + Duration::from_millis(20));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        n.tick();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping();
        n.stopping();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=stopping containers");
        server.set_nonblocking(true).unwrap();
        assert!(
            server.recv(&mut [0u8; 64]).is_err(),
            "STOPPING=1 is sent once"
        );
    }

    #[test]
    fn a_path_socket_works_and_no_socket_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut n = Notifier::new(path.to_str(), None);
        n.status("hello");
        assert_eq!(recv(&server), "STATUS=hello");
        assert_eq!(n.next_watchdog(), None);
        let mut none = Notifier::new(None, Some(Duration::from_secs(1)));
        assert!(!none.is_active());
        assert_eq!(none.next_watchdog(), None, "no watchdog without a socket");
        none.ready("x");
        assert!(!Notifier::new(Some("relative"), None).is_active());
    }
}
