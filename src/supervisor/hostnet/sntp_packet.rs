//! SNTP (RFC 4330) messages: the client's request and the check of a
//! server's answer, with the clock offset it implies. The answer is
//! outside input: anything short, unsynchronized, a kiss-o'-death, not
//! an answer to our request, or with absurd delays is refused, and the
//! arithmetic is done in i128 nanoseconds so no field can overflow it
//! (fuzzed: fuzz/fuzz_targets/sntp_packet.rs).

pub const PACKET_LEN: usize = 48;
/// Seconds from NTP's epoch (1900) to Unix's (1970).
const UNIX_OFFSET: i128 = 2_208_988_800;
const ERA_SECS: i128 = 1 << 32;
const NANOS: i128 = 1_000_000_000;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;
const VERSION: u8 = 4;
/// RFC 5905's MAXDISP: a root delay or dispersion past 16 s, or a round
/// trip that long, says nothing useful about the time.
const MAX_DISPERSION_NS: i128 = 16 * NANOS;

/// An NTP timestamp (32.32 fixed point seconds since 1900) for a Unix
/// time in nanoseconds; times outside NTP's era 0 and 1 wrap, as on the
/// wire.
pub fn to_ntp(unix_ns: i128) -> u64 {
    let secs = (unix_ns.div_euclid(NANOS) + UNIX_OFFSET).rem_euclid(ERA_SECS);
    let frac = (unix_ns.rem_euclid(NANOS) << 32) / NANOS;
    ((secs as u64) << 32) | frac as u64
}

/// A Unix time in nanoseconds for an NTP timestamp. RFC 4330 section 3:
/// with the top bit set the time is in 1968-2036 (era 0), without it in
/// 2036-2104 (era 1).
pub fn from_ntp(ts: u64) -> i128 {
    let secs = i128::from(ts >> 32);
    let era = if secs & (1 << 31) != 0 { 0 } else { ERA_SECS };
    let frac = (i128::from(ts & 0xffff_ffff) * NANOS) >> 32;
    (secs + era - UNIX_OFFSET) * NANOS + frac
}

/// A client request carrying `transmit` (which the answer must echo).
pub fn request(transmit: u64) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = (VERSION << 3) | MODE_CLIENT;
    p[40..48].copy_from_slice(&transmit.to_be_bytes());
    p
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// How far the local clock is behind the server's (negative: ahead).
    pub offset_ns: i128,
    /// The round trip, less the server's own time.
    pub delay_ns: i128,
    pub stratum: u8,
    /// The server's own error bound toward its reference.
    pub root_ns: i128,
    /// The server's time when it answered.
    pub server_ns: i128,
}

