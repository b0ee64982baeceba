"""deploy/ and docker-compose.yml, checked with the real promtool and amtool (Debian's packages).

No Docker engine runs here, so the compose file is checked for what the stack relies on: the
services, the workers' broker, Prometheus scraping every worker, and the mounted files.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.grafana.dashboard import render
from streams.cli import build_parser
from streams.config import load_settings
from streams.metrics.catalog import CATALOG
from tests.test_processor_and_collector import NOW, Harness, call, stage

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "leadpulse.rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "leadpulse.json"
EXPOSED = {name for spec in CATALOG for name in spec.exposed_names}
METRIC_NAME = re.compile(r"\bleadpulse_[a-z_]+\b")


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: python3 dev.py test installs it (Debian's package)"
    return path


def run(*command: str, stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def recorded_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [variable["query"] for variable in dashboard["templating"]["list"] if variable["type"] == "query"]
    return queries


def test_prometheus_config_and_rules_are_valid() -> None:
    output = run(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert "SUCCESS" in output and "leadpulse.rules.yml" in output


def test_alert_rules_behave_as_specified() -> None:
    run(tool("promtool"), "test", "rules", str(RULES.with_name("leadpulse.rules.test.yml")))


# SPEC §3's ratios, each with the recording rule that divides the summed numerator and denominator.
CATALOG_RATIOS = {
    "lead to SQL conversion": "team:leadpulse_lead_to_sql_conversion:ratio",
    "lost-opportunity ratio": "team:leadpulse_lost_opportunity:ratio",
    "revenue growth": "team:leadpulse_revenue_growth:ratio",
    "connect rate": "team:leadpulse_connect_rate:ratio",
    "average handle time": "team:leadpulse_average_handle_time_seconds:ratio",
    "personalization ratio": "team:leadpulse_personalization:ratio",
    "bounce rate": "team:leadpulse_bounce_rate:ratio",
    "activity vs targets": "rep:leadpulse_activity_target_attainment:ratio",
    "win rate": "team:leadpulse_win_rate:ratio",
    "average deal size": "team:leadpulse_average_deal_size:ratio",
    "proposal success": "team:leadpulse_proposal_success:ratio",
    "quota attainment": "rep:leadpulse_quota_attainment:ratio",
    "pipeline coverage": "rep:leadpulse_pipeline_coverage:ratio",
    "revenue per active rep": "team:leadpulse_revenue_per_active_rep:ratio",
}


def test_every_ratio_of_the_catalog_has_a_recording_rule() -> None:
    missing = {item: rule for item, rule in CATALOG_RATIOS.items() if rule not in recorded_names()}
    assert not missing, missing
    readme = (ROOT / "README.md").read_text()
    assert all(rule in readme for rule in CATALOG_RATIOS.values()), "README: a recording rule is not described"


def test_every_catalog_metric_has_a_readme_row() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [spec.name for spec in CATALOG if f"| `{spec.name}" not in readme]
    assert not missing, f"README rows missing for {missing}"


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_is_labelled_has_a_runbook_and_is_tested_firing_quiet_and_resolved() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    tests = yaml.safe_load(RULES.with_name("leadpulse.rules.test.yml").read_text())["tests"]
    evaluations: dict[str, list[tuple[int, bool]]] = {}
    for test in tests:
        for case in test.get("alert_rule_test", []):
            minutes = int(case["eval_time"].removesuffix("m"))
            evaluations.setdefault(case["alertname"], []).append((minutes, bool(case["exp_alerts"])))
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket") and rule["labels"]["category"] in ("business", "engine")
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{name.lower()}", name
        assert f"\n## {name}\n" in runbook, f"docs/runbook.md has no section for {name}"
        seen = sorted(evaluations.get(name, []))
        firing = [minute for minute, fires in seen if fires]
        assert firing, f"{name}: no test where it fires"
        assert any(not fires and minute < firing[0] for minute, fires in seen), f"{name}: no quiet test before"
        assert any(not fires and minute > firing[-1] for minute, fires in seen), f"{name}: never resolves"


def test_alertmanager_config_is_valid() -> None:
    run(tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ("alertname=LeadWaitingPastSLA category=business severity=page team=emea", "floor-emea"),
        ("alertname=SLABreachesPilingUp category=business severity=page team=americas", "floor-americas"),
        ("alertname=RepIdleInWorkingHours category=business severity=ticket team=apac rep=kei", "floor-apac"),
        ("alertname=LeadWaitingPastSLA category=business severity=page team=nordics", "sales-managers"),
        ("alertname=LeadPulseLagging category=engine severity=page instance=worker-1:6066", "leadpulse-operators"),
        ("alertname=LeadPulseDown category=engine severity=page", "leadpulse-operators"),
    ],
)
def test_alertmanager_routes_by_team(labels: str, receiver: str) -> None:
    config = str(DEPLOY / "alertmanager" / "alertmanager.yml")
    output = run(tool("amtool"), "config", "routes", "test", f"--config.file={config}", *labels.split())
    assert output.splitlines()[0].strip() == receiver


def test_rules_and_dashboard_name_only_catalog_metrics() -> None:
    names = set(METRIC_NAME.findall(RULES.read_text()))
    for query in dashboard_queries():
        names |= set(METRIC_NAME.findall(query))
    names -= {name.split(":")[1] for name in recorded_names()}  # level:metric:operations
    assert names, "no metric names found"
    assert names <= EXPOSED, f"not in the catalog: {sorted(names - EXPOSED)}"


def test_the_board_is_what_its_definition_writes() -> None:
    """deploy/grafana/dashboard.py defines the board; the JSON Grafana provisions is its output."""
    assert DASHBOARD.read_text() == render(), "run .venv/bin/python deploy/grafana/dashboard.py"
    board = json.loads(DASHBOARD.read_text())
    assert [variable["name"] for variable in board["templating"]["list"]] == ["team", "rep"]
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == [
        "Sales floor: leads waiting, response, activity",
        "Pipeline and revenue",
        "Quarter: will we make it?",
        "Engine",
    ]


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses each panel query (as a recording rule; Grafana variables filled in)."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": query.replace("$team", ".*").replace("$rep", ".*")}
        for i, query in enumerate(dashboard_queries())
        if not query.startswith("label_values")
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run(tool("promtool"), "check", "rules", str(path))


def test_the_exposition_passes_promtool_lint() -> None:
    harness = Harness()
    harness.deals_in(
        harness.message("crm.deal-stages", 0, "a", stage("a", "ann", NOW - 600, "new", "s1", source="referral")),
        harness.message("crm.calls", 0, "a", call("a", "ann", NOW - 500, "c1")),
        harness.message("crm.deal-stages", 0, "b", stage("b", "bob", NOW - 300, "won", "s2", amount=10)),
        harness.message("crm.calls", 0, "a", b"not json"),
    )
    exposition = harness.collector.exposition().decode()  # what /metrics serves
    assert "leadpulse_first_response_seconds_bucket" in exposition
    output = run(tool("promtool"), "check", "metrics", stdin=exposition)
    assert "problem" not in output.lower(), output


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_whole_stack(compose: dict) -> None:
    services = compose["services"]
    workers = sorted(name for name in services if name.startswith("worker-"))
    assert len(workers) >= 2
    assert {"kafka", "simulator", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    for name in [*workers, "simulator"]:
        assert services[name]["environment"]["LEADPULSE_BROKER"] == "kafka:9092"
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {
        t for job in scrape if job["job_name"] == "leadpulse" for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {f"{services[name]['hostname']}:6066" for name in workers}


def test_docker_compose_accepts_the_file_and_resolves_each_worker_s_settings() -> None:
    """``docker-compose config`` (Debian's docker-compose, no engine needed) validates the file and
    resolves its anchors: every worker keeps the shared settings and adds its own URL."""
    command = [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    resolved = yaml.safe_load(result.stdout)
    workers = {name: service for name, service in resolved["services"].items() if name.startswith("worker-")}
    for name, service in workers.items():
        environment = service["environment"]
        assert environment["LEADPULSE_BROKER"] == "kafka:9092" and environment["LEADPULSE_PARTITIONS"] == "8", name
        assert environment["LEADPULSE_WEB_URL"] == f"http://{name}:6066"


def test_compose_workers_announce_urls_the_others_reach(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker's settings, as compose gives them (the image sets LEADPULSE_WEB_HOST=0.0.0.0),
    load, and announce the worker's own compose hostname: how the others reach its API."""
    for name, service in compose["services"].items():
        if not name.startswith("worker-"):
            continue
        for key, value in {**service["environment"], "LEADPULSE_WEB_HOST": "0.0.0.0"}.items():
            monkeypatch.setenv(key, str(value))
        assert load_settings().advertised_url() == f"http://{service['hostname']}:6066"


def on_host(service: dict, container_path: str) -> Path:
    """Where a path inside a service's container comes from, through its bind mounts."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if container_path.startswith(target.rstrip("/") + "/") or container_path == target:
            return ROOT / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the repository")


def flag(command: list[str], name: str) -> str:
    (value,) = [part.split("=", 1)[1] for part in command if part.startswith(f"--{name}=")]
    return value


def test_compose_services_use_what_the_code_and_the_tools_read(compose: dict) -> None:
    services = compose["services"]
    # Prometheus reads deploy/prometheus/prometheus.yml, its rules beside it, and alerts Alertmanager.
    prometheus = services["prometheus"]
    config_path = on_host(prometheus, flag(prometheus["command"], "config.file"))
    assert config_path == DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    assert all((config_path.parent / rule).exists() for rule in config["rule_files"])
    (targets,) = [c["targets"] for a in config["alerting"]["alertmanagers"] for c in a["static_configs"]]
    assert targets == [f"alertmanager:{services['alertmanager']['ports'][0].split(':')[-1]}"]
    # Alertmanager reads deploy/alertmanager/alertmanager.yml.
    alertmanager = services["alertmanager"]
    assert (
        on_host(alertmanager, flag(alertmanager["command"], "config.file"))
        == DEPLOY / "alertmanager" / "alertmanager.yml"
    )
    # Grafana: the datasource is the prometheus service; the provider's folder holds the board.
    grafana = services["grafana"]
    provisioning = on_host(grafana, "/etc/grafana/provisioning")
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == f"http://prometheus:{services['prometheus']['ports'][0].split(':')[-1]}"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "leadpulse.yml").read_text())["providers"]
    assert on_host(grafana, provider["options"]["path"]) / "leadpulse.json" == DASHBOARD
    assert on_host(grafana, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]) == DASHBOARD
    # LeadPulse services run commands the CLI accepts; workers serve on the port Prometheus scrapes.
    for name, service in services.items():
        if service.get("image") == "leadpulse:local" or "build" in service:
            command = service.get("command", ["leadpulse", "worker"])
            assert command[0] == "leadpulse", name
            build_parser().parse_args(command[1:])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "LEADPULSE_WEB_HOST=0.0.0.0" in dockerfile and "EXPOSE 6066" in dockerfile


def test_compose_mounts_files_that_exist(compose: dict) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
    assert (ROOT / "Dockerfile").exists()
