//! Collector roles from OIDC groups: who may read every session (auditor),
//! decide approvals (approver), and administer (admin, which includes both).
//! The same groups claim that scopes policy rules decides roles, so one
//! place (the identity provider) says who is who.

use std::collections::BTreeSet;

use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Auditor,
    Approver,
    Admin,
}

/// Which groups grant which role (`[identity.roles]` in the collector's
/// configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGroups {
    #[serde(default)]
    pub auditor: Vec<String>,
    #[serde(default)]
    pub approver: Vec<String>,
    #[serde(default)]
    pub admin: Vec<String>,
}

/// The roles a member of `groups` holds. Admin implies auditor and approver.
pub fn roles_for(map: &RoleGroups, groups: &[String]) -> BTreeSet<Role> {
    let member = |list: &[String]| list.iter().any(|g| groups.contains(g));
    let mut roles = BTreeSet::new();
    if member(&map.admin) {
        roles.extend([Role::Admin, Role::Auditor, Role::Approver]);
    }
    if member(&map.auditor) {
        roles.insert(Role::Auditor);
    }
    if member(&map.approver) {
        roles.insert(Role::Approver);
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_grant_roles_and_admin_implies_the_others() {
        let map = RoleGroups { auditor: vec!["audit".into()], approver: vec!["leads".into()], admin: vec!["root-ops".into()] };
        assert_eq!(roles_for(&map, &["audit".into()]), BTreeSet::from([Role::Auditor]));
        assert_eq!(roles_for(&map, &["leads".into(), "dev".into()]), BTreeSet::from([Role::Approver]));
        assert_eq!(roles_for(&map, &["root-ops".into()]), BTreeSet::from([Role::Admin, Role::Auditor, Role::Approver]));
        assert!(roles_for(&map, &["dev".into()]).is_empty());
    }
}
