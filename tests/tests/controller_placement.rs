//! A colour placed in another cluster (`spec.placement`): the controller,
//! in its home cluster, reaches the other cluster's API server through the
//! kubeconfig in a Secret, creates that colour's child there (no owner
//! reference across clusters, that cluster's coordinator in its Flink
//! configuration, the other colour's savepoint as its start), moves the
//! pipeline there and back with cutovers, and deletes what it made in both
//! clusters. Two fake API servers, each with the simulated Flink operator.

use cutover_core::{Colour, Phase, PipelineName};
use cutover_tests::controller_world::{
    CONTROLLER_USER, ControllerWorld, granted_by_deploy, starts_from_savepoint_of, state,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_runs_in_another_cluster_and_takes_over_there() -> anyhow::Result<()> {
    let world = ControllerWorld::start().await?;
    let cluster_b = world.other_cluster("cluster-b-kubeconfig").await?;
    let coordinator_b = world.coordinator.endpoint();
    world
        .create_placed(
            "orders",
            "flink:2.0-v1",
            json!({}),
            json!({"green": {
                "cluster": "cluster-b",
                "kubeconfigSecret": {"name": "cluster-b-kubeconfig"},
                "coordinator": coordinator_b,
            }}),
        )
        .await?;
    world
        .wait_for("orders", "ACTIVE_BLUE", |r| state(r) == "ACTIVE_BLUE")
        .await?;
    assert!(world.child("orders-blue").is_some(), "BLUE runs at home");
    assert!(cluster_b.child("orders-blue").is_none());

    // A new template: GREEN starts in cluster B from BLUE's savepoint and
    // takes over; BLUE, at home, stops and goes.
    world
        .roll_to("orders", "flink:2.0-v2", "ACTIVE_GREEN")
        .await?;
    world
        .wait_for_child("orders-blue", "deleted", Value::is_null)
        .await?;
    assert!(
        world.child("orders-green").is_none(),
        "GREEN is not at home"
    );
    let green = cluster_b.child("orders-green").expect("GREEN in cluster B");
    assert!(
        green["metadata"].get("ownerReferences").is_none(),
        "no owner reference across clusters: {green}"
    );
    assert_eq!(
        green["metadata"]["annotations"]["cutover.dev/owner"],
        "default/orders"
    );
    assert_eq!(
        green["spec"]["flinkConfiguration"]["cutover.coordinator"],
        coordinator_b.as_str()
    );
    assert!(
        starts_from_savepoint_of(&green, "orders-blue"),
        "GREEN starts from BLUE's savepoint: {green}"
    );
    let mut control = world.coordinator.control().await?;
    let pipeline = PipelineName::new("default-orders")?;
    let status = control.get(&pipeline).await?;
    assert_eq!(
        (status.active, status.phase),
        (Colour::Green, Some(Phase::Completed))
    );

    // And back home: BLUE starts at home from GREEN's savepoint in B.
    world
        .roll_to("orders", "flink:2.0-v3", "ACTIVE_BLUE")
        .await?;
    let blue = world.child("orders-blue").expect("BLUE at home");
    assert!(
        starts_from_savepoint_of(&blue, "orders-green"),
        "BLUE starts from GREEN's savepoint: {blue}"
    );
    let status = control.get(&pipeline).await?;
    assert_eq!(
        (status.active, status.phase),
        (Colour::Blue, Some(Phase::Completed))
    );

    // Deleting the resource deletes what the controller made in both
    // clusters.
    world
        .resources
        .delete("orders", &Default::default())
        .await?;
    world.wait_for("orders", "deleted", Value::is_null).await?;
    assert!(world.child("orders-blue").is_none());
    assert!(cluster_b.child("orders-green").is_none());

    // deploy/base/controller.yaml grants what the controller did at home (the
    // Secret's read included); in cluster B it needs what the kubeconfig's
    // user is given there: FlinkDeployments only (its requests carry no
    // test user; the simulated Flink operator's neither).
    let granted = granted_by_deploy()?;
    let used = world.server.permissions_used_by(CONTROLLER_USER);
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(missing.is_empty(), "the ClusterRole lacks {missing:?}");
    assert!(used.contains(&("".into(), "secrets".into(), "get".into())));
    let there: Vec<String> = cluster_b
        .server
        .permissions_used_by("")
        .into_iter()
        .map(|(_, resource, _)| resource)
        .collect();
    assert!(
        there.iter().all(|r| r.starts_with("flinkdeployments")),
        "in cluster B: {there:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_whose_secret_is_missing_is_reported_and_changes_nothing() -> anyhow::Result<()>
{
    let world = ControllerWorld::start().await?;
    world
        .create_placed(
            "orders",
            "flink:2.0-v1",
            json!({}),
            json!({"blue": {
                "cluster": "cluster-c",
                "kubeconfigSecret": {"name": "no-such-secret"},
            }}),
        )
        .await?;
    let failed = world
        .wait_for_error("orders", "Secret default/no-such-secret: no such Secret")
        .await?;
    assert!(world.child("orders-blue").is_none(), "{failed}");
    Ok(())
}
