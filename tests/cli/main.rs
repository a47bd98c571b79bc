//! The one integration-test binary: the real smq against real brokers on 127.0.0.1.

mod bench;
mod bridge;
mod broker;
mod broker_auth;
mod broker_config;
mod certs;
mod failover;
mod generated;
mod http_push;
mod options_file;
mod publish;
mod publish_limits;
mod rabbitmq;
mod readme;
mod record_replay;
mod rough_edges;
mod rr;
mod scale_out;
mod subscribe;
mod subscribe_format;
mod support;
mod support_selftest;
mod tls_errors;
