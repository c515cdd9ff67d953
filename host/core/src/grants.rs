//! What a plugin may reach (capabilities), and which network addresses the operator
//! allows at all. Deny by default. Pure: no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Capabilities granted to one plugin. Everything not listed is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Hosts the plugin may call over `wasi:http`, e.g. `api.example.com`,
    /// `*.example.com`, `https://hooks.slack.com`, `127.0.0.1:8080`, `localhost:*`.
    /// Default: none.
    pub hosts: Vec<HostPattern>,
    /// May use its key-value namespace. Default false.
    pub kv: bool,
    /// May emit events. Default false.
    pub emit_events: bool,
    /// Names of the secrets it may read. Default: none.
    #[schemars(inner(regex(pattern = r"^[A-Za-z0-9_.-]{1,128}$")))]
    pub secrets: Vec<String>,
    /// May send mail through the daemon's SMTP relay (`sundial:plugin/mail`). Default
    /// false.
    pub mail: bool,
}

impl Grants {
    /// Check what parsing cannot: every secret name follows the secret name rule.
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        for (i, name) in self.secrets.iter().enumerate() {
            crate::secret::validate_name(name).map_err(|e| format!("secrets[{i}]: {e}"))?;
        }
        Ok(())
    }

    /// The first host pattern allowing `scheme://host:port`, if any.
    pub fn allowed_host(&self, scheme: Scheme, host: &str, port: u16) -> Option<&HostPattern> {
        self.hosts.iter().find(|p| p.matches(scheme, host, port))
    }
}

/// URL scheme of an outbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The default port of the scheme.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Which ports a [`HostPattern`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRule {
    /// Only the default port of the scheme (80 or 443): the pattern named no port.
    Default,
    /// Exactly this port.
    Exact(u16),
    /// Any port (`:*`).
    Any,
}

/// One granted outbound host: `[scheme://]host[:port]`.
///
/// - `host` is a DNS name, an IPv4 address, a bracketed IPv6 address, or
///   `*.suffix` (any subdomain of `suffix`, not `suffix` itself).
/// - Without a scheme both `http` and `https` are allowed.
/// - Without a port only the scheme's default port is allowed; `:*` allows any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    scheme: Option<Scheme>,
    host: String,
    wildcard: bool,
    port: PortRule,
}

