use super::*;

fn message(header: &str, pairs: &[&str]) -> Vec<u8> {
    let mut out = header.as_bytes().to_vec();
    for p in pairs {
        out.push(0);
        out.extend_from_slice(p.as_bytes());
    }
    out.push(0);
    out
}

const LOOP_ADD: &[&str] = &[
    "ACTION=add",
    "DEVPATH=/devices/virtual/block/loop7",
    "SUBSYSTEM=block",
    "MAJOR=7",
    "MINOR=7",
    "DEVNAME=loop7",
    "DEVTYPE=disk",
    "SEQNUM=4242",
];

#[test]
fn a_kernel_message_gives_its_device() {
    let e = parse_uevent(&message("add@/devices/virtual/block/loop7", LOOP_ADD)).expect("parsed");
    assert_eq!(e.action, UeventAction::Add);
    assert_eq!(e.devpath, "/devices/virtual/block/loop7");
    assert_eq!(e.subsystem, "block");
    assert_eq!(e.devname.as_deref(), Some("loop7"));
    assert_eq!(e.numbers, Some((7, 7)));
    let tty = message(
        "remove@/devices/pci0000:00/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0",
        &[
            "ACTION=remove",
            "DEVPATH=/devices/pci0000:00/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0",
            "SUBSYSTEM=tty",
            "MAJOR=188",
            "MINOR=0",
            "DEVNAME=ttyUSB0",
        ],
    );
    let e = parse_uevent(&tty).expect("parsed");
    assert_eq!(
        (e.action, e.numbers),
        (UeventAction::Remove, Some((188, 0)))
    );
    let bind = message("bind@/devices/x", &["ACTION=bind", "DEVPATH=/devices/x"]);
    let e = parse_uevent(&bind).expect("parsed");
    assert_eq!(
        (e.action, e.numbers, e.devname),
        (UeventAction::Other, None, None)
    );
}

#[test]
fn nasty_messages_are_dropped_without_a_panic() {
    let header = "add@/devices/virtual/block/loop7";
    let with = |replace: &str, by: &str| -> Vec<u8> {
        let pairs: Vec<&str> = LOOP_ADD
            .iter()
            .map(|p| if p.starts_with(replace) { by } else { *p })
            .collect();
        message(header, &pairs)
    };
    let long_name = format!("DEVNAME={}", "a".repeat(300));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("only NULs", vec![0; 64]),
        ("udev's own", message("libudev", &["ACTION=add"])),
        ("no header @", message("add", LOOP_ADD)),
        ("header disagrees", message("add@/devices/other", LOOP_ADD)),
        (
            "action disagrees",
            message("remove@/devices/virtual/block/loop7", LOOP_ADD),
        ),
        ("no action", with("ACTION=", "X=1")),
        (
            "traversing devpath",
            message(
                "add@/devices/../../etc",
                &["ACTION=add", "DEVPATH=/devices/../../etc"],
            ),
        ),
        (
            "relative devpath",
            message("add@devices/x", &["ACTION=add", "DEVPATH=devices/x"]),
        ),
        ("traversing name", with("DEVNAME=", "DEVNAME=../etc/shadow")),
        ("absolute name", with("DEVNAME=", "DEVNAME=/etc/shadow")),
        ("dot name", with("DEVNAME=", "DEVNAME=bus/./x")),
        ("empty component", with("DEVNAME=", "DEVNAME=bus//x")),
        ("newline in name", with("DEVNAME=", "DEVNAME=lo\nop")),
        ("long name", with("DEVNAME=", &long_name)),
        ("negative major", with("MAJOR=", "MAJOR=-7")),
        ("huge major", with("MAJOR=", "MAJOR=4096")),
        (
            "overflowing minor",
            with("MINOR=", "MINOR=99999999999999999999"),
        ),
        ("hex minor", with("MINOR=", "MINOR=0x10")),
        ("empty major", with("MAJOR=", "MAJOR=")),
        ("slash subsystem", with("SUBSYSTEM=", "SUBSYSTEM=../block")),
        ("too long", {
            let mut m = message(header, LOOP_ADD);
            m.resize(MAX_UEVENT_BYTES + 1, b'x');
            m
        }),
        ("not UTF-8", {
            let mut m = message(header, LOOP_ADD);
            m.extend_from_slice(b"X=\xff\xfe\0");
            m
        }),
    ];
    for (why, bytes) in cases {
        assert_eq!(parse_uevent(&bytes), None, "{why} was accepted");
    }
    // Unknown keys, pairs without '=' and a missing major are fine.
    let odd = with("MAJOR=", "NOEQUALS");
    let e = parse_uevent(&odd).expect("parsed");
    assert_eq!(e.numbers, None);
    let mut seed = 7u64;
    for len in 0..2000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut bytes = message(header, LOOP_ADD);
        let at = (seed >> 33) as usize % bytes.len();
        bytes[at] = (seed >> 13) as u8;
        bytes.truncate(bytes.len().saturating_sub(len % 7));
        let _ = parse_uevent(&bytes);
    }
}

#[test]
fn the_socket_opens_and_reads_without_blocking() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let s = UeventSocket::open().expect("open");
    // Whatever the host sends meanwhile, the read returns at once.
    let _ = s.read_pending(4);
}

#[test]
fn a_message_from_a_process_is_dropped() {
    use nix::sys::socket::{MsgFlags, getsockname, sendto};
    use std::os::fd::AsRawFd;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let s = UeventSocket::open().expect("open");
    let me: NetlinkAddr = getsockname(s.fd().as_raw_fd()).expect("getsockname");
    assert_ne!(me.pid(), 0, "the kernel picked a port");
    let forger = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkKObjectUEvent,
    )
    .expect("socket");
    let forged = message("add@/devices/virtual/block/loop7", LOOP_ADD);
    assert!(
        parse_uevent(&forged).is_some(),
        "well formed, only its sender is wrong"
    );
    let to = NetlinkAddr::new(me.pid(), 0);
    sendto(forger.as_raw_fd(), &forged, &to, MsgFlags::empty()).expect("sendto");
    // Whatever the kernel sends meanwhile may come through; not the forgery.
    let batch = s.read_pending(64);
    assert!(
        batch
            .events
            .iter()
            .all(|e| e.devpath != "/devices/virtual/block/loop7" || e.numbers != Some((7, 7))),
        "a forged uevent was accepted: {:?}",
        batch.events
    );
}
