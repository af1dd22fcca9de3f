//! `cutover bench`: load generators that measure the coordinator from
//! outside, the way users see it.

pub mod etcd_fanout;
pub mod fanout;
pub mod fanout_client;
pub mod stats;
