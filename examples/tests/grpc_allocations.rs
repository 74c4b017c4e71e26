//! The mesh's allocations per gRPC call stay within budget: one gRPC hop in one process
//! (`mesh_examples::grpc::hop`), service2's `Echo/Call` behind every inbound layer calling
//! service3 with tonic over the whole `MeshClient` stack, against the same app bare. Allocation
//! counts do not depend on machine load, so this guards the gRPC path where a timing assertion
//! could not (the HTTP twin is `hop_allocations.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mesh_examples::grpc::hop::GrpcHop;
use mesh_examples::hop::HopMode;

/// Allocations per call the mesh may add to one gRPC hop (inbound and outbound together).
/// Measured when this was set: 28 (this test's count: debug build, fewest of three batches;
/// see docs/grpc.md "Per-call cost"). Raise it only with a reason in the commit.
// 33 when first counted here (issue 16); 29 with the deferred gRPC status carried without a
// shared cell, in one server extension, and handed from the client's telemetry future to its
// body wrapper without an extension; 28 with the inbound gRPC answers layer's future named
// instead of a boxed `async` block.
const MESH_ALLOCATIONS_PER_CALL: f64 = 28.0;

/// The runtime's own allocations, a few per batch on each side (see `hop_allocations.rs`).
const BATCH_NOISE: f64 = 0.05;

fn allocations_per_call(mode: HopMode) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hop = rt.block_on(async { GrpcHop::start(mode) }).unwrap();
    let run = |n: u32| {
        rt.block_on(async {
            for _ in 0..n {
                assert_eq!(hop.request().await.unwrap(), Some(0));
            }
        })
    };
    run(200);
    // The fewest of three batches, as hop_allocations.rs does: a runtime timer or background
    // task that runs during a batch allocates for the time it took, not for the calls.
    const N: u32 = 500;
    (0..3)
        .map(|_| allocation_counter::measure(|| run(N)).count_total as f64 / f64::from(N))
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn the_mesh_adds_at_most_its_allocation_budget_per_grpc_call() {
    let mesh = allocations_per_call(HopMode::Mesh);
    let bare = allocations_per_call(HopMode::Bare);
    eprintln!("gRPC hop: mesh {mesh:.3}, bare {bare:.3} allocations per call");
    assert!(
        bare > 40.0,
        "the bare hop must be measured too (got {bare:.1} allocations per call)"
    );
    assert!(
        mesh - bare <= MESH_ALLOCATIONS_PER_CALL + BATCH_NOISE,
        "the mesh adds {:.3} allocations per gRPC call (mesh {mesh:.3}, bare {bare:.3}); budget {MESH_ALLOCATIONS_PER_CALL}",
        mesh - bare
    );
}
