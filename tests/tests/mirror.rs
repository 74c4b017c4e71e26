//! The article's `mirror` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/mirror*`, judged as in the demo (`mesh_examples::scenarios::mirror`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("mirror").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
