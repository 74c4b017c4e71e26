//! The article's `ab-header-hash` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/ab-header-hash*`, judged as in the demo (`mesh_examples::scenarios::ab_header_hash`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_header_hash_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("ab-header-hash").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
