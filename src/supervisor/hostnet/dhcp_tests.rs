use super::*;
use std::collections::VecDeque;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// A server that answers each request with the scripted replies, and
/// records what was sent where.
struct FakeServer {
    answers: VecDeque<Option<Vec<u8>>>,
    pending: Option<Vec<u8>>,
    sent: Vec<(Vec<u8>, Option<Ipv4Addr>)>,
}

impl Wire for FakeServer {
    fn send(&mut self, packet: &[u8], to: Option<Ipv4Addr>) -> io::Result<()> {
        self.sent.push((packet.to_vec(), to));
        self.pending = self.answers.pop_front().flatten();
        Ok(())
    }

    fn recv(&mut self, _deadline: Instant) -> io::Result<Option<Vec<u8>>> {
        Ok(self.pending.take())
    }
}

/// A server's answer of `kind` for `xid` (slirp's values).
fn answer(kind: u8, xid: u32, mac: [u8; 6]) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 2;
    p[1] = 1;
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[16..20].copy_from_slice(&[10, 0, 2, 15]);
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&[99, 130, 83, 99, 53, 1, kind, 54, 4, 10, 0, 2, 2]);
    p.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2, 6, 4, 10, 0, 2, 3]);
    p.extend_from_slice(&[42, 4, 10, 0, 2, 4, 51, 4, 0, 0, 0x0e, 0x10, 255]);
    p
}

fn client(answers: Vec<Option<Vec<u8>>>) -> Client<FakeServer> {
    Client {
        wire: FakeServer {
            answers: answers.into(),
            pending: None,
            sent: Vec::new(),
        },
        mac: MAC,
        hostname: Some("berth-vm".into()),
        xid: 9,
    }
}

#[test]
fn discover_offer_request_ack_binds() {
    let mut c = client(vec![Some(answer(2, 9, MAC)), Some(answer(5, 9, MAC))]);
    let b = c.obtain().unwrap().expect("bound");
    assert_eq!(b.address, Ipv4Addr::new(10, 0, 2, 15));
    assert_eq!((b.prefix, b.router), (24, Some(Ipv4Addr::new(10, 0, 2, 2))));
    assert_eq!(b.dns, [Ipv4Addr::new(10, 0, 2, 3)]);
    assert_eq!(b.ntp, [Ipv4Addr::new(10, 0, 2, 4)]);
    assert_eq!(b.lease.total, Duration::from_secs(3600));
    let sent = &c.wire.sent;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|(_, to)| to.is_none()), "broadcast in INIT");
    assert_eq!(sent[1].0[236 + 6], 3, "the second is a REQUEST");
}

#[test]
fn strangers_and_lost_packets_are_outlasted() {
    // Another client's offer, then silence, then ours.
    let mut c = client(vec![
        Some(answer(2, 9, [9; 6])),
        None,
        Some(answer(2, 9, MAC)),
        Some(answer(5, 9, MAC)),
    ]);
    assert!(c.obtain().unwrap().is_some());
    assert_eq!(c.wire.sent.len(), 4);
}

#[test]
fn a_nak_or_silence_binds_nothing() {
    let mut c = client(vec![Some(answer(2, 9, MAC)), Some(answer(6, 9, MAC))]);
    assert_eq!(c.obtain().unwrap(), None);
    let mut c = client(vec![]);
    assert_eq!(c.obtain().unwrap(), None);
    assert_eq!(c.wire.sent.len(), TRIES as usize);
}

#[test]
fn renewing_is_unicast_and_rebinding_broadcast() {
    let mut c = client(vec![Some(answer(2, 9, MAC)), Some(answer(5, 9, MAC))]);
    let b = c.obtain().unwrap().unwrap();
    let mut c = client(vec![Some(answer(5, 9, MAC))]);
    assert!(matches!(c.renew(&b, false).unwrap(), Renewal::Ack(_)));
    assert_eq!(c.wire.sent[0].1, Some(Ipv4Addr::new(10, 0, 2, 2)));
    assert_eq!(&c.wire.sent[0].0[12..16], &[10, 0, 2, 15], "ciaddr");
    let mut c = client(vec![Some(answer(6, 9, MAC))]);
    assert!(matches!(c.renew(&b, true).unwrap(), Renewal::Nak));
    assert_eq!(c.wire.sent[0].1, None);
}
