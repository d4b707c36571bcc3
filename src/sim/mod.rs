//! An ARM-compatible Log Replay Service simulator: reads the real backup files, restores them in LRS
//! order at a set speed, reports restoreDetails in the documented schema and injects faults.
