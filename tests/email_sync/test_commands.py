"""`onramp sync` / `onramp preview` through the real CLI group, and reading segment meta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from email_sync.specs import SpecError, load_segment_specs
from tests.email_sync.conftest import member


def write_manifest(path: Path) -> Path:
    def node(name, meta):
        return {
            "resource_type": "model",
            "name": name,
            "schema": "segments",
            "alias": name,
            "config": {"meta": {"onramp": meta} if meta else {}},
        }

    nodes = {
        "model.onramp.seg_new_signups": node(
            "seg_new_signups",
            {"email": {"template": "welcome", "kind": "marketing", "priority": 40}},
        ),
        "model.onramp.seg_stage_sandbox": node(
            "seg_stage_sandbox", {"list": "Stage: sandbox", "custom_fields": ["stage"]}
        ),
        "model.onramp.seg_quota_exceeded": node(
            "seg_quota_exceeded",
            {
                "email": {
                    "template": "quota_exceeded",
                    "kind": "transactional",
                    "priority": 90,
                    "bypass_frequency_cap": True,
                }
            },
        ),
        "model.onramp.seg_unsynced": node("seg_unsynced", None),
        "model.onramp.dim_developers": node("dim_developers", {"email": "welcome"}),
    }
    path.write_text(json.dumps({"nodes": nodes}))
    return path


@pytest.fixture
def manifest(tmp_path, monkeypatch) -> Path:
    path = write_manifest(tmp_path / "manifest.json")
    monkeypatch.setattr("email_sync.commands.find_manifest", lambda: path)
    return path


def test_specs_come_from_segment_meta(manifest):
    specs = load_segment_specs(manifest)

    assert [s.name for s in specs] == ["quota_exceeded", "new_signups", "stage_sandbox"]
    quota = specs[0]
    assert quota.email.bypass_frequency_cap and quota.email.kind == "transactional"
    assert specs[2].list_name == "Stage: sandbox" and specs[2].custom_fields == ("stage",)


def test_missing_manifest_is_one_line(tmp_path):
    with pytest.raises(
        SpecError, match=r"^dbt manifest not found at .*: run `onramp build` first$"
    ):
        load_segment_specs(tmp_path / "nope.json")


def test_bad_meta_is_one_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps(
            {
                "nodes": {
                    "x": {
                        "resource_type": "model",
                        "name": "seg_x",
                        "config": {
                            "meta": {"onramp": {"email": {"template": "w", "kind": "spam"}}}
                        },
                    }
                }
            }
        )
    )
    with pytest.raises(SpecError) as exc:
        load_segment_specs(path)
    assert str(exc.value) == "segment x: email.kind: must be marketing or transactional, got 'spam'"


def test_sync_prints_a_table_per_segment(engine, segments, manifest, onramp_home):
    segments.create("new_signups", [member(1), member(2, marketing_opt_in=False)])
    segments.create("stage_sandbox", [member(3, stage="sandbox")], {"stage": "text"})

    result = CliRunner().invoke(
        cli,
        ["sync", "--segment", "new_signups", "--segment", "stage_sandbox", "--as-of", "2026-11-26"],
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "as of 2026-11-26, provider outbox"
    assert lines[1].split() == [
        "segment",
        "members",
        "entered",
        "exited",
        "sent",
        "suppressed",
        "failed",
        "capped",
    ]
    assert lines[3].split() == ["new_signups", "2", "2", "0", "1", "1", "0", "0"]
    assert lines[4].split() == ["stage_sandbox", "1", "1", "0", "0", "0", "0", "0"]
    assert "stage_sandbox: list +1 -0" in result.output
    assert "dev1@example.com" not in result.output


def test_sync_dry_run_says_so_and_unknown_segment_is_one_line(engine, segments, manifest):
    segments.create("new_signups", [member(1)])
    runner = CliRunner()

    dry = runner.invoke(cli, ["sync", "--segment", "new_signups", "--dry-run"])
    unknown = runner.invoke(cli, ["sync", "--segment", "nope"])

    assert dry.exit_code == 0 and "(dry run: nothing written, nothing sent)" in dry.output
    assert unknown.exit_code == 1
    assert unknown.output.strip() == (
        "error: unknown segment 'nope' (segments with sync meta: new_signups, quota_exceeded, "
        "stage_sandbox)"
    )


def test_sync_refused_by_the_breaker_exits_1_with_one_line(engine, segments, manifest, monkeypatch):
    monkeypatch.setenv("ONRAMP_BLAST_RADIUS_MIN_MEMBERS", "2")
    segments.create("stage_sandbox", [member(n, stage="s") for n in range(4)], {"stage": "text"})
    runner = CliRunner()
    assert runner.invoke(cli, ["sync", "--segment", "stage_sandbox"]).exit_code == 0
    segments.replace("stage_sandbox", [])

    refused = runner.invoke(cli, ["sync", "--segment", "stage_sandbox"])
    allowed = runner.invoke(cli, ["sync", "--segment", "stage_sandbox", "--allow-large"])

    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1] == (
        "error: segment stage_sandbox: 4 of 4 members would exit (100% > 50%); refusing to sync, "
        "rerun with --allow-large if this change is expected"
    )
    assert allowed.exit_code == 0


def test_preview_renders_a_member_without_sending(
    engine, segments, manifest, onramp_home, tmp_path
):
    segments.create("new_signups", [member(1, role="product"), member(2), member(3), member(4)])
    page = tmp_path / "welcome.html"

    result = CliRunner().invoke(
        cli, ["preview", "new_signups", "--developer", "dev-0001", "--html", str(page)]
    )

    assert result.exit_code == 0, result.output
    assert result.output.count("=== ") == 1
    assert "=== new_signups step 1/1 (content, day 0) template welcome" in result.output
    assert "Subject: Welcome aboard, Dev: here's where to start" in result.output
    assert "https://example.com/start/product?utm_source=onramp" in result.output
    assert "dev1@example.com" not in result.output
    assert "utm_campaign=new_signups&amp;utm_content=step-1" in page.read_text()


def test_preview_without_members_uses_the_sample_member(engine, segments, manifest):
    segments.create("new_signups", [])
    result = CliRunner().invoke(cli, ["preview", "new_signups"])
    assert result.exit_code == 0, result.output
    assert "for sample member" in result.output and "Hi Ada," in result.output


def test_preview_of_an_unknown_developer_or_step_is_one_line(engine, segments, manifest):
    segments.create("new_signups", [member(1)])
    unknown = CliRunner().invoke(cli, ["preview", "new_signups", "--developer", "nobody"])
    step = CliRunner().invoke(cli, ["preview", "new_signups", "--step", "3"])
    assert unknown.output.strip() == "error: developer nobody is not in segment new_signups"
    assert step.output.strip() == "error: segment new_signups: --step must be from 1 to 1"


def test_preview_of_a_list_only_segment_is_one_line(engine, segments, manifest):
    result = CliRunner().invoke(cli, ["preview", "stage_sandbox"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: segment stage_sandbox has no email (only a list); nothing to preview"
    )
