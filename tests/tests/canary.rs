//! The article's `canary` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/canary*`, judged as in the demo (`mesh_examples::scenarios::canary`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("canary").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
