use super::*;

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

/// A server's answer with these options (already encoded).
fn reply(kind: u8, options: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; FIXED_LEN];
    p[0] = OP_REPLY;
    p[1] = HTYPE_ETHERNET;
    p[2] = 6;
    p[4..8].copy_from_slice(&7u32.to_be_bytes());
    p[16..20].copy_from_slice(&[10, 0, 2, 15]);
    p[28..34].copy_from_slice(&MAC);
    p.extend_from_slice(&COOKIE);
    p.extend_from_slice(&[OPT_MSG_TYPE, 1, kind]);
    p.extend_from_slice(options);
    p
}

fn slirp_ack() -> Vec<u8> {
    let mut o = vec![
        OPT_SERVER_ID,
        4,
        10,
        0,
        2,
        2,
        OPT_SUBNET_MASK,
        4,
        255,
        255,
        255,
        0,
    ];
    o.extend_from_slice(&[OPT_ROUTER, 4, 10, 0, 2, 2, OPT_DNS, 4, 10, 0, 2, 3]);
    o.extend_from_slice(&[OPT_LEASE, 4, 0, 1, 0x51, 0x80, OPT_END]);
    reply(5, &o)
}

#[test]
fn a_request_round_trips_its_fields() {
    let r = Request {
        kind: MessageType::Request,
        xid: 7,
        mac: MAC,
        secs: 3,
        ciaddr: None,
        requested: Some(Ipv4Addr::new(10, 0, 2, 15)),
        server: Some(Ipv4Addr::new(10, 0, 2, 2)),
        hostname: Some("edge-1".into()),
    };
    let p = r.encode();
    assert_eq!(p.len(), 300);
    assert_eq!(&p[FIXED_LEN..FIXED_LEN + 4], &COOKIE);
    assert_eq!(u16::from_be_bytes([p[10], p[11]]), FLAG_BROADCAST);
    let opts = &p[FIXED_LEN + 4..];
    assert_eq!(&opts[..3], &[OPT_MSG_TYPE, 1, 3]);
    assert_eq!(&opts[3..9], &[OPT_REQUESTED_IP, 4, 10, 0, 2, 15]);
}