impl HostPattern {
    /// Parse a pattern, explaining what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<HostPattern, crate::Invalid> {
        let bad = |why: &str| Err(crate::Invalid(format!("host grant {text:?}: {why}")));
        let t = text.trim();
        let (scheme, rest) = if let Some(r) = t.strip_prefix("https://") {
            (Some(Scheme::Https), r)
        } else if let Some(r) = t.strip_prefix("http://") {
            (Some(Scheme::Http), r)
        } else if t.contains("://") {
            return bad("only http:// and https:// schemes are allowed");
        } else {
            (None, t)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return bad("give a host (and optional port), not a URL path or credentials");
        }
        // Split host and port, minding bracketed IPv6.
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else {
                return bad("unclosed '[' in IPv6 address");
            };
            let after = &inner[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return bad("unexpected text after IPv6 address"),
            };
            if inner[..end].parse::<std::net::Ipv6Addr>().is_err() {
                return bad("not a valid IPv6 address");
            }
            (inner[..end].to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortRule::Exact(n),
                _ => return bad("port must be 1-65535 or *"),
            },
        };
        let host = host.to_ascii_lowercase();
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_string()),
            None => (false, host),
        };
        if name.is_empty() {
            return bad("empty host");
        }
        if name == "*" || name.contains('*') {
            return bad("a wildcard is only allowed as a leading `*.` label");
        }
        let is_ip = name.parse::<IpAddr>().is_ok();
        if wildcard && is_ip {
            return bad("a wildcard cannot apply to an IP address");
        }
        if !is_ip
            && !name.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        {
            return bad("not a valid DNS name");
        }
        Ok(HostPattern {
            text: t.to_string(),
            scheme,
            host: name,
            wildcard,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this pattern.
    /// `host` is compared case-insensitively; IPv6 hosts are given without brackets.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortRule::Default => port == scheme.default_port(),
            PortRule::Exact(p) => port == p,
            PortRule::Any => true,
        };
        if !port_ok {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else if let (Ok(a), Ok(b)) = (host.parse::<IpAddr>(), self.host.parse::<IpAddr>()) {
            a == b
        } else {
            host == self.host
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// In the API a host pattern is a string; the daemon checks its form (400 naming it).
impl schemars::JsonSchema for HostPattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HostPattern".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "[scheme://]host[:port|:*] or *.suffix"
        })
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HostPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which address ranges the operator lets plugins reach at all, whatever they were
/// granted. Checked after DNS resolution, on the address actually connected to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkPolicy {
    /// Allow loopback addresses (127.0.0.0/8, ::1). Default false.
    pub allow_loopback: bool,
    /// Allow private, shared and link-local ranges (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, 169.254/16, fc00::/7, fec0::/10, fe80::/10, 64:ff9b:1::/48). Default
    /// false. Documentation, benchmarking, reserved and multicast ranges are never
    /// reachable (see `runtime::address`).
    pub allow_private: bool,
    /// Ranges allowed although their class is refused (`10.20.0.0/16`, `fd00:1::/64`):
    /// a narrower door than `allow_private`. Default none.
    pub allow_ranges: Vec<ipnet::IpNet>,
}

impl NetworkPolicy {
    /// Why `ip` may not be contacted (its class, see [`super::address`]), or `None` when
    /// it may. An IPv4-mapped address is the IPv4 address it maps; an address of another
    /// form that carries a restricted IPv4 address (NAT64, 6to4, Teredo) is refused
    /// whatever `allow_loopback` and `allow_private` say (only `allow_ranges` opens it).
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let restricted = super::address::classify(ip)?;
        if self.allow_ranges.iter().any(|r| r.contains(&ip)) {
            return None;
        }
        use super::address::Class;
        let allowed = restricted.embedded.is_none()
            && match restricted.class {
                Class::Loopback => self.allow_loopback,
                Class::Private | Class::LinkLocal | Class::Shared => self.allow_private,
                _ => false,
            };
        (!allowed).then(|| {
            // Name the setting that would open it, so the operator need not guess.
            let hint = match (restricted.class, restricted.embedded) {
                (Class::Loopback, None) => "allowed by allow_loopback or an allow_ranges entry".to_string(),
                (Class::Private | Class::LinkLocal | Class::Shared, None) => {
                    "allowed by allow_private or an allow_ranges entry".to_string()
                }
                (_, Some((_, v4))) => format!("allowed only by an allow_ranges entry naming {v4}"),
                _ => "no setting allows it".to_string(),
            };
            format!("{restricted}: {hint}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn plain_host_allows_default_ports_only() {
        let pat = p("api.example.com");
        assert!(pat.matches(Scheme::Https, "api.example.com", 443));
        assert!(pat.matches(Scheme::Http, "API.example.com", 80));
        assert!(!pat.matches(Scheme::Https, "api.example.com", 8443));
        assert!(!pat.matches(Scheme::Https, "evil.com", 443));
        assert!(!pat.matches(Scheme::Https, "api.example.com.evil.com", 443));
    }

    #[test]
    fn scheme_port_and_wildcards() {
        assert!(!p("https://x.io").matches(Scheme::Http, "x.io", 80));
        assert!(p("x.io:8080").matches(Scheme::Http, "x.io", 8080));
        assert!(p("localhost:*").matches(Scheme::Http, "localhost", 31337));
        let w = p("*.example.com");
        assert!(w.matches(Scheme::Https, "a.b.example.com", 443));
        assert!(!w.matches(Scheme::Https, "example.com", 443));
        assert!(!w.matches(Scheme::Https, "badexample.com", 443));
        assert!(p("[::1]:*").matches(Scheme::Http, "::1", 9));
        assert!(p("127.0.0.1:8080").matches(Scheme::Http, "127.0.0.1", 8080));
    }

    #[test]
    fn bad_patterns_are_explained() {
        for bad in [
            "",
            "ftp://x.io",
            "x.io/path",
            "*",
            "a.*.com",
            "x.io:0",
            "x.io:http",
            "*.1.2.3.4",
            "u@x.io",
            "[::1",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(HostPattern::parse("x.io:70000").unwrap_err().contains("port"));
    }

    #[test]
    fn restricted_addresses_are_refused_unless_allowed() {
        let deny = NetworkPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                deny.refusal(ip.parse().unwrap()).is_some(),
                "{ip} should be refused"
            );
        }
        assert_eq!(deny.refusal("93.184.216.34".parse().unwrap()), None);
        assert_eq!(deny.refusal("2606:4700::1111".parse().unwrap()), None);
        let lo = NetworkPolicy {
            allow_loopback: true,
            ..NetworkPolicy::default()
        };
        assert_eq!(lo.refusal("127.0.0.1".parse().unwrap()), None);
        assert_eq!(
            lo.refusal("10.0.0.1".parse().unwrap()).as_deref(),
            Some("private: allowed by allow_private or an allow_ranges entry")
        );
        let all = NetworkPolicy {
            allow_loopback: true,
            allow_private: true,
            ..NetworkPolicy::default()
        };
        assert_eq!(all.refusal("169.254.169.254".parse().unwrap()), None);
        assert_eq!(
            all.refusal("0.0.0.0".parse().unwrap()).as_deref(),
            Some("unspecified: no setting allows it")
        );
        assert_eq!(
            NetworkPolicy::default()
                .refusal("127.0.0.1".parse().unwrap())
                .as_deref(),
            Some("loopback: allowed by allow_loopback or an allow_ranges entry")
        );
        // A restricted IPv4 address inside NAT64, 6to4 or Teredo is never opened by the
        // class switches; allow_ranges opens exactly what it names.
        for ip in [
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "64:ff9b::a00:1",
            "2001:0:a00:1::",
        ] {
            assert!(all.refusal(ip.parse().unwrap()).is_some(), "{ip}");
        }
        assert_eq!(
            deny.refusal("64:ff9b::a9fe:a9fe".parse().unwrap()).as_deref(),
            Some(
                "link-local 169.254.169.254 in a NAT64 address: allowed only by an allow_ranges entry naming 169.254.169.254"
            )
        );
        for ip in ["198.18.0.1", "192.0.2.1", "2001:db8::1", "240.0.0.1", "::8.8.8.8"] {
            assert!(all.refusal(ip.parse().unwrap()).is_some(), "{ip}");
        }
        let narrow = NetworkPolicy {
            allow_ranges: vec![
                "64:ff9b::a00:0/120".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap(),
            ],
            ..NetworkPolicy::default()
        };
        assert_eq!(narrow.refusal("64:ff9b::a00:5".parse().unwrap()), None);
        assert_eq!(narrow.refusal("::ffff:10.20.1.1".parse().unwrap()), None);
        assert!(narrow.refusal("10.21.0.1".parse().unwrap()).is_some());
        // Public addresses in every form pass.
        for ip in ["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(deny.refusal(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
