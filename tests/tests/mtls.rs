//! The chain under STRICT mutual TLS (`examples/scenarios/mtls`), judged as in the demo
//! (`mesh_examples::scenarios_mtls::mtls`): every hop reports `mutual_tls` with both principals.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_runs_under_mutual_tls() {
    mesh_tests::assert_scenario("mtls").await;
}
