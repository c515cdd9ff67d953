//! Address classes for the SSRF guard (pure): which special-purpose range an IP address
//! is in, from the IANA IPv4 and IPv6 Special-Purpose Address Registries, and, for IPv6
//! forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo), the class of the
//! address they carry. Everything not listed here is an ordinary, globally reachable
//! address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of a restricted address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// This host: 127.0.0.0/8, ::1.
    Loopback,
    /// Private networks: 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 (deprecated
    /// site-local), 64:ff9b:1::/48 (local-use NAT64).
    Private,
    /// Carrier-grade NAT, shared address space: 100.64.0.0/10.
    Shared,
    /// Link-local: 169.254/16, fe80::/10.
    LinkLocal,
    /// "This network" and the unspecified address: 0.0.0.0/8, ::.
    Unspecified,
    /// Documentation: 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// Benchmarking: 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// Multicast and broadcast: 224.0.0.0/4, 255.255.255.255, ff00::/8.
    Multicast,
    /// Reserved, protocol-internal or deprecated ranges that are not globally reachable:
    /// 192.0.0.0/24, 192.88.99.0/24 (6to4 relay), 240.0.0.0/4, ::/96 (IPv4-compatible),
    /// 100::/64 (discard), 100:0:0:1::/64 (dummy), 2001:10::/28 (ORCHID), 5f00::/16 (SRv6).
    Reserved,
}

