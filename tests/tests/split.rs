//! The article's `split` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/split*`, judged as in the demo (`mesh_examples::scenarios::split`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("split").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
