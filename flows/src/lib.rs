//! loket-flows: per-channel orchestration from arrival to a routed work item and a case (voice,
//! email, web forms, Facebook) and the automation rules. Empty until the channel issues.
