//! The article's `jwt` scenario end to end: real servers on loopback, the config folder
//! `examples/scenarios/jwt*`, judged as in the demo (`mesh_examples::scenarios::jwt`).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the legacy Policy is translated with forwardOriginalToken false, so service1 cannot forward the token to service2 (also a target): see the report"]
async fn jwt_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("jwt").await;
    println!("{}: {}", outcome.name, outcome.observed);
}
