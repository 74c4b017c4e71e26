//! The article's `retries` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/retries*`, judged as in the demo (`mesh_examples::scenarios::retries`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("retries").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
