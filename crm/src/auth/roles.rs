//! Roles and the permission matrix.
//!
//! The matrix is the only place that says which role may do what; handlers ask for a
//! `Permission`, never for a role, so that a new role is one row here and nothing else.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Agent,
    Supervisor,
    Expert,
    KnowledgeManager,
    Teller,
    Manager,
    Approver,
    Dpo,
}

/// What a handler asks for. Each variant names a capability of the console, present or announced
/// in the roadmap, so that the admin's role page shows the whole security model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Take calls and work items, see the workspace and the screen pop.
    HandleWork,
    /// Read and edit citizens' cases and contacts (every read is audited).
    WorkCases,
    /// Take over line-3 cases escalated to an expert team.
    ResolveEscalations,
    /// Watch queues and agents live, move work, coach calls.
    Supervise,
    /// Work tax and inventory dossiers on companies.
    WorkDossiers,
    /// Approve and sign letters and dossiers.
    Approve,
    /// Write, review and publish knowledge articles.
    ManageKnowledge,
    /// See KPI reports and exports.
    ViewReports,
    /// Read the audit log of access to personal data.
    ViewAudit,
    /// Create users and give roles.
    ManageUsers,
    /// Edit the municipality's configuration: mail templates, canned answers, case types.
    Configure,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Admin,
        Role::Agent,
        Role::Supervisor,
        Role::Expert,
        Role::KnowledgeManager,
        Role::Teller,
        Role::Manager,
        Role::Approver,
        Role::Dpo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Expert => "expert",
            Role::KnowledgeManager => "knowledge_manager",
            Role::Teller => "teller",
            Role::Manager => "manager",
            Role::Approver => "approver",
            Role::Dpo => "dpo",
        }
    }

    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            // The admin configures; reading citizens' data or the audit trail of that reading is
            // deliberately not part of it (separation of duties with the DPO).
            Role::Admin => &[ManageUsers, Configure],
            Role::Agent => &[HandleWork, WorkCases],
            Role::Supervisor => &[HandleWork, WorkCases, Supervise, ViewReports],
            Role::Expert => &[HandleWork, WorkCases, ResolveEscalations],
            Role::KnowledgeManager => &[ManageKnowledge],
            Role::Teller => &[WorkDossiers],
            Role::Manager => &[WorkDossiers, Approve, ViewReports],
            Role::Approver => &[Approve],
            Role::Dpo => &[ViewAudit],
        }
    }

    pub fn grants(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::HandleWork,
        Permission::WorkCases,
        Permission::ResolveEscalations,
        Permission::Supervise,
        Permission::WorkDossiers,
        Permission::Approve,
        Permission::ManageKnowledge,
        Permission::ViewReports,
        Permission::ViewAudit,
        Permission::ManageUsers,
        Permission::Configure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::HandleWork => "handle_work",
            Permission::WorkCases => "work_cases",
            Permission::ResolveEscalations => "resolve_escalations",
            Permission::Supervise => "supervise",
            Permission::WorkDossiers => "work_dossiers",
            Permission::Approve => "approve",
            Permission::ManageKnowledge => "manage_knowledge",
            Permission::ViewReports => "view_reports",
            Permission::ViewAudit => "view_audit",
            Permission::ManageUsers => "manage_users",
            Permission::Configure => "configure",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == name).ok_or_else(|| UnknownRole(name.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn every_permission_belongs_to_some_role() {
        for permission in Permission::ALL {
            assert!(Role::ALL.iter().any(|role| role.grants(permission)), "{permission:?} is granted to nobody");
        }
    }

    #[test]
    fn admin_cannot_read_the_audit_trail_nor_cases() {
        assert!(!Role::Admin.grants(Permission::ViewAudit));
        assert!(!Role::Admin.grants(Permission::WorkCases));
        assert!(Role::Dpo.grants(Permission::ViewAudit));
    }
}
