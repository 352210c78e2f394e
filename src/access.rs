//! The access decision: may this caller open a port shared at this level?
//!
//! Pure and synchronous: no I/O, no allocation, no locks. The request path calls
//! it on every request, so a share change applies to the very next one.

use crate::config::{User, Workspace};
use crate::identity::Caller;
use crate::share::ShareLevel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Reason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No valid session: signing in might help.
    SignInRequired,
    /// Signed in, but the port is not shared with this user.
    NotShared,
}

/// Decides for a port whose share is `level` (`None`: no share, which means
/// `owner`), in `workspace`, whose maximum share level caps the level.
pub fn decide(level: Option<ShareLevel>, caller: &Caller, workspace: &Workspace) -> Decision {
    let level = level
        .unwrap_or(ShareLevel::Owner)
        .capped_at(workspace.max_share_level);
    match caller {
        Caller::Anonymous if level == ShareLevel::Public => Decision::Allow,
        Caller::Anonymous => Decision::Deny(Reason::SignInRequired),
        Caller::User(user) if admits(level, user, workspace) => Decision::Allow,
        Caller::User(_) => Decision::Deny(Reason::NotShared),
    }
}

fn admits(level: ShareLevel, user: &User, workspace: &Workspace) -> bool {
    if user.id == workspace.owner_id || user.site_admin {
        return true;
    }
    match level {
        ShareLevel::Owner => false,
        ShareLevel::Organization => user.is_member_of(&workspace.organization),
        ShareLevel::Authenticated | ShareLevel::Public => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use uuid::Uuid;

    use ShareLevel::{Authenticated, Organization, Owner, Public};

    const OWNER: u128 = 1;

    fn workspace(max: ShareLevel) -> Workspace {
        Workspace {
            id: Uuid::from_u128(100),
            name: "dev".into(),
            owner_id: Uuid::from_u128(OWNER),
            organization: "acme".into(),
            max_share_level: max,
            agents: vec![],
        }
    }

    fn user(id: u128, org: &str, site_admin: bool) -> Caller {
        Caller::User(Arc::new(User {
            id: Uuid::from_u128(id),
            username: format!("user{id}"),
            organizations: vec![org.to_string()],
            site_admin,
        }))
    }

    fn row(caller: &Caller) -> [Decision; 4] {
        let ws = workspace(Public);
        [Owner, Organization, Authenticated, Public].map(|level| decide(Some(level), caller, &ws))
    }

    const ALLOW: Decision = Decision::Allow;
    const SIGN_IN: Decision = Decision::Deny(Reason::SignInRequired);
    const HIDDEN: Decision = Decision::Deny(Reason::NotShared);

    // One test per row of the access table: columns owner, organization,
    // authenticated, public.

    #[test]
    fn anonymous_reaches_only_public() {
        assert_eq!(row(&Caller::Anonymous), [SIGN_IN, SIGN_IN, SIGN_IN, ALLOW]);
    }

    #[test]
    fn owner_reaches_every_level() {
        assert_eq!(row(&user(OWNER, "elsewhere", false)), [ALLOW; 4]);
    }

    #[test]
    fn site_admin_reaches_every_level() {
        assert_eq!(row(&user(2, "elsewhere", true)), [ALLOW; 4]);
    }

    #[test]
    fn organization_member_reaches_organization_and_wider() {
        assert_eq!(row(&user(3, "acme", false)), [HIDDEN, ALLOW, ALLOW, ALLOW]);
    }

    #[test]
    fn other_organization_reaches_authenticated_and_wider() {
        assert_eq!(
            row(&user(4, "globex", false)),
            [HIDDEN, HIDDEN, ALLOW, ALLOW]
        );
    }

    #[test]
    fn no_share_means_owner() {
        let ws = workspace(Public);
        assert_eq!(decide(None, &user(OWNER, "x", false), &ws), ALLOW);
        assert_eq!(decide(None, &user(3, "acme", false), &ws), HIDDEN);
        assert_eq!(decide(None, &Caller::Anonymous, &ws), SIGN_IN);
    }

    #[test]
    fn max_level_caps_the_share() {
        let ws = workspace(Organization);
        assert_eq!(decide(Some(Public), &Caller::Anonymous, &ws), SIGN_IN);
        assert_eq!(decide(Some(Public), &user(4, "globex", false), &ws), HIDDEN);
        assert_eq!(decide(Some(Public), &user(3, "acme", false), &ws), ALLOW);
        let ws = workspace(Owner);
        assert_eq!(
            decide(Some(Authenticated), &user(3, "acme", false), &ws),
            HIDDEN
        );
        assert_eq!(decide(Some(Public), &user(OWNER, "x", false), &ws), ALLOW);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn level() -> impl Strategy<Value = ShareLevel> {
            prop::sample::select(ShareLevel::ALL.to_vec())
        }

        proptest! {
            /// Whatever the share and the cap, an anonymous caller is admitted
            /// exactly when the level in force is public.
            #[test]
            fn anonymous_is_admitted_only_to_public(share in prop::option::of(level()), max in level()) {
                let ws = workspace(max);
                let in_force = share.unwrap_or(Owner).capped_at(max);
                let decision = decide(share, &Caller::Anonymous, &ws);
                prop_assert_eq!(decision == ALLOW, in_force == Public);
                if in_force != Public {
                    prop_assert_eq!(decision, SIGN_IN);
                }
            }

            /// A signed-in stranger (not owner, not admin, not in the
            /// organization) never reaches an owner or organization port.
            #[test]
            fn strangers_never_reach_narrow_levels(share in prop::option::of(level()), max in level(), id in 2u128..1000) {
                let ws = workspace(max);
                let in_force = share.unwrap_or(Owner).capped_at(max);
                let decision = decide(share, &user(id, "globex", false), &ws);
                prop_assert_eq!(decision == ALLOW, in_force >= Authenticated);
            }
        }
    }
}
