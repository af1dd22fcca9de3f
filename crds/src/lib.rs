//! Custom resource types of cutover.
//!
//! A placeholder for now: the `FlinkBlueGreenDeployment` resource and the
//! controller that drives cutovers through the coordinator's control API
//! land here next. Nothing in the coordinator or the client depends on it.
