//! Every overlay of `deploy/` renders with `kubectl kustomize` and says
//! what it promises: `dev` one coordinator replica and no disruption
//! budget; `ha` three replicas on different nodes, spread over zones, with
//! the budget; `second-cluster` coordinators only (no controller, no
//! ConfigMap access) on the shared etcd over TLS, with flags `cutover serve`
//! has and its certificate files mounted. (`tls` is checked in
//! `deploy_hardening.rs`.)

use cutover_tests::manifests::{
    container, flags_exist, has, named, pod, render, secret_mount, strings,
};

#[test]
fn every_overlay_renders_and_keeps_its_promise() -> anyhow::Result<()> {
    let dev = render("dev")?;
    let coordinator = named(&dev, "Deployment", "cutover");
    assert_eq!(coordinator["spec"]["replicas"].as_u64(), Some(1));
    assert!(!has(&dev, "PodDisruptionBudget", "cutover"));
    assert!(has(&dev, "Deployment", "cutover-controller"));

    let ha = render("ha")?;
    let coordinator = named(&ha, "Deployment", "cutover");
    let labels = &coordinator["spec"]["template"]["metadata"]["labels"];
    assert_eq!(coordinator["spec"]["replicas"].as_u64(), Some(3));
    let apart = &pod(coordinator)["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [0];
    assert_eq!(apart["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(&apart["labelSelector"]["matchLabels"], labels);
    let spread = &pod(coordinator)["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(&spread["labelSelector"]["matchLabels"], labels);
    let budget = named(&ha, "PodDisruptionBudget", "cutover");
    assert_eq!(budget["spec"]["minAvailable"].as_u64(), Some(2));

    let second = render("second-cluster")?;
    for (kind, name) in [
        ("Deployment", "cutover-controller"),
        ("ServiceAccount", "cutover-controller"),
        ("ClusterRole", "cutover-controller"),
        ("ClusterRoleBinding", "cutover-controller"),
        ("Role", "cutover-coordinator"),
        ("RoleBinding", "cutover-coordinator"),
    ] {
        assert!(
            !has(&second, kind, name),
            "{kind} {name} in the second cluster"
        );
    }
    let coordinator = named(&second, "Deployment", "cutover");
    let args = strings(&container(coordinator)["args"]);
    assert_eq!(args.first(), Some(&"serve"));
    flags_exist("serve", &args[1..])?;
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} missing"))
    };
    assert!(flag("store").starts_with("etcd:https://"));
    let mount = secret_mount(coordinator, "cutover-etcd-tls");
    for name in ["etcd-ca-file", "etcd-cert-file", "etcd-key-file"] {
        assert!(flag(name).starts_with(mount), "--{name} under {mount}");
    }
    Ok(())
}
