//! docker-compose.yml must pass `docker compose config` where Docker Compose is installed;
//! scripts/compose-check.sh says SKIPPED (and passes) where it is not.

#[test]
fn docker_compose_file_is_valid_where_compose_exists() {
    let script = format!("{}/scripts/compose-check.sh", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash").arg(&script).output().expect("run scripts/compose-check.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "docker-compose.yml does not pass `docker compose config`: {text}");
}
