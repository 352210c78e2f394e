//! The hostname parser: never panics, and whatever it accepts is made of valid
//! parts that format back to a host it parses the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portshare::apphost::{MIN_PORT, Wildcard, is_valid_part, normalize_host, parse_subdomain};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(wildcard) = Wildcard::parse("*.apps.example.com") else { return };
    let Some(host) = normalize_host(raw) else { return };
    assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
    let Some(sub) = wildcard.subdomain(&host) else { return };
    let Ok(app) = parse_subdomain(sub) else { return };
    assert!(app.port >= MIN_PORT);
    for part in [app.agent, app.workspace, app.user] {
        assert!(is_valid_part(part), "{part:?} from {raw:?}");
    }
    let again = format!(
        "{}{}--{}--{}--{}",
        app.port,
        if app.https { "s" } else { "" },
        app.agent,
        app.workspace,
        app.user
    );
    let reparsed = parse_subdomain(&again).ok();
    assert_eq!(
        reparsed.map(|r| (r.port, r.https, r.agent, r.workspace, r.user)),
        Some((app.port, app.https, app.agent, app.workspace, app.user))
    );
});