impl Class {
    /// The class's name as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Class::Loopback => "loopback",
            Class::Private => "private",
            Class::Shared => "shared",
            Class::LinkLocal => "link-local",
            Class::Unspecified => "unspecified",
            Class::Documentation => "documentation",
            Class::Benchmarking => "benchmarking",
            Class::Multicast => "broadcast/multicast",
            Class::Reserved => "reserved",
        }
    }
}

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`: the IPv4 address itself, as the socket API writes it.
    Mapped,
    /// NAT64, `64:ff9b::/96` (and the last 32 bits of `64:ff9b:1::/48`).
    Nat64,
    /// 6to4, `2002::/16`: bits 16–47.
    SixToFour,
    /// Teredo, `2001::/32`: the server (bits 32–63) and the client (last 32 bits, inverted).
    Teredo,
}

impl Embedding {
    /// The form's name as messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Embedding::Mapped => "IPv4-mapped",
            Embedding::Nat64 => "NAT64",
            Embedding::SixToFour => "6to4",
            Embedding::Teredo => "Teredo",
        }
    }
}

/// What is restricted about an address: its own class, or that of the IPv4 address it
/// carries (and how it carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restricted {
    /// The class.
    pub class: Class,
    /// Set when the class is that of an embedded IPv4 address.
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl std::fmt::Display for Restricted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.embedded {
            None => f.write_str(self.class.name()),
            Some((Embedding::Mapped, _)) => f.write_str(self.class.name()),
            Some((how, v4)) => write!(f, "{} {v4} in a {} address", self.class.name(), how.name()),
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// IPv4 special-purpose ranges that are not globally reachable, most specific first.
const V4: &[([u8; 4], u32, Class)] = &[
    ([255, 255, 255, 255], 32, Class::Multicast),
    ([0, 0, 0, 0], 8, Class::Unspecified),
    ([10, 0, 0, 0], 8, Class::Private),
    ([100, 64, 0, 0], 10, Class::Shared),
    ([127, 0, 0, 0], 8, Class::Loopback),
    ([169, 254, 0, 0], 16, Class::LinkLocal),
    ([172, 16, 0, 0], 12, Class::Private),
    ([192, 0, 0, 0], 24, Class::Reserved),
    ([192, 0, 2, 0], 24, Class::Documentation),
    ([192, 88, 99, 0], 24, Class::Reserved),
    ([192, 168, 0, 0], 16, Class::Private),
    ([198, 18, 0, 0], 15, Class::Benchmarking),
    ([198, 51, 100, 0], 24, Class::Documentation),
    ([203, 0, 113, 0], 24, Class::Documentation),
    ([224, 0, 0, 0], 4, Class::Multicast),
    ([240, 0, 0, 0], 4, Class::Reserved),
];

/// IPv6 special-purpose ranges that are not globally reachable and carry no IPv4
/// address, most specific first.
const V6: &[([u16; 8], u32, Class)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, Class::Loopback),
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, Class::Unspecified),
    ([0x0064, 0xff9b, 0x0001, 0, 0, 0, 0, 0], 48, Class::Private),
    ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, Class::Reserved),
    ([0x0100, 0, 0, 1, 0, 0, 0, 0], 64, Class::Reserved),
    ([0x2001, 0x0002, 0, 0, 0, 0, 0, 0], 48, Class::Benchmarking),
    ([0x2001, 0x0010, 0, 0, 0, 0, 0, 0], 28, Class::Reserved),
    ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, Class::Documentation),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Class::Documentation),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Class::Reserved),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Class::Private),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Class::LinkLocal),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Class::Private),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Class::Multicast),
    // Last: IPv4-compatible addresses (deprecated, RFC 4291), after :: and ::1.
    ([0, 0, 0, 0, 0, 0, 0, 0], 96, Class::Reserved),
];

/// The class of an IPv4 address, if it is restricted.
pub fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    V4.iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, c)| *c)
}

/// The IPv4 addresses an IPv6 address carries, with how.
pub fn embedded(ip: Ipv6Addr) -> Vec<(Embedding, Ipv4Addr)> {
    let o = ip.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return vec![(Embedding::Mapped, v4)];
    }
    if in_v6(ip, [0x0064, 0xff9b, 0, 0, 0, 0, 0, 0], 96) || in_v6(ip, [0x0064, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
    {
        return vec![(Embedding::Nat64, last)];
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return vec![(Embedding::SixToFour, Ipv4Addr::new(o[2], o[3], o[4], o[5]))];
    }
    if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 32) {
        let server = Ipv4Addr::new(o[4], o[5], o[6], o[7]);
        let client = Ipv4Addr::from(!u32::from(last));
        return vec![(Embedding::Teredo, server), (Embedding::Teredo, client)];
    }
    Vec::new()
}

/// What is restricted about `ip`, or `None` for an ordinary, globally reachable address.
/// An IPv6 address that carries a restricted IPv4 address is restricted as that address
/// is; its own range is checked first.
pub fn classify(ip: IpAddr) -> Option<Restricted> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(|class| Restricted {
            class,
            embedded: None,
        }),
        IpAddr::V6(v6) => {
            for (how, v4) in embedded(v6) {
                if let Some(class) = classify_v4(v4) {
                    return Some(Restricted {
                        class,
                        embedded: Some((how, v4)),
                    });
                }
            }
            if v6.to_ipv4_mapped().is_some() {
                return None; // a mapped ordinary IPv4 address is that address
            }
            V6.iter()
                .find(|(net, bits, _)| in_v6(v6, *net, *bits))
                .map(|(_, _, class)| Restricted {
                    class: *class,
                    embedded: None,
                })
        }
    }
}

/// Percent-encode a URL path segment or query value: every byte but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - _ . ~`) becomes `%XX`.
pub fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(ip: &str) -> Option<Class> {
        classify(ip.parse().unwrap()).map(|r| r.class)
    }

    #[test]
    fn every_ipv4_special_purpose_range_at_its_edges() {
        // (first address, last address, class) of each range of the table, and the
        // ordinary addresses just outside where there are any.
        let table = [
            ("0.0.0.0", "0.255.255.255", Class::Unspecified),
            ("10.0.0.0", "10.255.255.255", Class::Private),
            ("100.64.0.0", "100.127.255.255", Class::Shared),
            ("127.0.0.0", "127.255.255.255", Class::Loopback),
            ("169.254.0.0", "169.254.255.255", Class::LinkLocal),
            ("172.16.0.0", "172.31.255.255", Class::Private),
            ("192.0.0.0", "192.0.0.255", Class::Reserved),
            ("192.0.2.0", "192.0.2.255", Class::Documentation),
            ("192.88.99.0", "192.88.99.255", Class::Reserved),
            ("192.168.0.0", "192.168.255.255", Class::Private),
            ("198.18.0.0", "198.19.255.255", Class::Benchmarking),
            ("198.51.100.0", "198.51.100.255", Class::Documentation),
            ("203.0.113.0", "203.0.113.255", Class::Documentation),
            ("224.0.0.0", "239.255.255.255", Class::Multicast),
            ("240.0.0.0", "255.255.255.254", Class::Reserved),
            ("255.255.255.255", "255.255.255.255", Class::Multicast),
        ];
        for (first, last, class) in table {
            assert_eq!(class_of(first), Some(class), "{first}");
            assert_eq!(class_of(last), Some(class), "{last}");
        }
        for ordinary in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.31.196.1", // AS112, globally reachable
            "192.52.193.1", // AMT, globally reachable
            "192.88.98.255",
            "192.167.255.255",
            "192.169.0.0",
            "192.175.48.1", // AS112 direct delegation, globally reachable
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "223.255.255.255",
            "93.184.216.34",
        ] {
            assert_eq!(class_of(ordinary), None, "{ordinary}");
        }
    }

    #[test]
    fn every_ipv6_special_purpose_range() {
        let table = [
            ("::1", Class::Loopback),
            ("::", Class::Unspecified),
            ("::5", Class::Reserved),               // IPv4-compatible ::0.0.0.5
            ("::8.8.8.8", Class::Reserved),         // IPv4-compatible, deprecated
            ("64:ff9b:1::808:808", Class::Private), // local-use NAT64, public v4 inside
            ("100::1", Class::Reserved),            // discard-only
            ("100::ffff:ffff:ffff:ffff", Class::Reserved),
            ("100:0:0:1::1", Class::Reserved), // dummy prefix
            ("2001:2::1", Class::Benchmarking),
            ("2001:2:0:ffff::1", Class::Benchmarking),
            ("2001:10::1", Class::Reserved), // ORCHID (deprecated)
            ("2001:1f:ffff::1", Class::Reserved),
            ("2001:db8::1", Class::Documentation),
            ("2001:db8:ffff::1", Class::Documentation),
            ("3fff::1", Class::Documentation),
            ("3fff:fff::1", Class::Documentation),
            ("5f00::1", Class::Reserved), // SRv6 SIDs
            ("fc00::1", Class::Private),
            ("fdff:ffff::1", Class::Private),
            ("fe80::1", Class::LinkLocal),
            ("febf::1", Class::LinkLocal),
            ("fec0::1", Class::Private), // site-local (deprecated)
            ("ff02::1", Class::Multicast),
        ];
        for (ip, class) in table {
            assert_eq!(class_of(ip), Some(class), "{ip}");
        }
        for ordinary in [
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2001:3::1",     // AMT
            "2001:4:112::1", // AS112
            "2001:20::1",    // ORCHIDv2
            "101::1",
            "3ffe::1",
            "4000::1",
            "5f01::1",
            "fbff::1",
            "64:ff9a::1",
            "64:ff9b::808:808", // NAT64 of 8.8.8.8
            "2002:808:808::1",  // 6to4 of 8.8.8.8
        ] {
            assert_eq!(class_of(ordinary), None, "{ordinary}");
        }
    }

    #[test]
    fn embedded_ipv4_addresses_are_classified_by_what_they_embed() {
        let cases = [
            (
                "::ffff:127.0.0.1",
                Class::Loopback,
                Embedding::Mapped,
                "127.0.0.1",
            ),
            ("::ffff:10.1.2.3", Class::Private, Embedding::Mapped, "10.1.2.3"),
            ("64:ff9b::7f00:1", Class::Loopback, Embedding::Nat64, "127.0.0.1"),
            (
                "64:ff9b::a9fe:a9fe",
                Class::LinkLocal,
                Embedding::Nat64,
                "169.254.169.254",
            ),
            (
                "64:ff9b::c0a8:101",
                Class::Private,
                Embedding::Nat64,
                "192.168.1.1",
            ),
            ("64:ff9b:1::a00:1", Class::Private, Embedding::Nat64, "10.0.0.1"),
            (
                "64:ff9b:1:ffff::7f00:1",
                Class::Loopback,
                Embedding::Nat64,
                "127.0.0.1",
            ),
            (
                "2002:7f00:1::1",
                Class::Loopback,
                Embedding::SixToFour,
                "127.0.0.1",
            ),
            (
                "2002:a9fe:a9fe::",
                Class::LinkLocal,
                Embedding::SixToFour,
                "169.254.169.254",
            ),
            (
                "2002:c612:1::1",
                Class::Benchmarking,
                Embedding::SixToFour,
                "198.18.0.1",
            ),
            // Teredo: the server, then the client (inverted in the last 32 bits).
            ("2001:0:a00:1::", Class::Private, Embedding::Teredo, "10.0.0.1"),
            (
                "2001:0:808:808::80ff:fffe",
                Class::Loopback,
                Embedding::Teredo,
                "127.0.0.1",
            ),
        ];
        for (ip, class, how, v4) in cases {
            let r = classify(ip.parse().unwrap()).unwrap_or_else(|| panic!("{ip} is restricted"));
            assert_eq!(r.class, class, "{ip}");
            assert_eq!(r.embedded, Some((how, v4.parse().unwrap())), "{ip}");
        }
        // A Teredo address of public server and client is an ordinary address.
        assert_eq!(class_of("2001:0:808:808::f7f7:f7f7"), None);
        let r = classify("64:ff9b::7f00:1".parse().unwrap()).unwrap();
        assert_eq!(r.to_string(), "loopback 127.0.0.1 in a NAT64 address");
        let r = classify("::ffff:127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(r.to_string(), "loopback");
    }
}
