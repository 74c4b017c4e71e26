//! The demo's gRPC scenario: a tonic client calls `mesh.examples.Echo/Call` at the gateway
//! (h2c with prior knowledge); the chain service1 → service2 → service3 answers over gRPC
//! through the mesh, while service2 v1 fails every other call with UNAVAILABLE and service2's
//! route retries on `unavailable` (`examples/scenarios/grpc`).

use std::sync::Arc;

use super::GrpcUpstream;
use super::echo::{CallReply, CallRequest};
use crate::app::Faults;
use crate::lab::{Lab, LabError, LabOptions};
use crate::scenarios::{Outcome, Progress};

/// Runs the scenario.
pub async fn grpc(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase(
        "grpc: Echo/Call through the gateway, service2 v1 failing half its calls (UNAVAILABLE)",
    );
    let faults = Faults {
        error_rate: 0.5,
        grpc_status: 14,
        ..Faults::default()
    };
    let lab = Lab::start(
        "grpc",
        LabOptions {
            v1_faults: faults,
            ..LabOptions::default()
        },
    )
    .await?;
    let client = GrpcUpstream::plain(lab.gateway.addr);
    let n = 200;
    let mut ok = 0;
    let mut chained = 0;
    let mut first_error = None;
    for i in 0..n {
        let request = tonic::Request::new(CallRequest {
            path: format!("/grpc/{i}"),
        });
        match client.call(request).await {
            Ok(reply) => {
                ok += 1;
                if is_chain(&reply.into_inner()) {
                    chained += 1;
                }
            }
            Err(status) => {
                first_error.get_or_insert_with(|| format!("; first failure: {status}"));
            }
        }
        progress.tick("grpc", i + 1, n);
    }
    lab.stop().await;
    Ok(Outcome {
        name: "grpc",
        expected: "≥ 99% of gRPC calls succeed (retried on UNAVAILABLE), each answered by service1 → service2 → service3 under one trace id".into(),
        observed: format!(
            "{ok}/{n} succeeded, {chained} with the whole chain{}",
            first_error.unwrap_or_default()
        ),
        passed: ok * 100 >= n * 99 && chained == ok,
    })
}

fn is_chain(reply: &CallReply) -> bool {
    let Some(s2) = reply.upstream.as_deref() else {
        return false;
    };
    let Some(s3) = s2.upstream.as_deref() else {
        return false;
    };
    reply.service == "service1"
        && s2.service == "service2"
        && s3.service == "service3"
        && s3.upstream.is_none()
        && s2.trace_id == reply.trace_id
        && s3.trace_id == reply.trace_id
}
