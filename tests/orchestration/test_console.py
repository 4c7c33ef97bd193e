"""What an operator sees in the terminal: `onramp demo` prints its own progress and results only
(Dagster's and dbt's lines go to $ONRAMP_HOME/logs and the UI), and its last line says where the
emails went for the provider in use."""

from __future__ import annotations

import dataclasses
import logging
import re

from click.testing import CliRunner

from tests.orchestration.conftest import AS_OF, SAMPLE

# Our own lines: progress ("  dbt_models: done in 20.1 s"), table rows, titles, the summary.
LIBRARY_LINE = re.compile(r"\b(INFO|WARNING|DEBUG)\b|dagster - |Running with dbt|Warning:")


def test_demo_prints_progress_and_results_but_no_library_log_lines(pipeline):
    from cli.main import cli

    args = ["demo", "--as-of", AS_OF.isoformat()]
    for name, value in SAMPLE.items():
        args += [f"--{name}", str(value)]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(cli, args)
    finally:  # the command's log handlers write to streams that close with the runner
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert result.exit_code == 0, result.output + repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    noise = [line for line in lines if LIBRARY_LINE.search(line)]
    assert noise == []
    assert "  dbt_models: started" in lines and any("dbt_models: done in" in x for x in lines)
    # the same day again: every email is already in the ledger, none is written twice
    outbox = pipeline.env.outbox
    assert re.fullmatch(
        rf"0 emails written to the outbox {re.escape(str(outbox))}; [0-9.]+ s in all\. .*",
        result.stdout.strip().splitlines()[-1],
    )
    from onramp.dbt import log_dir

    assert (log_dir() / "dbt.log").stat().st_size > 0
    assert (pipeline.env.home / "logs" / "onramp.log").stat().st_size > 0


def test_last_line_names_the_provider_in_use_without_secrets(orch_env):
    from onramp.settings import Settings
    from orchestration.demo_pipeline import email_destination

    settings = Settings.from_env()
    assert email_destination(settings) == f"written to the outbox {settings.outbox_dir}"
    sendgrid = dataclasses.replace(
        settings,
        email_provider="sendgrid",
        sendgrid_api_key="SG.secret-key",
        sendgrid_api_host=None,
    )
    assert email_destination(sendgrid) == "sent through SendGrid (api.sendgrid.com)"
    local = dataclasses.replace(sendgrid, sendgrid_api_host="http://127.0.0.1:8765")
    assert email_destination(local) == "sent through SendGrid (127.0.0.1:8765)"
    smtp = dataclasses.replace(
        settings, email_provider="smtp", smtp_url="smtp://user:s3cret@mail.example.com:587"
    )
    assert email_destination(smtp) == "sent over SMTP to mail.example.com:587"


def test_build_prints_the_day_and_one_summary_line_not_dbts_log(pipeline):
    from cli.main import cli
    from onramp.dbt import log_dir

    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        result = CliRunner().invoke(
            cli, ["build", "--as-of", AS_OF.isoformat(), "--select", "stg_raw__endpoints"]
        )
    finally:
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
            handler.close()
    assert result.exit_code == 0, result.output + repr(result.exception)
    logs = log_dir()  # $ONRAMP_HOME/logs unless DBT_LOG_PATH says otherwise
    assert result.output.splitlines()[0] == f"as of {AS_OF.isoformat()} (dbt.log in {logs})"
    assert re.fullmatch(
        r"dbt build: 1 models built, \d+ tests passed, 0 failed in [0-9.]+ s",
        result.output.splitlines()[1],
    )
    assert len(result.output.splitlines()) == 2
    assert "stg_raw__endpoints" in (logs / "dbt.log").read_text()
