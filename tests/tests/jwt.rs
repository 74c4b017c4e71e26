//! The article's `jwt` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/jwt*`, judged as in the demo (`mesh_examples::scenarios::jwt`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("jwt").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
