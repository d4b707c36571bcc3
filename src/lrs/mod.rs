//! The LRS client: Azure Resource Manager calls that drive Log Replay Service on a managed instance.
//! It exposes no call that deletes a database: stopping a migration is a person's decision.