/// Checks an answer to the request that carried `sent`, sent at local
/// time `t1_ns` and received at `t4_ns`.
pub fn parse_answer(packet: &[u8], sent: u64, t1_ns: i128, t4_ns: i128) -> Result<Answer, String> {
    let p = packet
        .get(..PACKET_LEN)
        .ok_or_else(|| format!("a {}-byte answer", packet.len()))?;
    let (leap, version, mode) = (p[0] >> 6, (p[0] >> 3) & 7, p[0] & 7);
    if mode != MODE_SERVER || !(1..=4).contains(&version) {
        return Err(format!(
            "not a server's answer (mode {mode}, version {version})"
        ));
    }
    let stratum = p[1];
    if stratum == 0 {
        let code: String = p[12..16]
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() {
                    b as char
                } else {
                    '?'
                }
            })
            .collect();
        return Err(format!("the server refused (kiss code {code})"));
    }
    if leap == 3 || stratum >= 16 {
        return Err("the server is not synchronized".into());
    }
    let word = |at: usize| u64::from_be_bytes(p[at..at + 8].try_into().unwrap_or([0; 8]));
    if word(24) != sent {
        return Err("an answer to another request".into());
    }
    let (receive, transmit) = (word(32), word(40));
    if receive == 0 || transmit == 0 {
        return Err("an answer without the server's times".into());
    }
    let short = |at: usize| {
        let v = u32::from_be_bytes(p[at..at + 4].try_into().unwrap_or([0; 4]));
        (i128::from(v) * NANOS) >> 16
    };
    let root_ns = short(4) / 2 + short(8);
    if root_ns > MAX_DISPERSION_NS {
        return Err("the server's own error is too large".into());
    }
    let (t2, t3) = (from_ntp(receive), from_ntp(transmit));
    let delay_ns = ((t4_ns - t1_ns) - (t3 - t2)).max(0);
    if delay_ns > MAX_DISPERSION_NS {
        return Err(format!("a {} s round trip", delay_ns / NANOS));
    }
    Ok(Answer {
        offset_ns: ((t2 - t1_ns) + (t3 - t4_ns)) / 2,
        delay_ns,
        stratum,
        root_ns,
        server_ns: t3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_NS: i128 = 86_400 * NANOS;
    /// 2026-01-01T00:00:00Z.
    const T1: i128 = 1_767_225_600 * NANOS;

    /// A server's answer `ahead_ns` ahead of the client, 10 ms each way.
    fn answer(sent: u64, ahead_ns: i128) -> Vec<u8> {
        let mut p = vec![0u8; PACKET_LEN];
        p[0] = (VERSION << 3) | MODE_SERVER;
        p[1] = 2;
        p[24..32].copy_from_slice(&sent.to_be_bytes());
        let t2 = T1 + 10_000_000 + ahead_ns;
        p[32..40].copy_from_slice(&to_ntp(t2).to_be_bytes());
        p[40..48].copy_from_slice(&to_ntp(t2 + 1_000_000).to_be_bytes());
        p
    }

    #[test]
    fn timestamps_round_trip_across_eras() {
        for t in [0, T1, 2_085_978_496 * NANOS + 5, 4_000_000_000 * NANOS] {
            let back = from_ntp(to_ntp(t));
            assert!((back - t).abs() <= 1, "{t} -> {back}");
        }
    }

    #[test]
    fn an_answer_gives_the_offset_and_delay() {
        let sent = to_ntp(T1);
        assert_eq!(request(sent)[0], 0x23);
        let t4 = T1 + 21_000_000;
        let a = parse_answer(&answer(sent, DAY_NS), sent, T1, t4).unwrap();
        assert!((a.offset_ns - DAY_NS).abs() < 1000, "{}", a.offset_ns);
        assert!((a.delay_ns - 20_000_000).abs() < 1000, "{}", a.delay_ns);
        let behind = parse_answer(&answer(sent, -DAY_NS), sent, T1, t4).unwrap();
        assert!((behind.offset_ns + DAY_NS).abs() < 1000);
    }

    #[test]
    fn nasty_answers_are_refused() {
        let sent = to_ntp(T1);
        let t4 = T1 + 21_000_000;
        let good = answer(sent, 0);
        let check = |p: &[u8]| parse_answer(p, sent, T1, t4);
        for n in 0..PACKET_LEN {
            assert!(check(&good[..n]).is_err(), "{n} bytes");
        }
        let mut longer = good.clone();
        longer.extend_from_slice(&[0xff; 100]);
        assert!(check(&longer).is_ok(), "extension fields are ignored");
        let mut kiss = good.clone();
        kiss[1] = 0;
        kiss[12..16].copy_from_slice(b"RATE");
        assert!(check(&kiss).unwrap_err().contains("RATE"));
        let mut unsync = good.clone();
        unsync[0] |= 3 << 6;
        assert!(check(&unsync).is_err());
        let mut other = good.clone();
        other[24] ^= 1;
        assert!(check(&other).unwrap_err().contains("another request"));
        let mut client = good.clone();
        client[0] = 0x23;
        assert!(check(&client).is_err());
        let mut no_times = good.clone();
        no_times[32..48].fill(0);
        assert!(check(&no_times).is_err());
        let mut far = good.clone();
        far[4..12].fill(0xff);
        assert!(check(&far).is_err(), "huge root delay");
        let slow = parse_answer(&good, sent, T1, T1 + 60 * NANOS);
        assert!(slow.is_err(), "a minute's round trip");
        let mut max = good.clone();
        max[32..48].fill(0xff);
        assert!(check(&max).is_ok_and(|a| a.offset_ns.abs() > DAY_NS));
    }
}