#[test]
fn an_ack_gives_address_router_dns_and_lease() {
    let r = parse_reply(&slirp_ack(), 7, &MAC).expect("parses");
    assert_eq!(r.kind, MessageType::Ack);
    assert_eq!(r.yiaddr, Ipv4Addr::new(10, 0, 2, 15));
    assert_eq!(r.prefix, Some(24));
    assert_eq!(r.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
    assert_eq!(r.dns, [Ipv4Addr::new(10, 0, 2, 3)]);
    let lease = r.lease.unwrap();
    assert_eq!(lease.total, Duration::from_secs(86400));
    assert_eq!(lease.renew, Duration::from_secs(43200));
    assert_eq!(lease.rebind, Duration::from_secs(75600));
    assert_eq!(parse_reply(&slirp_ack(), 8, &MAC), None, "another xid");
    assert_eq!(parse_reply(&slirp_ack(), 7, &[0; 6]), None, "another link");
}

#[test]
fn truncated_packets_are_refused_or_keep_what_came_before() {
    let full = slirp_ack();
    for n in 0..FIXED_LEN + 4 {
        assert_eq!(parse_reply(&full[..n], 7, &MAC), None, "{n} bytes");
    }
    // Cut inside the options: the message type came first, so it parses
    // with what fit.
    for n in FIXED_LEN + 7..full.len() {
        let _ = parse_reply(&full[..n], 7, &MAC);
    }
    let r = parse_reply(&full[..FIXED_LEN + 4 + 3 + 6 + 3], 7, &MAC).unwrap();
    assert_eq!(r.server, Some(Ipv4Addr::new(10, 0, 2, 2)));
    assert_eq!(r.prefix, None, "the mask was cut");
}

#[test]
fn option_lengths_past_the_end_and_zero_lengths_are_harmless() {
    let past = reply(2, &[OPT_DNS, 200, 1, 1, 1, 1]);
    assert!(parse_reply(&past, 7, &MAC).unwrap().dns.is_empty());
    let zero = reply(
        2,
        &[
            OPT_DNS,
            0,
            OPT_ROUTER,
            0,
            OPT_LEASE,
            0,
            OPT_SUBNET_MASK,
            0,
            OPT_END,
        ],
    );
    let r = parse_reply(&zero, 7, &MAC).unwrap();
    assert!(r.dns.is_empty() && r.router.is_none() && r.lease.is_none() && r.prefix.is_none());
    let odd = reply(2, &[OPT_DNS, 5, 1, 1, 1, 1, 9, OPT_NTP, 3, 1, 2, 3]);
    let r = parse_reply(&odd, 7, &MAC).unwrap();
    assert_eq!(r.dns, [Ipv4Addr::new(1, 1, 1, 1)]);
    assert!(r.ntp.is_empty());
    let no_type = {
        let mut p = reply(2, &[]);
        p.truncate(FIXED_LEN + 4);
        p
    };
    assert_eq!(parse_reply(&no_type, 7, &MAC), None);
    assert_eq!(parse_reply(&reply(99, &[]), 7, &MAC), None, "unknown type");
}

#[test]
fn huge_tiny_and_disordered_lease_times_are_clamped() {
    let lease = |opts: &[u8]| {
        parse_reply(&reply(5, opts), 7, &MAC)
            .unwrap()
            .lease
            .unwrap()
    };
    let infinite = lease(&[OPT_LEASE, 4, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(infinite.total, MAX_LEASE);
    assert!(infinite.renew <= infinite.rebind && infinite.rebind <= infinite.total);
    let zero = lease(&[OPT_LEASE, 4, 0, 0, 0, 0]);
    assert_eq!(zero.total, MIN_LEASE);
    assert!(!zero.renew.is_zero());
    // T1 after T2, T2 after the lease: the defaults instead.
    let wrong = lease(&[
        OPT_LEASE, 4, 0, 0, 0, 100, OPT_T1, 4, 0, 0, 0, 90, OPT_T2, 4, 0, 0, 1, 0,
    ]);
    assert_eq!(wrong.rebind, Duration::from_millis(87500));
    assert_eq!(wrong.renew, Duration::from_secs(50));
}

#[test]
fn lists_are_capped_and_bad_values_dropped() {
    let mut o = vec![OPT_DNS, 40];
    for i in 0..10u8 {
        let ip = if i == 0 { [0; 4] } else { [10, 0, 0, i] };
        o.extend_from_slice(&ip);
    }
    o.extend_from_slice(&[OPT_SUBNET_MASK, 4, 255, 0, 255, 0]);
    o.extend_from_slice(&[OPT_DOMAIN, 7, b'b', b'a', b'd', b' ', b'x', b'y', 0]);
    let r = parse_reply(&reply(2, &o), 7, &MAC).unwrap();
    assert_eq!(r.dns.len(), MAX_SERVERS);
    assert_eq!(r.dns[0], Ipv4Addr::new(10, 0, 0, 1), "0.0.0.0 dropped");
    assert_eq!(r.prefix, None, "a mask with holes");
    assert_eq!(r.domain, None);
    let ok = reply(
        2,
        &[OPT_DOMAIN, 8, b'l', b'a', b'n', b'.', b'x', b'y', b'z', 0],
    );
    assert_eq!(
        parse_reply(&ok, 7, &MAC).unwrap().domain.as_deref(),
        Some("lan.xyz")
    );
}

#[test]
fn classful_guesses() {
    assert_eq!(classful_prefix(Ipv4Addr::new(10, 0, 2, 15)), 8);
    assert_eq!(classful_prefix(Ipv4Addr::new(172, 16, 0, 1)), 16);
    assert_eq!(classful_prefix(Ipv4Addr::new(192, 168, 1, 5)), 24);
}
