//! Forwarded-port hostnames: `[prefix---]port[s]--agent--workspace--user` in
//! the first label of a host under the wildcard (`*.apps.example.com` or
//! `*-apps.example.com`).
//!
//! Parsing borrows from the host, which callers lowercase once
//! (`normalize_host`), so matching is case-insensitive without further copies.

use std::borrow::Cow;

/// The configured wildcard host, kept as its lowercased suffix after the `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    suffix: String,
}

impl Wildcard {
    /// Accepts exactly one `*`, first, followed by `.` or `-` and a host name.
    pub fn parse(raw: &str) -> Result<Wildcard, String> {
        let Some(suffix) = raw.strip_prefix('*') else {
            return Err(format!(
                "{raw:?} must start with \"*\", e.g. \"*.apps.example.com\""
            ));
        };
        if suffix.contains('*') {
            return Err(format!("{raw:?} must contain exactly one \"*\""));
        }
        let domain = suffix
            .strip_prefix('.')
            .or_else(|| suffix.strip_prefix('-'))
            .ok_or_else(|| format!("{raw:?}: the \"*\" must be followed by \".\" or \"-\""))?;
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if domain.is_empty() || !labels_ok {
            return Err(format!("{raw:?} is not a valid wildcard host name"));
        }
        let sep = &suffix[..1];
        Ok(Wildcard {
            suffix: format!("{sep}{}", domain.to_ascii_lowercase()),
        })
    }

    /// For a normalized host under the wildcard, the part the `*` stands for.
    pub fn subdomain<'h>(&self, host: &'h str) -> Option<&'h str> {
        let sub = host.strip_suffix(self.suffix.as_str())?;
        (!sub.is_empty()).then_some(sub)
    }

    /// The host name of the wildcard's base, e.g. `apps.example.com`.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }
}

/// Lowercases a Host header value and drops a `:port` and a trailing dot.
/// `None` when the value is not a plausible ASCII host name.
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    let host = if raw.starts_with('[') {
        // An IPv6 literal: never a forwarded port, but a valid API host.
        let end = raw.find(']')?;
        &raw[..=end]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let bracketed = host.starts_with('[');
    let plausible = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_')
                || (bracketed && matches!(b, b'[' | b']' | b':'))
        });
    if !plausible {
        return None;
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

/// One forwarded port, as named by a hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppHost<'a> {
    pub prefix: Option<&'a str>,
    pub port: u16,
    /// The `s` suffix: the app speaks HTTPS.
    pub https: bool,
    pub agent: &'a str,
    pub workspace: &'a str,
    pub user: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("Could not parse subdomain application URL")]
    Unparseable,
    #[error("Port must be between 9 and 65535")]
    PortTooLow,
}

/// Lowest port portshare forwards to, as Coder does.
pub const MIN_PORT: u16 = 9;

/// One part of an app hostname (or a config name that must fit in one):
/// `[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*`.
pub fn is_valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !part.starts_with('-')
        && !part.ends_with('-')
        && !part.contains("--")
}

fn parse_port(part: &str) -> Result<(u16, bool), HostError> {
    let (digits, https) = match part.strip_suffix('s') {
        Some(digits) => (digits, true),
        None => (part, false),
    };
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::Unparseable);
    }
    let port: u16 = digits.parse().map_err(|_| HostError::Unparseable)?;
    if port < MIN_PORT {
        return Err(HostError::PortTooLow);
    }
    Ok((port, https))
}

