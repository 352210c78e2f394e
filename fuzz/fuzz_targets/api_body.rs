//! API request bodies: arbitrary bytes never panic the decoders, and an
//! accepted upsert is always within the rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portshare::api::{decode_delete, decode_upsert};
use portshare::config::Config;
use portshare::share::ShareLevel;

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
wildcard_host = "*.apps.localhost"
[[users]]
id = "00000000-0000-4000-8000-000000000001"
username = "alice"
[[workspaces]]
id = "00000000-0000-4000-8000-0000000000a1"
name = "dev"
owner = "alice"
organization = "acme"
max_share_level = "authenticated"
  [[workspaces.agents]]
  name = "main"
  address = "127.0.0.1"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(CONFIG) else { return };
    let Some(workspace) = config.workspaces().next() else { return };
    if let Ok(share) = decode_upsert(data, workspace) {
        assert!(share.port >= 9);
        assert!(share.level != ShareLevel::Owner);
        assert!(share.level <= ShareLevel::Authenticated);
        assert_eq!(share.agent_name, "main");
    }
    let _ = decode_delete(data, workspace.id);
});
