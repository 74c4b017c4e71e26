//! The article's `routing` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/routing*`, judged as in the demo (`mesh_examples::scenarios::routing`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("routing").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
