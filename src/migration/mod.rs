//! The migration state machine: one database's state document plus a new fact (a file seen, an LRS
//! status, a timer tick, an operator command) to a new state and the actions to carry out. Pure.