/// Parses the subdomain of a host under the wildcard (already lowercased).
pub fn parse_subdomain(sub: &str) -> Result<AppHost<'_>, HostError> {
    // The subdomain must be (the start of) one DNS label.
    if sub.contains('.') || sub.len() > 63 {
        return Err(HostError::Unparseable);
    }
    let (prefix, rest) = match sub.rfind("---") {
        Some(at) => (Some(&sub[..at]), &sub[at + 3..]),
        None => (None, sub),
    };
    let mut parts = rest.split("--");
    let (Some(port), Some(agent), Some(workspace), Some(user), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(HostError::Unparseable);
    };
    if ![agent, workspace, user].into_iter().all(is_valid_part) {
        return Err(HostError::Unparseable);
    }
    let (port, https) = parse_port(port)?;
    Ok(AppHost {
        prefix,
        port,
        https,
        agent,
        workspace,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// port, https, agent, workspace, user; `None` when outside the wildcard.
    type Parsed = Option<Result<(u16, bool, String, String, String), HostError>>;

    fn dot() -> Wildcard {
        Wildcard::parse("*.apps.example.com").unwrap()
    }

    fn parse_host(wildcard: &Wildcard, raw: &str) -> Parsed {
        let host = normalize_host(raw)?;
        let sub = wildcard.subdomain(&host)?;
        Some(parse_subdomain(sub).map(|h| {
            (
                h.port,
                h.https,
                h.agent.to_string(),
                h.workspace.to_string(),
                h.user.to_string(),
            )
        }))
    }

    fn ok(port: u16, https: bool, agent: &str, ws: &str, user: &str) -> Parsed {
        Some(Ok((port, https, agent.into(), ws.into(), user.into())))
    }

    #[test]
    fn plain_and_https_ports() {
        let w = dot();
        assert_eq!(
            parse_host(&w, "8080--main--dev--alice.apps.example.com"),
            ok(8080, false, "main", "dev", "alice")
        );
        assert_eq!(
            parse_host(&w, "8443s--main--dev--alice.apps.example.com"),
            ok(8443, true, "main", "dev", "alice")
        );
        assert_eq!(
            parse_host(&w, "9090ss--main--dev--alice.apps.example.com"),
            Some(Err(HostError::Unparseable))
        );
    }

    #[test]
    fn case_port_and_trailing_dot_do_not_matter() {
        let w = dot();
        let expected = ok(8080, false, "main", "dev", "alice");
        assert_eq!(
            parse_host(&w, "8080--MAIN--Dev--ALICE.Apps.Example.COM"),
            expected
        );
        assert_eq!(
            parse_host(&w, "8080--main--dev--alice.apps.example.com:443"),
            expected
        );
        assert_eq!(
            parse_host(&w, "8080--main--dev--alice.apps.example.com."),
            expected
        );
        assert_eq!(
            parse_host(&w, "8080--main--dev--alice.apps.example.com.:8080"),
            expected
        );
    }

    #[test]
    fn hyphens_inside_parts_and_prefixes() {
        let w = dot();
        assert_eq!(
            parse_host(&w, "8080--my-agent--my-ws--a-b.apps.example.com"),
            ok(8080, false, "my-agent", "my-ws", "a-b")
        );
        let host = normalize_host("vscode---3000--main--dev--alice.apps.example.com").unwrap();
        let parsed = parse_subdomain(w.subdomain(&host).unwrap()).unwrap();
        assert_eq!(parsed.prefix, Some("vscode"));
        assert_eq!(parsed.port, 3000);
    }

    #[test]
    fn malformed_subdomains_are_unparseable() {
        let w = dot();
        for host in [
            "8080--main--dev.apps.example.com",
            "8080--main--dev--alice--extra.apps.example.com",
            "main--dev--alice--bob.apps.example.com",
            "8080--main---dev--alice.apps.example.com",
            "8080--main--dev--alice-.apps.example.com",
            "8080----dev--alice.apps.example.com",
            "99999--main--dev--alice.apps.example.com",
            "123456--main--dev--alice.apps.example.com",
            "x.8080--main--dev--alice.apps.example.com",
            "8080--ma_in--dev--alice.apps.example.com",
        ] {
            assert_eq!(
                parse_host(&w, host),
                Some(Err(HostError::Unparseable)),
                "{host}"
            );
        }
        let long = format!("8080--main--dev--{}.apps.example.com", "a".repeat(60));
        assert_eq!(parse_host(&w, &long), Some(Err(HostError::Unparseable)));
    }

    #[test]
    fn low_ports_are_refused() {
        let w = dot();
        assert_eq!(
            parse_host(&w, "8--main--dev--alice.apps.example.com"),
            Some(Err(HostError::PortTooLow))
        );
        assert_eq!(
            parse_host(&w, "0--main--dev--alice.apps.example.com"),
            Some(Err(HostError::PortTooLow))
        );
        assert_eq!(
            parse_host(&w, "9--main--dev--alice.apps.example.com"),
            ok(9, false, "main", "dev", "alice")
        );
    }

    #[test]
    fn hosts_outside_the_wildcard_are_not_apps() {
        let w = dot();
        assert_eq!(parse_host(&w, "apps.example.com"), None);
        assert_eq!(parse_host(&w, "coder.example.com"), None);
        assert_eq!(parse_host(&w, "127.0.0.1:8080"), None);
        assert_eq!(parse_host(&w, "[::1]:8080"), None);
        assert_eq!(
            parse_host(&w, "8080--main--dev--alice.apps.example.com.evil.net"),
            None
        );
        assert_eq!(normalize_host("user@host"), None);
        assert_eq!(normalize_host("host:80:80"), None);
        assert_eq!(normalize_host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("h\u{e9}st"), None);
    }

    #[test]
    fn dash_wildcard() {
        let w = Wildcard::parse("*-apps.example.com").unwrap();
        assert_eq!(
            parse_host(&w, "8080--main--dev--alice-apps.example.com"),
            ok(8080, false, "main", "dev", "alice")
        );
        assert_eq!(parse_host(&w, "apps.example.com"), None);
    }

    fn part() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]{1,4}(-[a-zA-Z0-9]{1,4}){0,2}"
    }

    proptest! {
        #[test]
        fn host_built_from_valid_parts_parses_back(
            port in MIN_PORT..=u16::MAX,
            https in any::<bool>(),
            agent in part(), workspace in part(), user in part(),
            with_port in any::<bool>(),
        ) {
            let w = dot();
            let host = format!(
                "{port}{}--{agent}--{workspace}--{user}.apps.example.com{}",
                if https { "s" } else { "" },
                if with_port { ":8443" } else { "" },
            );
            prop_assert_eq!(
                parse_host(&w, &host),
                ok(port, https, &agent.to_ascii_lowercase(), &workspace.to_ascii_lowercase(), &user.to_ascii_lowercase())
            );
        }

        #[test]
        fn arbitrary_hosts_never_panic(raw in "\\PC{0,80}") {
            let w = dot();
            let _ = parse_host(&w, &raw);
            if let Some(host) = normalize_host(&raw) {
                let _ = parse_subdomain(&host);
            }
        }
    }
}
